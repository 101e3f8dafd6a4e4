"""A report on some districts: every section describes only the pupils first enrolled in PPSS
in those districts (and, as comparison, the other pupils of their schools), and its cells,
read beside the full report's, give nothing away.

Runs on the end-to-end store (`run`, tiny demo data) and calls `pipelines.report.sections` and
`Publication` directly, without papermill.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from pathlib import Path

import duckdb
import polars as pl
import psutil
import pytest

from pipelines.analysis import crosscheck
from pipelines.analysis import estimands as est
from pipelines.analysis import evaluation as ev
from pipelines.analysis import followup as fu
from pipelines.analysis.disclosure import Publication
from pipelines.analysis.followup import report_query
from pipelines.analysis.ledger import Ledger
from pipelines.analysis.sample import build_sample
from pipelines.labels import DIMENSION, ENROLLED, TOTAL
from pipelines.report import sections, tables
from pipelines.report.export import export

from .attack import attack_report, protected

pytestmark = pytest.mark.e2e
YEAR = 2016
SUBSET = ["Farsta", "Skarpnäck"]
IN_SUBSET = "district in ('Farsta', 'Skarpnäck')"


@pytest.fixture(scope="module")
def con(run):
    con = fu.open_store(run["store"])
    yield con
    con.close()


def keys(con, sql: str) -> set[str]:
    return {r[0] for r in con.execute(sql).fetchall()}


def count(con, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


def test_every_section_of_a_district_report_counts_only_its_pupils(con) -> None:
    ppss = "select pupil_key from programme_starts where programme = 'PPSS'"
    subset = keys(con, f"{ppss} and {IN_SUBSET}")
    programme = keys(con, "select pupil_key from programme_starts")
    assert subset and keys(con, ppss) - subset  # the demo has pupils of other districts to leave out
    schools = keys(
        con,
        f"select school_unit_code from programme_enrolments where programme = 'PPSS' and {IN_SUBSET}",
    )

    # pupil-level queries of every section: enrolled pupils only of the subset, comparison
    # pupils never in a programme (and of the subset's schools); the full report's are not
    enrolled_of = {
        "coverage": None,
        "attendance_event_time": lambda f: f,
        "pass_change": lambda f: f,
        "followup_2015": lambda f: f,
        "absence_thresholds": lambda f: f.filter(pl.col("pupil_group") == "enrolled"),
        "grade9_outcomes": lambda f: f.filter(pl.col("pupil_group") == "enrolled"),
        "evaluation_pupils": lambda f: f.filter(pl.col("start_date").is_not_null()),
        "evaluation_candidates": lambda f: f.filter(pl.col("treated")),
        "crosscheck_panel": lambda f: f.filter(pl.col("first_term") > 0),
    }
    names = {"evaluation_candidates": est.sql_names()}
    for name, pick in enrolled_of.items():
        if pick is None:
            continue
        year = 2015 if name == "followup_2015" else YEAR
        part = set(pick(report_query(con, name, year, SUBSET, **names.get(name, {})))["pupil_key"].to_list())
        whole = set(pick(report_query(con, name, year, None, **names.get(name, {})))["pupil_key"].to_list())
        assert part and part <= subset, name
        assert whole - subset, name  # the filter is what makes the difference
    others = report_query(con, "absence_thresholds", YEAR, SUBSET).filter(pl.col("pupil_group") == "others")
    assert others.height and not set(others["pupil_key"].to_list()) & programme
    others_schools = keys(
        con,
        f"""select distinct school_unit_code from pupil_term_outcomes where term_year = {YEAR}
            and pupil_key in ({", ".join(repr(k) for k in set(others["pupil_key"].to_list()))})""",
    )
    assert others_schools & schools  # pupils of the schools where the subset's pupils were enrolled
    panel = report_query(con, "crosscheck_panel", YEAR, SUBSET)
    assert not set(panel["pupil_key"].to_list()) & (keys(con, ppss) - subset)  # no other district's pupil

    # each section's frame: counts equal to a direct count of the subset's pupils
    n_subset = count(
        con,
        f"select count(*) from programme_starts where programme = 'PPSS' and {IN_SUBSET} "
        f"and year(start_date) <= {YEAR}",
    )
    enrolled = fu.enrolled_by_district(con, YEAR, SUBSET)
    assert set(enrolled["district"].to_list()) == {*SUBSET, TOTAL}
    assert enrolled.filter(pl.col("district") == TOTAL)["n_pupils"].sum() == n_subset
    assert fu.coverage(con, YEAR, SUBSET)["n"].to_list() == [n_subset] * 3
    for column in ("selection_reasons", "interventions"):
        assert set(fu.vocabulary_by_district(con, YEAR, column, SUBSET)["district"].to_list()) <= set(SUBSET)

    thresholds = fu.absence_thresholds(con, YEAR, districts=SUBSET)
    for (term,), part in thresholds.filter(pl.col("pupil_group") == ENROLLED).group_by("term_label"):
        t, ty = term.split()
        direct = count(
            con,
            f"""select count(*) from pupil_term_outcomes where term = '{t}' and term_year = {ty} and in_ppss
                and school_year between 7 and 9 and absence_rate is not null
                and school_unit_code in (select school_unit_code from programme_enrolments where programme = 'PPSS')
                and pupil_key in (select pupil_key from programme_starts where programme = 'PPSS' and {IN_SUBSET})""",
        )
        assert part["n"].unique().to_list() == [direct], term

    indiv, _ = fu.pass_change(con, YEAR, SUBSET)
    direct = count(
        con,
        f"""select count(*) from programme_starts as s
            join pupil_term_outcomes as a on a.pupil_key = s.pupil_key and a.term_index = s.start_term
            join pupil_term_outcomes as b on b.pupil_key = s.pupil_key and b.term_index = s.start_term + 1
            where s.programme = 'PPSS' and s.{IN_SUBSET} and year(s.start_date) <= {YEAR}
              and a.share_passed is not null and b.share_passed is not null""",
    )
    assert indiv.filter(pl.col("gender_label") == fu.ALL)["n"].unique().to_list() == [direct]

    elig = fu.grade9_eligibility(con, YEAR, SUBSET).filter(
        (pl.col("pupil_group") == ENROLLED) & (pl.col("gender_label") == fu.ALL)
    )
    direct = count(
        con,
        f"""select count(*) from pupil_term_outcomes where term = 'VT' and term_year = {YEAR} and school_year = 9
            and school_unit_code in (select school_unit_code from programme_enrolments where programme = 'PPSS')
            and n_graded is not null and pupil_key in (select pupil_key from programme_starts
            where programme = 'PPSS' and {IN_SUBSET} and start_date <= date '{YEAR}-06-30')""",
    )
    assert elig["n"].unique().to_list() == [direct]
    context = fu.context_comparison(con, YEAR, SUBSET).filter(pl.col("label") == ENROLLED)
    assert context["n"].to_list() == [direct]

    sample = build_sample(con, YEAR, SUBSET)
    attrition = ev.attrition(sample)
    assert attrition.filter(pl.col("step_no") == 0)["n"].unique().to_list() == [n_subset]
    by_group = ev.attrition_by_group(sample)
    districts = by_group.filter(pl.col("label") == DIMENSION["district"])
    assert set(districts["reason"].to_list()) <= set(SUBSET) and districts["n"].sum() == n_subset
    sub = ev.subgroups(sample).filter(pl.col("dimension") == DIMENSION["district"])
    assert set(sub["group"].to_list()) <= set(SUBSET)
    fu2015, _ = ev.followup_2015(con, 10, SUBSET)
    direct = count(
        con,
        f"""select count(*) from programme_starts as s
            join pupil_term_outcomes as a on a.pupil_key = s.pupil_key and a.term = 'VT' and a.term_year = 2014
            join pupil_term_outcomes as b on b.pupil_key = s.pupil_key and b.term = 'HT' and b.term_year = 2014
            where s.programme = 'PPSS' and s.{IN_SUBSET} and s.start_date <= date '2014-06-30'
              and a.share_passed is not null and b.share_passed is not null""",
    )
    assert fu2015.filter(pl.col("label") == "Termin 1 till 2")["n"].to_list() in ([direct], [])
    assert fu.title_block(YEAR, {}, 10, SUBSET).count("Alla avsnitt gäller bara") == 1


def _memo(fn):
    """The evaluation's sample and cross-check do not depend on min_cell: computed once for
    both tests (one store, read-only)."""
    cache: dict = {}

    @functools.wraps(fn)
    def wrapper(con, year, districts=None):
        k = (year, tuple(districts or ()))
        if k not in cache:
            cache[k] = fn(con, year, districts)
        return cache[k]

    return wrapper


SAMPLE, CROSSCHECK = _memo(build_sample), _memo(crosscheck.callaway_santanna)


def test_a_district_reports_estimate_is_the_full_reports_row_for_that_district(con) -> None:
    """One number per population: the same pupils get the same estimate, interval and count
    in a district report as in the full report's subgroup row (the weights are the city's)."""
    rows = ev.subgroups(SAMPLE(con, YEAR)).filter(pl.col("dimension") == DIMENSION["district"])
    assert rows.height >= 2
    for d in SUBSET:
        row = rows.filter(pl.col("group") == d).row(0, named=True)
        alone = ev.estimate(SAMPLE(con, YEAR, [d]).analytic["absence_rate"])
        assert alone.n_enrolled == row["n"] and alone.n_schools == row["n_schools"]
        assert alone.estimate == pytest.approx(row["change"], rel=1e-9, abs=1e-12)
        if row["lo"] is not None:
            assert (alone.ci_low, alone.ci_high) == pytest.approx((row["lo"], row["hi"]), rel=1e-9, abs=1e-12)


def _register(pub: Publication, con, min_cell: int, districts: list[str] | None) -> None:
    sections.register_all(pub, sections.Context(con, YEAR, min_cell, districts))


def _export(prot, folder: Path) -> None:
    export("enrolled", tables.enrolled_table(prot["enrolled"]), folder)
    export("attrition", tables.attrition_table(prot["attrition"]), folder)
    export("attrition_by_group", tables.attrition_group_table(prot["attrition_by_group"]), folder)
    export("grade9_eligibility", tables.eligibility_table(prot["grade9_eligibility"]), folder)


def _figures(check: dict) -> dict:
    """The cross-check's numbers (its pupils, for the disclosure layer, compared apart)."""
    return {k: v for k, v in check.items() if not k.endswith("__members")}


def test_the_cross_check_in_a_process_of_its_own_is_the_one_computed_here(con, run, tmp_path) -> None:
    """The report runs the cross-check in a spawned process, on its own read-only connection
    beside the kernel's and with one BLAS thread: the same estimate as in the report's own
    process (to rounding in the last digits), for all districts and for a subset. A store
    rebuilt after the report opened it (the process would read the new file, the report the
    old one) is noticed, and the cross-check computed on the report's connection instead."""
    assert fu.store_path(con) == str(run["store"])
    worker = crosscheck.Worker()
    for districts in (None, SUBSET):
        here = CROSSCHECK(con, YEAR, districts)
        assert here["n_enrolled"] > 0 and here["lo"] < here["att"] < here["hi"]
        pending = worker.run(con, YEAR, districts)  # the second run starts a new process
        assert _figures(pending.result()) == pytest.approx(_figures(here), rel=1e-9, abs=1e-12)
        assert pending.result()["n_enrolled__members"] == here["n_enrolled__members"]
        assert not pending.computed_here

    # each run's process ends with its task: none is left idle beside the kernel
    def spawned() -> list[psutil.Process]:
        """Spawned children still running (one that has ended but is not yet reaped is a zombie)."""
        out = []
        for p in psutil.Process().children():
            try:
                if p.status() != psutil.STATUS_ZOMBIE and "multiprocessing.spawn" in " ".join(p.cmdline()):
                    out.append(p)
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue
        return out

    for _ in range(100):
        if not spawned():
            break
        time.sleep(0.1)
    assert not spawned()

    store, rebuilt = tmp_path / "ppss.duckdb", tmp_path / "rebuilt.duckdb"
    shutil.copyfile(run["store"], store)
    shutil.copyfile(run["store"], rebuilt)
    old = fu.open_store(store)
    try:
        with duckdb.connect(str(rebuilt)) as w:
            w.execute("insert or replace into meta values ('built_at', 'a later build')")
        os.replace(rebuilt, store)  # as store.writing() swaps a build in
        pending = crosscheck.Worker().run(old, YEAR)
        assert _figures(pending.result()) == pytest.approx(_figures(CROSSCHECK(con, YEAR, None)), rel=1e-9, abs=1e-12)
        assert pending.computed_here
    finally:
        old.close()


@pytest.mark.parametrize("min_cell", [10])  # 37: test_pipeline writes a district report at 37 through the ledger
def test_a_district_report_audits_clean_beside_the_full_report(con, tmp_path, monkeypatch, min_cell) -> None:
    """The full report and a district report of one store, in either order, audited together
    through the store's ledger: what one hid the other never shows, and an outside attack on
    both sets of tables finds nothing narrower than min_cell."""
    monkeypatch.setattr(sections.evaluation, "build_sample", SAMPLE)
    monkeypatch.setattr(sections.evaluation, "callaway_santanna", CROSSCHECK)
    for order in ((None, SUBSET), (SUBSET, None)):
        ledger = Ledger.for_store(tmp_path / f"{order[0] is None}" / "ppss.duckdb")
        prots, folders = [], []
        for n, districts in enumerate(order):
            pub = Publication(min_cell, ledger)
            _register(pub, con, min_cell, districts)
            prot = pub.protect()
            assert prot.audit_passed
            assert all(hi - lo >= min_cell for lo, hi in prot.ranges.values())
            for c in pub.cells.values():  # every small published count is hidden
                if 0 < c.value < min_cell:
                    assert prot.is_hidden(c.id), c.label
            # the attack tells a district report by its folder, as a reader would
            folder = tmp_path / f"{order[0] is None}" / str(n) / ("stadsdelar_x" if districts else "") / "tables"
            _export(prot, folder)
            prots.append(prot)
            folders.append(folder)
        first, second = prots
        shared = set(first.pub.cells) & set(second.pub.cells)  # the same pupils in both
        assert shared
        assert all(second.is_hidden(c) for c in shared if first.is_hidden(c))  # hidden there: never shown here
        assert second.n_already_public > 0
        full_folder, subset_folder = folders if order[0] is None else folders[::-1]
        for cell, (lo, hi) in attack_report(full_folder, subset_folder).items():
            assert protected(lo, hi, min_cell), (cell, lo, hi)
