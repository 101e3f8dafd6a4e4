"""Whether an estimate may be read as the programme's effect: pre-trends, a robust interval
and the verdict every sentence, table and effects.csv row follows.

- Pre-trend tests: attendance, the placebo months -14..-9 (evaluation.event_curve); grades,
  share passed three terms before the cohort's term, a term never balanced on (grade_placebo).
- Robust interval: a bound on how far trends could have departed from parallel after
  enrolment, in the spirit of Rambachan & Roth's (2023) relative magnitudes, simplified: the
  pre-period departure, extrapolated over the distance from the baseline to the outcome, times
  M_BAR. The departure is taken at its upper confidence limit (upper_limit: |estimate| plus
  the one-sided t quantile times its clustered standard error, as in an equivalence test),
  not at its point estimate: a placebo test without power must not pass for evidence of no
  trend. Attendance: the placebo months' slope through the baseline; share passed: the grade
  placebo, two terms apart as the outcome is; eligibility: the grade placebo turned into
  eligibility by the comparison pupils' gradient of eligibility on share passed. The interval
  widens by that bound on each side; the breakdown value is the M_BAR at which it first
  reaches zero.
- Verdict: an effect is stated only where the groups were alike at baseline, the enrolled
  pupils come from at least MIN_SCHOOLS schools, no pre-trend test fails (at ALPHA), and both
  the 95 % and the robust interval exclude zero. A trend before enrolment makes the verdict
  "trend": the design cannot separate the programme from it. A grade outcome is also held to
  attendance (the same pupils were selected): its test, and where attendance's verdict is
  "trend", so is the grades' (evaluation.headline).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from pipelines.analysis import estimands as est
from pipelines.analysis.eventtime import BASE_CENTRE, POST_CENTRE
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


def upper_limit(estimate: float, se: float, g: int, df: float | None = None) -> float:
    """The largest |departure| a one-sided test at ALPHA cannot reject (the equivalence
    bound of a two one-sided tests procedure, t with `df` or else g - 1 degrees of freedom):
    a pre-trend counts as small only as far as the data show it small, not by its point
    estimate. Without a standard error, |estimate|."""
    if not np.isfinite(estimate):
        return float("nan")
    if not np.isfinite(se) or g < 2:
        return abs(estimate)
    dof = g - 1 if df is None or not np.isfinite(df) else df
    return abs(estimate) + float(stats.t.ppf(1 - ALPHA, dof)) * se


def absence_bound(curve: pl.DataFrame, slope_se: float = float("nan"), schools: int = 0) -> float:
    """The pre-trend's slope through the baseline (least squares over the placebo months of
    the event curve, in months from the baseline's centre), taken at its upper confidence
    limit (upper_limit, with the slope's clustered standard error from
    eventtime.pretrend_slope) and extrapolated to the outcome window's centre: a linear trend
    the data cannot rule out moves the estimate by up to about this much."""
    pre = curve.filter(
        pl.col("event_month").is_between(est.PLACEBO_FIRST, est.PLACEBO_LAST) & pl.col("att").is_not_null()
    )
    if pre.is_empty():
        return float("nan")
    x = pre["event_month"].to_numpy().astype(float) - BASE_CENTRE
    slope = float((x * pre["att"].to_numpy()).sum() / (x**2).sum())
    return upper_limit(slope, slope_se, schools) * (POST_CENTRE - BASE_CENTRE)


def grade_placebo(a: Analytic) -> dict:
    """The grades' placebo: the change in share passed from three terms before the cohort's
    term to the baseline term, enrolled against their cell's weighted comparison (weights
    renormalised over the rows with that term). Two terms apart, as the outcome's change is,
    so its size bounds the outcome's bias under a trend that continues (bound)."""
    empty = {
        "estimate": float("nan"),
        "se": float("nan"),
        "p_value": float("nan"),
        "n": 0,
        "schools": 0,
        "bound": float("nan"),
    }
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
    mean, se, g, df = clustered_mean(d, treated["school_unit_code"].fill_null("?").to_numpy())
    _, _, p = t_interval(mean, se, g, df)
    # the placebo runs from the baseline term backwards: a trend shows with the opposite sign
    bound = upper_limit(mean, se, g, df)
    return {"estimate": mean, "se": se, "p_value": p, "n": treated.height, "schools": g, "bound": bound}


def eligibility_gradient(a: Analytic) -> float:
    """The comparison pupils' gradient of the outcome (eligibility) on the baseline term's
    share passed: weighted least squares over the weighted comparison rows (cell weights).
    It turns a bound in share passed (grade_placebo) into one in eligibility: a trend that
    moves share passed by B moves eligibility by about this gradient times B."""
    if a.weights.is_empty():
        return float("nan")
    rows = a.weights.select("row", "w").join(
        a.frame.select("row", pl.col("y").cast(pl.Float64), pl.col("base_share_passed").cast(pl.Float64)), on="row"
    )
    rows = rows.drop_nulls()
    if rows.height < 3:
        return float("nan")
    w, x, y = (rows[c].to_numpy() for c in ("w", "base_share_passed", "y"))
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    var = float(np.average((x - xm) ** 2, weights=w))
    return float(np.average((x - xm) * (y - ym), weights=w) / var) if var > 0 else float("nan")


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
    trend_elsewhere: bool = False,
) -> str:
    """The verdict code of one estimate (module docstring). A subgroup also needs q < ALPHA;
    `trend_elsewhere`: a grade outcome whose pupils' attendance got the verdict "trend"."""
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
    if trend_elsewhere or (np.isfinite(robust_lo) and robust_lo <= 0 <= robust_hi):
        return TREND
    return EFFECT
