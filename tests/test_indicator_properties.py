"""Property tests of the grade rules, and the SQL mart against the Python reference."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config import SQL_DIR
from pipelines.ingest.readers.grades import LANGUAGE_SUBJECTS
from pipelines.ingest.readers.grades import SUBJECTS as KNOWN_SUBJECTS
from pipelines.rules.indicators import POINTS, skolverket_mean_merit, term_grades

# every subject code the readers know, less the language subjects (drawn with a language below)
SUBJECTS = sorted(KNOWN_SUBJECTS - LANGUAGE_SUBJECTS - {"TSP"})
LANGUAGES = ["DEU", "FRA", "SPA", "ARA"]
GRADES = list(POINTS)

grade_row = st.one_of(
    st.tuples(st.sampled_from(SUBJECTS), st.none(), st.sampled_from(GRADES)),
    st.tuples(st.sampled_from(sorted(LANGUAGE_SUBJECTS)), st.sampled_from(LANGUAGES), st.sampled_from(GRADES)),
)
pupil_grades = st.lists(grade_row, min_size=1, max_size=24)


@given(pupil_grades)
def test_bounds_and_implications(grades) -> None:
    t = term_grades(grades)
    assert 0 <= t.merit_value_16 <= 320
    assert t.merit_value_16 <= t.merit_value_17 <= 340  # the 17th can only add
    assert 0 <= t.n_passed <= t.n_graded and t.n_failed + t.n_no_basis + t.n_passed == t.n_graded
    assert 0 <= t.share_passed <= 1
    if t.eligible_hp_es or t.eligible_hp_ek_hu_sa or t.eligible_hp_na_te:
        assert t.eligible_vocational and t.eligible_hp_es
    if t.eligible_vocational:
        assert t.n_passed >= 8


@given(pupil_grades, st.integers(min_value=0, max_value=23))
def test_removing_a_failed_grade_never_lowers_meritvarde(grades, i) -> None:
    failed = [k for k, g in enumerate(grades) if g[2] in ("F", "-")]
    if not failed:
        return
    drop = failed[i % len(failed)]
    rest = grades[:drop] + grades[drop + 1 :]
    before, after = term_grades(grades), term_grades(rest)
    if after is None:
        return
    assert after.merit_value_16 >= before.merit_value_16 and after.merit_value_17 >= before.merit_value_17
    assert after.eligible_vocational >= before.eligible_vocational


@given(pupil_grades, st.sampled_from(GRADES))
def test_raising_a_grade_never_lowers_anything(grades, new) -> None:
    row = grades[0]
    if POINTS[new] < POINTS[row[2]] or (POINTS[new] == POINTS[row[2]] and new != row[2]):
        return
    better = [(row[0], row[1], new), *grades[1:]]
    a, b = term_grades(grades), term_grades(better)
    assert b.merit_value_16 >= a.merit_value_16 and b.merit_value_17 >= a.merit_value_17
    assert b.n_passed >= a.n_passed and b.eligible_vocational >= a.eligible_vocational
    assert b.eligible_hp_na_te >= a.eligible_hp_na_te and b.eligible_hp_ek_hu_sa >= a.eligible_hp_ek_hu_sa


def test_skolverket_mean_leaves_out_pupils_without_a_pass() -> None:
    assert skolverket_mean_merit([(200.0, 10), (0.0, 0), (100.0, 1), (None, None)]) == 150.0
    assert skolverket_mean_merit([(0.0, 0)]) is None


@pytest.fixture(scope="module")
def mart():
    """An in-memory DuckDB with the project's macros and term_grades SQL, over a stg_grades
    table the tests fill: the mart exactly as `ppss build` runs it."""
    con = duckdb.connect()
    con.execute(
        "create table stg_grades (pupil_key varchar, subject varchar, language varchar, grade varchar, "
        "term varchar, term_year integer)"
    )
    macros = (SQL_DIR / "marts" / "00_macros.sql").read_text(encoding="utf-8")
    mart_sql = (SQL_DIR / "marts" / "02_term_grades.sql").read_text(encoding="utf-8")
    yield con, macros, mart_sql
    con.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(pupil_grades, min_size=1, max_size=30))
def test_sql_mart_agrees_with_the_python_reference(mart, pupils) -> None:
    con, macros, mart_sql = mart
    con.execute("delete from stg_grades")
    rows = [(f"p{i}", s, lang, g, "VT", 2016) for i, grades in enumerate(pupils) for s, lang, g in grades]
    con.executemany("insert into stg_grades values (?, ?, ?, ?, ?, ?)", rows)
    con.execute(macros)
    con.execute(mart_sql)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            "select pupil_key, n_graded, n_passed, n_failed, n_no_basis, share_passed, merit_value_16, merit_value_17, "
            "eligible_vocational, eligible_hp_es, eligible_hp_ek_hu_sa, eligible_hp_na_te from term_grades"
        ).fetchall()
    }
    assert len(got) == len(pupils)
    for i, grades in enumerate(pupils):
        want = term_grades(grades)
        sql = got[f"p{i}"]
        assert sql[:4] == (want.n_graded, want.n_passed, want.n_failed, want.n_no_basis), grades
        assert sql[4] == pytest.approx(want.share_passed)
        assert sql[5] == pytest.approx(want.merit_value_16) and sql[6] == pytest.approx(want.merit_value_17), grades
        assert sql[7:] == (
            want.eligible_vocational,
            want.eligible_hp_es,
            want.eligible_hp_ek_hu_sa,
            want.eligible_hp_na_te,
        ), grades


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dates(min_value=date(1, 1, 1), max_value=date(9000, 12, 31)), st.integers(min_value=-10, max_value=400))
def test_school_days_are_numpys_business_days(mart, start, span) -> None:
    """The school_days macro (a closed form) against numpy's Monday-Friday count, weekends,
    reversed periods and year ends included."""
    con, macros, _ = mart
    con.execute(macros)
    end = start + timedelta(days=span)
    want = int(np.busday_count(start, end + timedelta(days=1))) if span >= 0 else 0
    assert con.execute("select school_days($1::date, $2::date)", [start, end]).fetchone()[0] == want


def test_the_school_that_set_most_grades_and_a_tie_decided_the_same_way() -> None:
    """grade_schools (the school of a term without an enrolment): most grades; a tie to the
    school that graded last, then to the lower code; unknown schools never count."""
    con = duckdb.connect()
    con.execute(
        "create table stg_grades (pupil_key varchar, term varchar, term_year integer, "
        "school_unit_code varchar, decision_date date)"
    )
    rows = {
        "most": [("B", "2016-05-01"), ("A", "2016-05-02"), ("A", "2016-05-03"), (None, "2016-05-04"), (None, None)],
        "tie_last": [("A", "2016-05-01"), ("B", "2016-05-20"), ("A", "2016-05-02"), ("B", None)],
        "tie_all": [("B", "2016-05-01"), ("A", "2016-05-01")],
        "unknown": [(None, "2016-05-01")],
    }
    con.executemany(
        "insert into stg_grades values (?, 'VT', 2016, ?, ?)",
        [(p, s, d) for p, grades in rows.items() for s, d in grades],
    )
    con.execute((SQL_DIR / "intermediate" / "02_grade_schools.sql").read_text(encoding="utf-8"))
    got = dict(con.execute("select pupil_key, school_unit_code from grade_schools").fetchall())
    assert got == {"most": "A", "tie_last": "B", "tie_all": "A"}
