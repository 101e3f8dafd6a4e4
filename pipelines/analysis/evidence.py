"""Whether an estimate may be read as the programme's effect: pre-trends, a robust interval
and the verdict every sentence, table and effects.csv row follows.

- Pre-trend tests: attendance, the placebo months -14..-9 (evaluation.event_curve); grades,
  share passed three terms before the cohort's term, a term never balanced on (grade_placebo).
- Robust interval: a bound on how far trends could have departed from parallel after
  enrolment, in the spirit of Rambachan & Roth's (2023) relative magnitudes, simplified: the
  pre-period departure, extrapolated over the distance from the baseline to the outcome, times
  M_BAR. The interval widens by that bound on each side; the breakdown value is the M_BAR at
  which it first reaches zero.
- Verdict: an effect is stated only where the groups were alike at baseline, the enrolled
  pupils come from at least MIN_SCHOOLS schools, no pre-trend test fails (at ALPHA), and both
  the 95 % and the robust interval exclude zero. A trend before enrolment makes the verdict
  "trend": the design cannot separate the programme from it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.analysis import estimands as est
from pipelines.analysis.inference import ALPHA, MIN_SCHOOLS, clustered_mean, t_interval
from pipelines.analysis.sample import Analytic

M_BAR = 1.0  # post-period departures as large as the pre-period's, extrapolated

# verdict codes (effects.csv); the report's words are in labels.VERDICT
EFFECT, NO_CHANGE, TREND, FEW_SCHOOLS, NOT_CLAIMABLE, NONE = (
    "effect",
    "no_change",
    "trend",
    "few_schools",
    "not_claimable",
    "none",
)

# months: the baseline's centre (months -8..-1) and the outcome window's centre (+3..+12)
BASE_CENTRE = -(est.PRE_MONTHS + 1) / 2
POST_CENTRE = (est.OUTCOME_FIRST + est.OUTCOME_LAST) / 2


def absence_bound(curve: pl.DataFrame) -> float:
    """The pre-trend's slope through the baseline (least squares over the placebo months of
    the event curve, in months from the baseline's centre), extrapolated to the outcome
    window's centre: a linear trend that continues moves the estimate by about this much."""
    pre = curve.filter(
        pl.col("event_month").is_between(est.PLACEBO_FIRST, est.PLACEBO_LAST) & pl.col("att").is_not_null()
    )
    if pre.is_empty():
        return float("nan")
    x = pre["event_month"].to_numpy().astype(float) - BASE_CENTRE
    slope = float((x * pre["att"].to_numpy()).sum() / (x**2).sum())
    return abs(slope) * (POST_CENTRE - BASE_CENTRE)


def grade_placebo(a: Analytic) -> dict:
    """The grades' placebo: the change in share passed from three terms before the cohort's
    term to the baseline term, enrolled against their cell's weighted comparison (weights
    renormalised over the rows with that term). Two terms apart, as the outcome's change is,
    so its size bounds the outcome's bias under a trend that continues (bound)."""
    empty = {"estimate": float("nan"), "p_value": float("nan"), "n": 0, "schools": 0, "bound": float("nan")}
    if a.members.is_empty() or "placebo_share_passed" not in a.frame.columns:
        return empty
    frame = a.frame.select(
        "row", "school_unit_code", (pl.col("placebo_share_passed") - pl.col("base_share_passed")).alias("p")
    )
    comparison = (
        a.weights.join(frame, on="row")
        .drop_nulls("p")
        .group_by("cell")
        .agg(((pl.col("w") * pl.col("p")).sum() / pl.col("w").sum()).alias("p_c"))
    )
    treated = a.members.join(frame, on="row").drop_nulls("p").join(comparison, on="cell")
    if treated.height < 2:
        return empty
    d = (treated["p"] - treated["p_c"]).to_numpy()
    mean, se, g = clustered_mean(d, treated["school_unit_code"].fill_null("?").to_numpy())
    _, _, p = t_interval(mean, se, g)
    # the placebo runs from the baseline term backwards: a trend shows with the opposite sign
    return {"estimate": mean, "p_value": p, "n": treated.height, "schools": g, "bound": abs(mean)}


def robust_interval(lo: float, hi: float, bound: float, m_bar: float = M_BAR) -> tuple[float, float]:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return float("nan"), float("nan")
    if not np.isfinite(bound):
        return lo, hi
    return lo - m_bar * bound, hi + m_bar * bound


def breakdown(lo: float, hi: float, bound: float) -> float:
    """The M_BAR at which the robust interval first covers zero (inf without a pre-trend, 0
    when the 95 % interval already does)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 <= hi:
        return 0.0
    gap = lo if lo > 0 else -hi
    return float("inf") if not np.isfinite(bound) or bound == 0 else float(gap / bound)


def judge(
    estimate: float,
    lo: float,
    hi: float,
    *,
    claimable: bool,
    n_schools: int,
    pretrend_p: float,
    robust_lo: float,
    robust_hi: float,
    q_value: float | None = None,
) -> str:
    """The verdict code of one estimate (module docstring). A subgroup also needs q < ALPHA."""
    if estimate is None or not np.isfinite(estimate):
        return NONE
    if not claimable:
        return NOT_CLAIMABLE
    if n_schools < MIN_SCHOOLS:
        return FEW_SCHOOLS
    if pretrend_p is not None and np.isfinite(pretrend_p) and pretrend_p < ALPHA:
        return TREND
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 <= hi:
        return NO_CHANGE
    if q_value is not None and not (np.isfinite(q_value) and q_value < ALPHA):
        return NO_CHANGE
    if np.isfinite(robust_lo) and robust_lo <= 0 <= robust_hi:
        return TREND
    return EFFECT
