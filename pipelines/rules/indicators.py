"""The grade indicators as plain Python: the reference the SQL mart is tested against.

`sql/marts/02_term_grades.sql` computes these for every pupil and term in DuckDB; this
module states the same rules one pupil-term at a time, written independently, so the two
can be compared on generated data (tests/test_indicator_properties.py). Rules and sources:

- Points (Skolverket, "Meritpoäng för gymnasiestudier"): A=20, B=17.5, C=15, D=12.5,
  E=10; F and '-' (streck: no basis for assessment) give 0 and are both "not passed".
- A subject counts once: SV and SVA together count once, the better grade (gymnasie-
  förordningen 7 kap. 4 §: "svenska eller svenska som andraspråk"). Each language of M1,
  M2 and ML is a subject of its own.
- Block grades NO and SO (a single grade for the science or social-studies block, which
  Skolverket allows in årskurs 6 when the block was taught as one) stand for BI, FY, KE
  and GE, HI, RE, SH. This is a decision of this project, not a rule with a source:
  terminsbetyg in a block would otherwise hide three or four subjects from share_passed
  and eligibility. A subject graded both on its own and in a block takes the better grade.
- merit_value_16: the 16 best grades (max 320); the M2 grade may be one of them.
  merit_value_17 (from spring 2014, Skolverket, "17 ämnen ger nytt meritvärde"): the M2
  grade set aside, the 16 best of the rest, plus the M2 grade (max 340). With two M2
  languages the better is set aside and the other competes among the rest. M1 and ML can
  be among the 16, never the 17th.
- Eligibility (gymnasieförordningen 7 kap. 4-5 §§): passed SV or SVA, EN and MA, plus at
  least 5 other passed subjects (yrkesprogram) or 9 (högskoleförberedande); for EK, HU
  and SA the 9 include GE, HI, RE and SH; for NA and TE they include BI, FY and KE; for
  ES any 9.
- Grundsärskola grades (skolform GRSAR) are not read (data contract 1.3: the follow-up uses
  skolform GR): grundsärskola leads to gymnasiesärskola, not to the national programmes
  whose eligibility is measured here, so those pupils have no grade indicators in
  pupil_term_outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

POINTS = {"A": 20.0, "B": 17.5, "C": 15.0, "D": 12.5, "E": 10.0, "F": 0.0, "-": 0.0}
PASSING = frozenset("ABCDE")
BLOCKS = {"NO": ("BI", "FY", "KE"), "SO": ("GE", "HI", "RE", "SH")}
CORE = ("SV", "EN", "MA")


@dataclass(frozen=True)
class TermGrades:
    n_graded: int
    n_passed: int
    n_failed: int
    n_no_basis: int
    share_passed: float
    merit_value_16: float
    merit_value_17: float
    eligible_vocational: bool
    eligible_hp_es: bool
    eligible_hp_ek_hu_sa: bool
    eligible_hp_na_te: bool


def _rank(grade: str) -> tuple[float, int]:
    # The better grade wins; between two grades worth 0, F (a grade) before '-' (no grade).
    return POINTS[grade], 1 if grade == "F" else 0


def subject_grades(grades: Iterable[tuple[str, str | None, str]]) -> dict[tuple[str, str], str]:
    """One grade per subject (and language) from (subject, language, grade) rows."""
    best: dict[tuple[str, str], str] = {}
    for subject, language, grade in grades:
        subject = "SV" if subject in ("SV", "SVA") else subject
        keys = [(s, "") for s in BLOCKS[subject]] if subject in BLOCKS else [(subject, language or "")]
        for key in keys:
            if key not in best or _rank(grade) > _rank(best[key]):
                best[key] = grade
    return best


def term_grades(grades: Iterable[tuple[str, str | None, str]]) -> TermGrades | None:
    """The indicators of one pupil's grades in one term; None without grades."""
    subjects = subject_grades(grades)
    if not subjects:
        return None
    passed = {key for key, g in subjects.items() if g in PASSING}
    points = sorted((POINTS[g] for g in subjects.values()), reverse=True)
    m2 = sorted((POINTS[g] for (s, _), g in subjects.items() if s == "M2"), reverse=True)
    if m2:
        rest = sorted([POINTS[g] for (s, _), g in subjects.items() if s != "M2"] + m2[1:], reverse=True)
        merit_17 = sum(rest[:16]) + m2[0]
    else:
        merit_17 = sum(points[:16])
    passed_subjects = {s for s, _ in passed}
    core = all(s in passed_subjects for s in CORE)
    n_passed = len(passed)
    hp = core and n_passed >= 12
    return TermGrades(
        n_graded=len(subjects),
        n_passed=n_passed,
        n_failed=sum(g == "F" for g in subjects.values()),
        n_no_basis=sum(g == "-" for g in subjects.values()),
        share_passed=n_passed / len(subjects),
        merit_value_16=sum(points[:16]),
        merit_value_17=merit_17,
        eligible_vocational=core and n_passed >= 8,
        eligible_hp_es=hp,
        eligible_hp_ek_hu_sa=hp and {"GE", "HI", "RE", "SH"} <= passed_subjects,
        eligible_hp_na_te=hp and {"BI", "FY", "KE"} <= passed_subjects,
    )


def skolverket_mean_merit(values: Iterable[tuple[float | None, int | None]]) -> float | None:
    """Mean meritvärde as Skolverket publishes it: only pupils with at least one passed grade.

    `values` are (meritvärde, number of passed subjects) pairs.
    """
    kept = [m for m, n in values if m is not None and n]
    return sum(kept) / len(kept) if kept else None
