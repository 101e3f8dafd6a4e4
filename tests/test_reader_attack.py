"""An outside reader's attack (tests/reader_attack.py) on everything a tiny demo store publishes:
the full reports for every year, four district reports for one year (one district, it with a
second, the second alone, the first with a third: siblings), the same year at min_cell 37 in
another folder, and `ppss reports`' parameter sets. Nothing may be recoverable more narrowly
than min_cell."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from pipelines.demo.world import write_demo
from pipelines.ingest.load import ingest
from pipelines.transform.build import build

from .reader_attack import Publication, Reader, attack


@pytest.mark.e2e
@pytest.mark.skipif(
    not os.environ.get("PPSS_ATTACK"),
    reason="an attack on eleven publications takes 15-30 minutes on two cores: `make attack` runs it",
)
def test_reader_attack_finds_nothing(tmp_path, monkeypatch) -> None:
    from pipelines.report import render

    monkeypatch.setattr(render, "write_pdf", lambda html, pdf: None)  # the PDF adds no number
    raw, store = tmp_path / "raw", tmp_path / "ppss.duckdb"
    write_demo(raw, seed=11, scale="tiny")
    assert not ingest(raw, store).rejected
    build(store)
    out, out37 = tmp_path / "reports", tmp_path / "r37"
    published = []

    def report(year: int, folder: Path, **kw) -> None:
        try:
            render.run_report(year, store, folder, **kw)
            published.append((year, folder, kw))
        except render.ReportRefused:  # refused: nothing is published
            pass

    report(2016, out)
    rows = list(csv.reader((out / "2016" / "tables" / "enrolled.csv").read_text(encoding="utf-8").splitlines()[2:]))
    d = sorted(r[0] for r in rows if r and r[0] != "Totalt")
    for year in (2015, 2017, 2014, 2013):
        report(year, out)
    for subset in ([d[0]], d[:2], [d[1]], [d[0], d[2]]):  # siblings: d0 + d1 - d0 = d1, d0 + d2
        report(2016, out, districts=subset)
    report(2016, out37, min_cell=37)
    render.run_param_sets(render.load_params(render.params_dir()), store, out)
    # a refused report publishes nothing, which is safe; the attack reads whatever was written
    assert len(published) >= 8, published

    findings, stats, a = attack([out, out37], {out37: 37})
    assert not a.r.contradictions, a.r.contradictions[:5]
    assert sum(s["hidden"] for s in stats.values()) > 0  # the attack saw hidden cells
    assert not findings, "\n".join(
        f"{f.kind} [{f.lo}, {f.hi}] {f.label} ({f.relation}) @ {f.publication}" for f in findings
    )


def test_the_reader_solves_each_component_alone_and_still_finds_what_is_narrow() -> None:
    """The reader's solver (components, cached ranges, known feasible points) against hand-made
    relations: Farsta 26 = Älvsjö + 18 (hidden Älvsjö: exactly 8); a total of 40 over two hidden
    districts, one at most 3 more than the other (each 19..21, narrower than 10); and an
    independent pair of hidden counts whose sum is 30 (each 0..30: nothing)."""
    p = Publication(Path("r/2016"), 2016, 10, "ALL")
    r = Reader()
    cell = {name: ("m", None, name, "*") for name in ["FA", "F", "A", "T", "X", "Y", "U", "V"]}
    r.cell(p, cell["FA"], "26")
    r.cell(p, cell["F"], "18")
    for name in "AXYUV":
        r.cell(p, cell[name], "..")
    r.cell(p, cell["T"], "40")
    r.eq(cell["FA"], [cell["F"], cell["A"]], "sibling scopes")
    r.eq(cell["T"], [cell["X"], cell["Y"]], "total")
    r.rel({cell["X"]: 1, cell["Y"]: -1}, -3, 3, "close")
    r.rel({cell["U"]: 1, cell["V"]: 1}, 30, 30, "pair")
    r.build()
    assert len({r.comp_of[r.var[cell[n]]] for n in "AXYUV"}) == 3  # A; X and Y; U and V
    assert r.narrow({cell["A"]: 1}, 10) == (8, 8)
    assert r.narrow({cell["X"]: 1}, 10) == (19, 21)
    assert r.narrow({cell["X"]: 1, cell["Y"]: -1}, 10) is None  # -3..3 reaches 0
    assert r.narrow({cell["U"]: 1}, 10) is None
    n = r.n_programs
    assert r.narrow({cell["V"]: 1}, 10) is None  # settled by the points found for U
    assert r.n_programs == n
    assert r.narrow({cell["Y"]: 1}, 10) == (19, 21)  # a known point never hides a finding
    assert r.range({cell["A"]: 1, cell["U"]: 1}) == (8, 38)  # separable over components


def _write(path: Path, caption: str, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {caption}", ",".join(header), *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("register_rows", ["47", ".."])
def test_the_reader_knows_listed_rows_have_pupils_and_the_register_rows_bound_them(tmp_path, register_rows) -> None:
    """Attack round 5 in the reader's own terms: two listed districts (each at least 1 pupil),
    a hidden total of 47, 45 pupils with data at month 0 (all enrolled), and the register's
    47 loaded rows (every pupil has one): the total is pinned to [45, 47]. Hidden, the rows
    tell nothing and the total stays wide."""
    year = tmp_path / "reports" / "2016"
    _write(
        year / "tables" / "enrolled.csv",
        "Inskrivna",
        ["Stadsdel", "2016"],
        [["A", ".."], ["B", ".."], ["Totalt", ".."]],
    )
    _write(
        year / "tables" / "quality.csv",
        "Filer och rader",
        ["Indata", "Filer", "Avvisade filer", "Rader lästa", "Laddade", "Fel", "Motsäger", "Används inte"],
        [["Socialtjänstens register", "1", "0", ".." if register_rows == ".." else "50", register_rows, "2", "0", "1"]],
    )
    (year / "data").mkdir()
    with (year / "data" / "attendance_event_time.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_month", "pupil_group", "mean", "mean_status", "n", "n_status"])
        w.writerow([0, "Inskrivna i PPSS", 0.19, "visad", 45, "visad"])
    findings, _, a = attack([tmp_path / "reports"])
    total = [f for f in findings if f.kind == "hidden" and f.label.split("/")[0] in ("pupils", "enrolled")]
    if register_rows == "..":
        assert not total
    else:
        assert [(f.lo, f.hi) for f in total] == [(45, 47)]
    # each listed district has at least one pupil, so neither reaches past the total less 1
    lo, hi = a.r.range({(("pupils", 2016), None, "A", "*"): 1})
    assert lo == 1
    if register_rows != "..":
        assert hi == 46


def test_the_reader_takes_a_years_new_interventions_out_of_its_enrolment(tmp_path) -> None:
    """Attack round 6, D1: Skärholmen's Sommarinsats pupils through 2015 (11) and through 2016
    (32) are shown, and so are its 30 pupils first enrolled in 2016: the 21 new ones are among
    them, so 9 enrolled in 2016 without Sommarinsats. Hidden in 2016, nothing is pinned."""
    for shown in (True, False):
        root = tmp_path / str(shown) / "reports"
        for year, through in ((2015, "11"), (2016, "32" if shown else "")):
            folder = root / str(year)
            years = ["2015"] if year == 2015 else ["2015", "2016"]
            enrolled = [
                ["Skärholmen", *(["26"] if year == 2015 else ["26", "30"])],
                ["Totalt", *(["26"] if year == 2015 else ["26", "30"])],
            ]
            _write(folder / "tables" / "enrolled.csv", "Inskrivna", ["Stadsdel", *years], enrolled)
            (folder / "data").mkdir(parents=True)
            with (folder / "data" / "interventions.csv").open("w", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["district", "term_value", "n_pupils", "n_pupils_status"])
                w.writerow(["Skärholmen", "Sommarinsats", through, "visad" if through else "dold"])
        findings, _, _ = attack([root])
        new_in_2016 = [(f.lo, f.hi) for f in findings if "Sommarinsats" in f.label and f.kind == "derived"]
        assert new_in_2016 == ([(9, 9)] if shown else []), findings
