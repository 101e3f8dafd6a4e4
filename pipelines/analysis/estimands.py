"""What each headline effect is about: outcomes, windows and who is eligible.

One definition, read by the estimator (`evaluation`) and by the demo generator's truth
(`demo_truth`), so that the truth a simulation checks against is about exactly the pupils
the report speaks of. Months are counted as `year * 12 + month - 1`, terms as
`year * 2 + (1 if HT else 0)` (the store's `term_index`).
"""

from __future__ import annotations

from datetime import date

# The report of year Y uses nothing dated after 31 December Y.
OUTCOMES = ("absence_rate", "share_passed_change", "eligible_vocational")
# Attendance: baseline months are the reported months among the eight calendar months
# before the month of first enrolment (at least three needed); outcome months are months
# +3..+12 (the first months after enrolment are still settling), cut at the year's end.
PRE_MONTHS = 8
MIN_PRE_MONTHS = 3
OUTCOME_FIRST, OUTCOME_LAST = 3, 12
# A pupil enrolled later serves as a comparison until this many months before its own
# enrolment (anticipation: pupils are often enrolled right after an absence peak).
ANTICIPATION_MONTHS = 3
# Placebo months for the pre-trend test: before the baseline months, never matched on.
PLACEBO_FIRST, PLACEBO_LAST = -14, -9
# Grades: the baseline term is the last term before the term of first enrolment; the change
# in share of passed subjects runs from it to the term after the enrolment term.
CHANGE_TERMS = 2
# Baseline equivalence (What Works Clearinghouse, Procedures and Standards Handbook v5.0): a
# standardised difference within WWC_EQUIVALENT needs no adjustment, one within
# WWC_ADJUSTABLE needs statistical adjustment, and beyond it no effect may be claimed.
WWC_EQUIVALENT = 0.05
WWC_ADJUSTABLE = 0.25


# Attendance is measured relative to the pupil's school that month (evaluation_months.sql);
# a school-month needs this many pupils outside PPSS besides the pupil, else the district's.
MIN_REFERENCE = 10


def sql_names() -> dict[str, str]:
    """The windows above, substituted by name into the evaluation's report queries."""
    return {
        "min_reference": str(MIN_REFERENCE),
        "pre_months": str(PRE_MONTHS),
        "outcome_first": str(OUTCOME_FIRST),
        "outcome_last": str(OUTCOME_LAST),
        "anticipation": str(ANTICIPATION_MONTHS),
    }


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def term_index(d: date) -> int:
    return d.year * 2 + (1 if d.month >= 7 else 0)


def last_month(year: int) -> int:
    return year * 12 + 11


def last_term(year: int) -> int:
    return year * 2 + 1


def absence_window(enrolment_month: int, year: int) -> tuple[range, range]:
    """(baseline months, outcome months) for a pupil first enrolled in `enrolment_month`."""
    pre = range(enrolment_month - PRE_MONTHS, enrolment_month)
    post = range(enrolment_month + OUTCOME_FIRST, min(enrolment_month + OUTCOME_LAST, last_month(year)) + 1)
    return pre, post
