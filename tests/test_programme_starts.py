"""One home for "first programme enrolment": `programme_starts`, read by every report query.

The register may hold SkolFam beside PPSS (data contract 1.5). The store here has a pupil in
both programmes (SkolFam first, a year before PPSS) and a pupil in SkolFam only: the report's
figures count PPSS pupils once, in the year and district of their first PPSS enrolment, and
show SkolFam apart. The dbt-style checks in `pipelines/transform/sql/tests/` must return no rows.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.analysis import followup as fu
from pipelines.config import SQL_DIR
from pipelines.demo.world import PLANTED_DEFECTS, DemoWorld, write_demo
from pipelines.ingest.load import ingest
from pipelines.labels import TOTAL
from pipelines.transform.build import build

pytestmark = pytest.mark.e2e
SEED, SCALE, YEAR = 5, "tiny", 2016
SQL_TESTS = sorted((SQL_DIR / "tests").glob("*.sql"))


def _digits(civic: str) -> str:
    return "".join(ch for ch in civic if ch.isdigit())[-10:]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("skolfam")
    write_demo(root / "raw", seed=SEED, scale=SCALE)
    world = DemoWorld(SEED, SCALE)
    lost = {i for d in PLANTED_DEFECTS if d.loses_pupil for i in d.pupils(world)}
    enrolled = sorted((p for p in world.pupils if p.enrolled and p.index not in lost), key=lambda p: p.enrolled)
    both = next(p for p in enrolled if p.enrolled.year == YEAR and p.enrolled.month >= 3)
    only = next(
        p for p in world.pupils if not p.enrolled and p.index not in lost and not p.leaves and p.entry_year == 2014
    )
    rows = []
    for p, start in ((both, date(YEAR - 1, 3, 2)), (only, date(YEAR, 2, 1))):
        school = world.schools[world.school_in(p, start)]
        rows.append(f"{p.civic};SkolFam;{school.district};{school.code};{start.isoformat()};;Hög frånvaro;Mentor")
    header = "Personnummer;Program;Stadsdel;Skolenhetskod;Inskriven;Utskriven;Urvalsgrund;Insatser"
    (root / "raw" / "socialtjansten" / "ppss_skolfam.csv").write_text("\r\n".join([header, *rows]) + "\r\n")
    path = root / "store.duckdb"
    summary = ingest(root / "raw", path)
    assert not summary.rejected
    build(path)
    con = duckdb.connect(str(path), read_only=True)
    keys = dict(
        con.execute(
            "select programme, list(pupil_key order by start_date) from programme_starts group by programme"
        ).fetchall()
    )
    con.close()
    return {"path": path, "both": both, "only": only, "keys": keys}


def test_programme_starts_hold_one_row_per_pupil_and_programme(store) -> None:
    skolfam, ppss = store["keys"]["SkolFam"], set(store["keys"]["PPSS"])
    assert len(skolfam) == 2  # both pupils loaded: neither row was quarantined
    assert len(set(skolfam) & ppss) == 1  # one of them is also in PPSS


def test_skolfam_is_not_counted_as_ppss(store) -> None:
    con = fu.open_store(store["path"])
    try:
        n_ppss = con.execute(
            "select count(*) from programme_starts where programme = 'PPSS' and year(start_date) <= ?", [YEAR]
        ).fetchall()[0][0]
        n_pupils = con.execute(
            "select count(distinct pupil_key) from programme_enrolments where year(start_date) <= ?", [YEAR]
        ).fetchall()[0][0]
        assert n_pupils == n_ppss + 1  # the SkolFam-only pupil is in the register but not PPSS

        enrolled = fu.enrolled_by_district(con, YEAR)
        totals = enrolled.filter(pl.col("district") == TOTAL)
        assert totals["n_pupils"].sum() == n_ppss  # each PPSS pupil once, nobody else
        # the pupil in both programmes counts in the year of the PPSS enrolment, not the earlier SkolFam one
        first_years = dict(zip(totals["year"], totals["n_pupils"], strict=True))
        assert YEAR - 1 in first_years
        by_year = con.execute(
            "select year(start_date), count(*) from programme_starts where programme = 'PPSS' group by 1"
        ).fetchall()
        assert {y: n for y, n in by_year if y <= YEAR} == first_years

        apart = fu.programmes_apart(con, YEAR).row(0, named=True)
        counts = {k: v for k, v in apart.items() if not k.endswith("__members")}
        assert counts == {"programme": "SkolFam", "n_pupils": 2, "n_also_ppss": 1}
        # each count carries the pupils it counts (for disclosure control, never published)
        assert len(apart["n_pupils__members"]) == 2 and len(apart["n_also_ppss__members"]) == 1
        assert set(apart["n_also_ppss__members"]) <= set(apart["n_pupils__members"])

        coverage = fu.coverage(con, YEAR)
        assert set(coverage["n"].to_list()) == {n_ppss}
        targets = fu.enrolled_vs_targets(con)
        ppss_2016 = con.execute(
            "select count(*) from programme_starts where programme = 'PPSS' "
            "and start_date between date '2016-01-01' and date '2016-07-31'"
        ).fetchall()[0][0]
        assert targets.filter(pl.col("period") == "Januari–juli 2016")["registered"].item() == ppss_2016

        only = store["keys"]["SkolFam"][1] if store["keys"]["SkolFam"][0] in store["keys"]["PPSS"] else None
        only = only or next(k for k in store["keys"]["SkolFam"] if k not in store["keys"]["PPSS"])
        pupils = fu.report_query(con, "evaluation_pupils", YEAR)
        assert pupils.filter(pl.col("pupil_key") == only)["start_date"].to_list() in ([], [None])
        assert pupils.filter(pl.col("start_date").is_not_null()).height == n_ppss
        for query in ("absence_thresholds", "grade9_outcomes"):  # the SkolFam-only pupil is in neither group
            rows = fu.report_query(con, query, YEAR)
            assert set(rows["pupil_group"].unique().to_list()) <= {"enrolled", "others"}
            assert only not in rows["pupil_key"].to_list()
        # nor a comparison in the evaluation: SkolFam is a similar intervention
        from pipelines.analysis import estimands

        candidates = fu.report_query(con, "evaluation_candidates", YEAR, **estimands.sql_names())
        assert candidates.height and only not in candidates["pupil_key"].to_list()
        terms = con.execute(
            "select bool_or(in_programme), bool_or(in_ppss), count(terms_since_enrolment) "
            "from pupil_term_outcomes where pupil_key = ?",
            [only],
        ).fetchall()[0]
        assert terms == (True, False, 0)
    finally:
        con.close()


@pytest.mark.parametrize("path", SQL_TESTS, ids=[p.stem for p in SQL_TESTS])
def test_sql_checks_return_no_rows(store, path: Path) -> None:
    con = duckdb.connect(str(store["path"]), read_only=True)
    try:
        rows = con.execute(path.read_text(encoding="utf-8")).fetchall()
    finally:
        con.close()
    assert rows == [], f"{path.name}: {len(rows)} rows break the rule stated at its top"


def test_sql_checks_find_a_broken_grain(store, tmp_path) -> None:
    """The checks can fail: a duplicated start and a PPSS term without a programme term are found."""
    copy = tmp_path / "broken.duckdb"
    shutil.copy(store["path"], copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute("insert into programme_starts select * from programme_starts limit 1")
        con.execute("update pupil_term_outcomes set in_programme = false where in_ppss")
        failing = {p.stem for p in SQL_TESTS if con.execute(p.read_text(encoding="utf-8")).fetchall()}
    finally:
        con.close()
    assert {"programme_starts_grain", "ppss_terms_are_programme_terms"} <= failing


def test_the_absence_threshold_changes_the_high_absence_figures(store) -> None:
    """`absence_threshold` is computed, registered for disclosure control and charted."""
    from pipelines.analysis.disclosure import Publication
    from pipelines.report import charts, sections

    con = fu.open_store(store["path"])
    try:
        default = fu.absence_thresholds(con, YEAR)
        own = fu.absence_thresholds(con, YEAR, 0.12)
        pub = Publication(5)
        sections.SECTIONS["attendance"].register(pub, sections.Context(con, YEAR, 5, absence_threshold=0.12))
    finally:
        con.close()
    assert sorted(default["threshold"].unique().to_list()) == [0.10, 0.15, 0.20]
    assert sorted(own["threshold"].unique().to_list()) == [0.10, 0.12, 0.15, 0.20]
    for (_, _), part in own.group_by("term_label", "pupil_group"):
        k = dict(zip(part["threshold"], part["k"], strict=True))
        assert k[0.10] >= k[0.12] >= k[0.15] >= k[0.20]
    assert {dict(c[1:]).get("threshold") for c in pub.labels if c[0] == "high_absence"} == {0.10, 0.12, 0.15, 0.20}
    spec = charts.absence_thresholds(own, 0.12, 5).to_dict()
    assert "12 % är rapportens huvudgräns." in " ".join(spec["title"]["subtitle"])


def test_the_report_on_a_register_with_skolfam_shows_it_apart_and_hidden_when_small(store, tmp_path) -> None:
    """The whole way, as a user runs it: `ppss report` on the store with SkolFam rows. The
    SkolFam line is published apart (2 pupils, 1 also in PPSS: both below min_cell, so `..`)."""
    from pipelines.cli import main

    out = tmp_path / "reports"
    assert main(["report", "--year", str(YEAR), "--store", str(store["path"]), "--out", str(out)]) == 0
    lines = (out / str(YEAR) / "tables" / "other_programmes.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and len(lines) == 3
    assert lines[2].split(",") == ["SkolFam", "..", ".."]
    html = (out / str(YEAR) / f"uppfoljning_{YEAR}.html").read_text(encoding="utf-8")
    assert "SkolFam" in html and "Granskningen godkände mönstret" in html
