"""Hand-computed indicator cases, through the real pipeline (files -> ingest -> marts).

Each case is one pupil in VT 2016; expected values are worked out by hand from
domain-rules.md (points: A=20, B=17.5, C=15, D=12.5, E=10, F and '-' 0).
"""

from __future__ import annotations

import pytest

from pipelines.ingest.load import ingest
from pipelines.report.render import run_report
from pipelines.rules.identity import pupil_key
from pipelines.store import connect_readonly
from pipelines.transform.build import build

from .attack import attack_report, protected
from .contract_data import Case, attendance, grade_xml, write_inputs

SIXTEEN = ["BI", "BL", "EN", "FY", "GE", "HI", "HKK", "IDH", "KE", "MA", "MU", "RE", "SH", "SL", "SV", "TK"]
KEY = "test-key-for-indicator-cases"


def grades(default: str, *, drop: tuple[str, ...] = (), extra: str = "", **values: str) -> str:
    """The 16 subjects at `default`, some dropped or set (e.g. MA="F"), plus extra tokens."""
    tokens = [f"{s}={values.get(s, default)}" for s in SIXTEEN if s not in drop]
    return " ".join(tokens + extra.split())


ELIGIBLE_ALL = dict(eligible_vocational=True, eligible_hp_es=True, eligible_hp_ek_hu_sa=True, eligible_hp_na_te=True)
ELIGIBLE_NONE = dict(
    eligible_vocational=False, eligible_hp_es=False, eligible_hp_ek_hu_sa=False, eligible_hp_na_te=False
)

CASES = [
    Case(
        "all_A_with_M2",
        grades("A", extra="M2/DEU=A"),
        expected=dict(
            n_graded=17, n_passed=17, share_passed=1.0, merit_value_16=320, merit_value_17=340, **ELIGIBLE_ALL
        ),
        reason="the maximum: 16 A = 320, plus the M2 A as the 17th = 340",
    ),
    Case(
        "M2_E_rest_A",
        grades("A", extra="M2/DEU=E"),
        expected=dict(merit_value_16=320, merit_value_17=330),
        reason="the 16 best are the A's; merit_17 adds the set-aside M2 E (10)",
    ),
    Case(
        "no_M2",
        grades("A"),
        expected=dict(n_graded=16, merit_value_16=320, merit_value_17=320),
        reason="without an M2 grade merit_17 equals the 16 best",
    ),
    Case(
        "M2_among_16",
        grades("E", extra="M2/DEU=A"),
        expected=dict(merit_value_16=170, merit_value_17=180),
        reason="merit_16 may take the M2 A among its 16 (20 + 15 x 10); merit_17 = 16 x 10 + 20",
    ),
    Case(
        "ML_not_17th",
        grades("A", extra="ML/ARA=E"),
        expected=dict(n_graded=17, merit_value_16=320, merit_value_17=320),
        reason="modersmål can be among the 16 but never the 17th",
    ),
    Case(
        "ML_among_16",
        grades("A", drop=("TK",), extra="ML/ARA=C"),
        expected=dict(merit_value_16=315, merit_value_17=315),
        reason="15 A + ML C = 300 + 15; no M2, so merit_17 is the same",
    ),
    Case(
        "SV_and_SVA_once",
        grades("E", SV="C", extra="SVA=A"),
        expected=dict(n_graded=16, n_passed=16, merit_value_16=170),
        reason="SV and SVA count once, the better grade (A): 15 x 10 + 20",
    ),
    Case(
        "F_and_streck_apart",
        grades("E", HKK="F", IDH="-"),
        expected=dict(n_graded=16, n_passed=14, n_failed=1, n_no_basis=1, share_passed=14 / 16, merit_value_16=140),
        reason="F and '-' are both not passed and give 0 points, but are counted apart",
    ),
    Case(
        "no_MA",
        grades("A", MA="F"),
        expected=dict(n_passed=15, merit_value_16=300, **ELIGIBLE_NONE),
        reason="MA is always required: 15 passes are not enough without it",
    ),
    Case(
        "vocational_exactly",
        "SV=E EN=E MA=E BI=E BL=E FY=E GE=E HI=E HKK=F IDH=F KE=F MU=F RE=F SH=F SL=F TK=F",
        expected=dict(n_passed=8, merit_value_16=80, eligible_vocational=True, eligible_hp_es=False),
        reason="SV, EN, MA + 5 other passed subjects = 8: yrkesprogram",
    ),
    Case(
        "seven_passes",
        "SV=E EN=E MA=E BI=E BL=E FY=E GE=E HI=F HKK=F IDH=F KE=F MU=F RE=F SH=F SL=F TK=F",
        expected=dict(n_passed=7, **ELIGIBLE_NONE),
        reason="only 4 other subjects: not eligible",
    ),
    Case(
        "es_without_social_studies",
        grades("E", GE="F", HI="F", RE="F", SH="F"),
        expected=dict(
            n_passed=12,
            eligible_vocational=True,
            eligible_hp_es=True,
            eligible_hp_na_te=True,
            eligible_hp_ek_hu_sa=False,
        ),
        reason="12 passes including BI, FY, KE but not GE, HI, RE, SH",
    ),
    Case(
        "ek_hu_sa_without_physics",
        grades("E", BI="F", FY="F", KE="F", TK="F"),
        expected=dict(n_passed=12, eligible_hp_es=True, eligible_hp_ek_hu_sa=True, eligible_hp_na_te=False),
        reason="12 passes including GE, HI, RE, SH but not BI, FY, KE",
    ),
    Case(
        "eleven_passes",
        grades("E", HKK="F", IDH="F", MU="F", SL="F", TK="F"),
        expected=dict(
            n_passed=11,
            eligible_vocational=True,
            eligible_hp_es=False,
            eligible_hp_ek_hu_sa=False,
            eligible_hp_na_te=False,
        ),
        reason="högskoleförberedande needs 9 other subjects; 8 are not enough",
    ),
    Case(
        "block_grade_NO",
        "SV=E EN=E MA=E NO=C BL=E HKK=E IDH=E",
        expected=dict(n_graded=9, n_passed=9, merit_value_16=105, eligible_vocational=True, eligible_hp_es=False),
        reason="NO stands for BI, FY, KE (3 x 15) beside 6 x 10",
    ),
    Case(
        "later_datum_wins",
        grades("E", MA="F"),
        extra_xml=grade_xml("MA=A", datum="2016-06-01"),
        expected=dict(n_passed=15, eligible_vocational=False),
        reason="two MA grades in one term: the later datum (F, 10 June) wins over A (1 June)",
    ),
    Case(
        "term_from_datum",
        grades("E", drop=("EN",)),
        extra_xml=grade_xml("EN=A", datum="2016-05-30", term=None),
        expected=dict(n_graded=16, merit_value_16=170),
        reason="a grade without <termin> belongs to the term of its datum (May: VT)",
    ),
    Case(
        "removed_grade",
        grades("E", drop=("EN",)),
        earlier_export="EN=A",
        expected=dict(n_graded=15, eligible_vocational=False),
        reason="EN was in the earlier export but not in the newest: removed",
    ),
    Case(
        "corrected_grade",
        grades("E", MA="C"),
        earlier_export="MA=F",
        expected=dict(n_passed=16, merit_value_16=165),
        reason="MA changed from F to C in the newest export: corrected",
    ),
    Case(
        "two_M2_languages",
        grades("E", extra="M2/DEU=A M2/FRA=C"),
        expected=dict(n_graded=18, merit_value_16=175, merit_value_17=185),
        reason="merit_16: A + C + 14 E; merit_17: the best M2 (A) set aside, FRA C + 15 E, then + 20",
    ),
    # The M2 set aside for merit_17 is the best M2; where it ranks among the 16 best decides
    # whether the 17th subject joins (02_term_grades.sql takes it from one ranking).
    Case(
        "M2_ranked_16th",
        grades("A", TK="C", extra="M2/DEU=B"),
        expected=dict(n_graded=17, merit_value_16=317.5, merit_value_17=332.5),
        reason="15 A + M2 B (16th) = 317.5; merit_17: the M2 set aside, 15 A + TK C = 315, then + 17.5",
    ),
    Case(
        "best_M2_in_16_other_M2_outside",
        grades("E", extra="M2/DEU=A M2/FRA=F"),
        expected=dict(n_graded=18, merit_value_16=170, merit_value_17=180),
        reason="merit_16: DEU A + 15 E; merit_17: the best M2 (DEU A) set aside, 16 E, then + 20 (FRA F is 18th)",
    ),
    Case(
        "both_M2_outside_16",
        grades("A", extra="M2/DEU=C M2/FRA=E"),
        expected=dict(n_graded=18, merit_value_16=320, merit_value_17=335),
        reason="16 A = 320; merit_17 adds the best M2 (DEU C, 15), not the first or last one listed",
    ),
    Case(
        "two_M2_equal",
        grades("E", extra="M2/DEU=A M2/FRA=A"),
        expected=dict(n_graded=18, merit_value_16=180, merit_value_17=190),
        reason="merit_16: both A + 14 E; merit_17: one A set aside, the other A + 15 E = 170, then + 20",
    ),
    Case(
        "fifteen_with_M2",
        grades("E", drop=("TK", "BL"), extra="M2/DEU=A"),
        expected=dict(n_graded=15, merit_value_16=160, merit_value_17=160),
        reason="fewer than 16: merit_16 takes all (20 + 14 x 10); merit_17: 14 E, then + 20",
    ),
    Case(
        "long_codes",
        grades("E", drop=("MA",), extra="GRGRMAT01=E GRGRMOD01/SOM=E"),
        expected=dict(n_graded=17, merit_value_16=160, merit_value_17=160, eligible_vocational=True),
        reason="GRGRMAT01 is MA and GRGRMOD01 is modersmål (not a 17th)",
    ),
    Case(
        "language_in_code",
        grades("E", extra="M2DEU=A"),
        expected=dict(merit_value_17=180),
        reason="M2DEU without <språk> is M2 in German",
    ),
    Case(
        "all_failed",
        grades("F"),
        expected=dict(n_passed=0, share_passed=0.0, merit_value_16=0, **ELIGIBLE_NONE),
        reason="no passes: share 0, meritvärde 0",
    ),
    Case("boy", grades("E"), gender="M", expected=dict(gender="M"), reason="the third digit of NNN is odd for men"),
    Case(
        "B_and_D_points",
        grades("E", drop=("TK", "BL", "SL"), SV="B", EN="D", MA="B"),
        expected=dict(n_graded=13, merit_value_16=147.5),
        reason="B = 17.5 and D = 12.5: 17.5 + 12.5 + 17.5 + 10 x 10",
    ),
    Case(
        "M1_among_16_never_17th",
        grades("A", drop=("TK",), extra="M1/FRA=C M2/DEU=E"),
        expected=dict(merit_value_16=315, merit_value_17=325),
        reason="16 best = 15 A + M1 C; merit_17 = the same 16 + the M2 E as the 17th",
    ),
    Case(
        "two_modersmal_languages",
        grades("E", extra="ML/ARA=A ML/SOM=B"),
        expected=dict(n_graded=18, merit_value_16=177.5, merit_value_17=177.5),
        reason="each ML language is a subject: A + B + 14 E; no M2, so no 17th",
    ),
    Case(
        "SVA_instead_of_SV",
        grades("E", drop=("SV",), extra="SVA=C"),
        expected=dict(n_graded=16, merit_value_16=165, eligible_vocational=True),
        reason="SVA fills the SV-or-SVA requirement: 15 x 10 + 15",
    ),
    Case(
        "block_grade_SO",
        "SV=E EN=E MA=E SO=D BL=E",
        expected=dict(n_graded=8, n_passed=8, merit_value_16=90, eligible_vocational=True, eligible_hp_es=False),
        reason="SO stands for GE, HI, RE, SH (4 x 12.5) beside 4 x 10",
    ),
    Case(
        "block_and_separate_subject",
        "SV=E EN=E MA=E NO=E BI=A",
        expected=dict(n_graded=6, merit_value_16=70),
        reason="BI graded alone (A) and in the NO block (E): the better counts once; FY, KE from the block",
    ),
    Case(
        "retest_later_decision_wins",
        grades("E", MA="F"),
        extra_xml=grade_xml("MA=E", datum="2016-06-20").replace("<prövning>false", "<prövning>true"),
        expected=dict(n_passed=16, eligible_vocational=True),
        reason="a grade from prövning is a grade like any other: the later decision (E) replaces F",
    ),
    Case(
        "autumn_grade_not_in_spring",
        grades("E", drop=("EN",)),
        extra_xml=grade_xml("EN=A", datum="2015-12-18", term=("HT", 2015)),
        expected=dict(n_graded=15, eligible_vocational=False),
        reason="EN graded in HT 2015 only: not a VT 2016 grade",
    ),
    Case(
        "grundsarskola_grade_not_used",
        grades("E", drop=("MA",)),
        extra_xml=grade_xml("MA=E").replace("<skolform>GR</skolform>", "<skolform>GRSAR</skolform>"),
        expected=dict(n_graded=15, eligible_vocational=False),
        reason="grades in skolform GRSAR are counted as not used (data contract 1.3)",
    ),
    Case(
        "course_grade_not_used",
        grades("E"),
        extra_xml="<kursbetyg><value>A</value><datum>2016-06-10</datum><prövning>false</prövning>"
        "<skolform>GY</skolform><kurskod>ENGENG05</kurskod></kursbetyg>",
        expected=dict(n_graded=16, merit_value_16=160),
        reason="kursbetyg are upper-secondary: not used",
    ),
    Case(
        "es_with_M2_as_twelfth",
        "SV=E EN=E MA=E BI=E BL=E FY=E GE=E HI=E HKK=E IDH=E KE=F MU=F RE=F SH=F SL=F TK=E M2/DEU=E",
        expected=dict(n_passed=12, eligible_hp_es=True, eligible_hp_na_te=False, eligible_hp_ek_hu_sa=False),
        reason="modern languages count as subjects for eligibility: M2 makes the 12th",
    ),
    Case(
        "only_streck",
        grades("-"),
        expected=dict(n_graded=16, n_passed=0, n_no_basis=16, n_failed=0, share_passed=0.0, merit_value_16=0),
        reason="'-' everywhere: graded subjects without a grade, nothing passed",
    ),
    Case(
        "weekend_only_record",
        attendance=[attendance("2016-01-02", "2016-01-03", 60, 0, 6)],
        expected=dict(offered_minutes=60, absence_rate=0.1),
        reason="a record with no school days is split by calendar days: all of it in VT 2016",
    ),
    Case(
        "programme_ended_before_the_term",
        grades("E"),
        register={"start": "2015-09-01", "end": "2015-12-20"},
        expected=dict(in_programme=False, terms_since_enrolment=1, is_baseline_term=False),
        reason="enrolled in HT 2015 only; VT 2016 is the term after",
    ),
    Case(
        "term_split_by_school_days",
        attendance=[attendance("2015-12-01", "2016-01-31", 4400, 220, 220)],
        expected=dict(offered_minutes=2100, absence_rate=0.1, invalid_absence_rate=0.05),
        reason="Dec 2015 has 23 and Jan 2016 21 school days: VT 2016 gets 21/44 of 4400 minutes",
    ),
    Case(
        "monthly_records",
        attendance=[
            attendance("2016-02-01", "2016-02-29", 6000, 300, 300),
            attendance("2016-03-01", "2016-03-31", 6000, 0, 600),
        ],
        expected=dict(
            offered_minutes=12000, absence_rate=0.1, invalid_absence_rate=0.075, is_absent_10=True, is_absent_15=False
        ),
        reason="(300 + 300 + 600) / 12000 = 10 %; invalid 900 / 12000",
    ),
    Case(
        "no_attendance",
        grades("E"),
        expected=dict(offered_minutes=None, absence_rate=None),
        reason="no records: missing data, not zero absence",
    ),
    Case(
        "in_programme_spring",
        grades("E"),
        register={"start": "2016-03-01", "end": "2016-06-15"},
        expected=dict(in_programme=True),
        reason="an enrolment active on at least one day of VT 2016",
    ),
    Case(
        "not_in_programme",
        grades("E"),
        expected=dict(in_programme=False, school_year=9, school_unit_code="12345678"),
        reason="no register row; årskurs and school from the SS 12000 enrolment",
    ),
]


@pytest.fixture(scope="module")
def contract_store(tmp_path_factory, monkeypatch_module):
    raw = tmp_path_factory.mktemp("contract")
    ids = write_inputs(raw, CASES)
    monkeypatch_module.setenv("PPSS_PSEUDONYM_KEY", KEY)
    store = raw.parent / "indicators.duckdb"
    summary = ingest(raw, store)
    assert not summary.rejected, [f.message for f in summary.files]
    build(store)
    return store, ids


@pytest.fixture(scope="module")
def outcomes(contract_store):
    store, ids = contract_store
    con = connect_readonly(store)
    rows = con.sql("select * from pupil_term_outcomes").pl()
    con.close()
    by_key = {(r["pupil_key"], r["term"], r["term_year"]): r for r in rows.iter_rows(named=True)}
    return {name: by_key for name in ids}, ids


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, outcomes) -> None:
    by_key, ids = outcomes[0][case.name], outcomes[1]
    row = by_key.get((pupil_key(KEY.encode(), ids[case.name]), "VT", 2016))
    assert row is not None, f"no VT 2016 row for {case.name}"
    for column, want in case.expected.items():
        got = row[column]
        if isinstance(want, float) and got is not None:
            assert got == pytest.approx(want), f"{case.name}.{column}: {case.reason}"
        else:
            assert got == want, f"{case.name}.{column} = {got!r}, expected {want!r}: {case.reason}"


def test_term_split_puts_the_rest_in_autumn(outcomes) -> None:
    by_key, ids = outcomes[0]["term_split_by_school_days"], outcomes[1]
    row = by_key[(pupil_key(KEY.encode(), ids["term_split_by_school_days"]), "HT", 2015)]
    assert row["offered_minutes"] == pytest.approx(2300)  # 23/44 of 4400
    assert row["in_programme"] is False


def test_removed_export_grades_leave_no_autumn_grades(outcomes) -> None:
    by_key, ids = outcomes[0]["removed_grade"], outcomes[1]
    row = by_key[(pupil_key(KEY.encode(), ids["removed_grade"]), "HT", 2015)]
    assert row["n_graded"] is None  # the earlier export's HT 2015 grades are gone from the newest


@pytest.mark.e2e
def test_report_renders_on_a_store_of_a_few_hand_written_pupils(contract_store, tmp_path) -> None:
    """A store of about 30 pupils, one of them enrolled: every section renders, figures suppressed."""
    store, _ = contract_store
    html = run_report(2016, store, tmp_path, min_cell=10).read_text(encoding="utf-8")
    assert "Uppföljning av PPSS 2016" in html and "Demodata" not in html
    assert html.count('<td class="num">..</td>') >= 3  # the one enrolled pupil is never shown
    assert "För få elever" in html  # text written from the numbers says there are too few
    assert 'class="ansi' not in html and "Traceback" not in html


def test_baseline_is_the_last_full_term_before_enrolment(outcomes) -> None:
    by_key, ids = outcomes[0]["in_programme_spring"], outcomes[1]
    key = pupil_key(KEY.encode(), ids["in_programme_spring"])
    autumn, spring = by_key[(key, "HT", 2015)], by_key[(key, "VT", 2016)]
    assert autumn["is_baseline_term"] is True and autumn["terms_since_enrolment"] == -1
    assert spring["is_baseline_term"] is False and spring["terms_since_enrolment"] == 0
    never = by_key[(pupil_key(KEY.encode(), ids["not_in_programme"]), "VT", 2016)]
    assert never["terms_since_enrolment"] is None and never["is_baseline_term"] is False


def test_at_least_forty_hand_computed_cases() -> None:
    assert len(CASES) >= 40 and all(c.reason for c in CASES)


@pytest.mark.e2e
def test_report_on_a_store_of_a_dozen_pupils(tmp_path, monkeypatch) -> None:
    """Twelve pupils, three enrolled: every section renders, every figure on them is `..`, and
    the text says there are too few pupils instead of stating a result."""
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", KEY)
    dozen = [
        Case(
            f"pupil{i}",
            grades("E" if i % 3 else "C"),
            gender="MF"[i % 2],
            attendance=[attendance("2016-02-01", "2016-02-29", 6000, 300 * (i % 4), 60)],
            register={"start": "2016-03-01"} if i < 3 else None,
        )
        for i in range(12)
    ]
    write_inputs(tmp_path / "raw", dozen)
    store = tmp_path / "dozen.duckdb"
    assert not ingest(tmp_path / "raw", store).rejected
    build(store)
    html = run_report(2016, store, tmp_path / "reports", min_cell=10).read_text(encoding="utf-8")
    assert "Metodbilaga" in html and "Traceback" not in html
    assert html.count('<td class="num">..</td>') >= 10
    assert "döljs av röjandekontrollen" in html
    assert "inte förklaras av slumpen" not in html  # no result is claimed on twelve pupils
    # every figure went through disclosure control: the audit passed, and an outside attack on
    # the published tables narrows no hidden cell below min_cell
    assert "Granskningen godkände mönstret" in html
    folder = tmp_path / "reports" / "2016" / "tables"
    assert (folder / "enrolled.csv").exists() and (store.parent / "dozen.duckdb.ledger").is_dir()
    assert all(protected(lo, hi, 10) for lo, hi in attack_report(folder).values())
