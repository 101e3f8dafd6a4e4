"""The estimator: each enrolled pupil's outcome against its weighted comparison, on one
outcome's analytic sample (`sample.py`).

- Estimand: the average effect on the enrolled pupils of the outcome's analytic sample
  (estimands.py), estimated on those whose calendar-month x årskurs cell could be balanced
  (at least 90 % of them is the aim; the report says how many and how the others differ).
- Estimator: D = outcome minus the cell's entropy-balanced comparison mean, moved to the
  pupil's own covariates by a regression on the comparison candidates (the bias correction
  of Abadie & Imbens 2011). Attendance uses the change from the pupil's own baseline months,
  relative to the school (a difference in differences on weighted pupils).
- Uncertainty: the mean of D with a CR2 standard error clustered by school that counts both
  sides, and t intervals with Bell-McCaffrey degrees of freedom from the enrolled pupils'
  schools (inference.py).
- Baseline equivalence per analytic sample (What Works Clearinghouse, Procedures and
  Standards Handbook v5.0): Hedges' g / Cox index; over 0.25 after weighting, no effect is
  claimed. Effect sizes use the outcome's pooled SD (Hedges' g) or the Cox index.
- Sensitivity: the E-value (VanderWeele & Ding 2017) of each estimate and of its interval's
  limit nearest to no effect. Whether an estimate may be read as an effect: evidence.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.analysis import estimands as est
from pipelines.analysis import evidence as evd
from pipelines.analysis.inference import bm_df, cr2_factors, t_interval
from pipelines.analysis.sample import PATH, Analytic

OUTCOME_LABELS = {
    "absence_rate": "Frånvaro 3–12 månader efter inskrivning",
    "share_passed_change": "Förändring i andel godkända ämnen",
    "eligible_vocational": "Behörig till yrkesprogram efter åk 9",
}
SHORT_LABELS = {
    "absence_rate": "Frånvaro",
    "share_passed_change": "Godkända ämnen",
    "eligible_vocational": "Behörighet",
}
BINARY = {"eligible_vocational"}
CLAIM_LIMIT = est.WWC_ADJUSTABLE  # WWC: a baseline difference above this rules out an effect claim
METHOD = "entropy balancing in calendar-month x årskurs cells, regression-adjusted; school-clustered CR2 SE"


# --- effect sizes and baseline equivalence ------------------------------------------------
def _wmean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    m = float(np.average(x, weights=w))
    return m, float(np.average((x - m) ** 2, weights=w) * len(x) / max(len(x) - 1, 1))


def hedges_g(x_t: np.ndarray, x_c: np.ndarray, w_t: np.ndarray | None = None, w_c: np.ndarray | None = None) -> float:
    """Standardised mean difference with the small-sample correction (WWC handbook)."""
    w_t = np.ones(len(x_t)) if w_t is None else w_t
    w_c = np.ones(len(x_c)) if w_c is None else w_c
    n_t, n_c = len(x_t), len(x_c)
    if n_t < 2 or n_c < 2:
        return float("nan")
    (m_t, v_t), (m_c, v_c) = _wmean_var(x_t, w_t), _wmean_var(x_c, w_c)
    return _standardise(m_t - m_c, v_t, v_c, n_t, n_c)


def _standardise(diff: float, v_t: float, v_c: float, n_t: int, n_c: int) -> float:
    pooled = np.sqrt(((n_t - 1) * v_t + (n_c - 1) * v_c) / (n_t + n_c - 2))
    if pooled == 0:
        return 0.0
    return float((1 - 3 / (4 * (n_t + n_c) - 9)) * diff / pooled)


def cox_index(p_t: float, p_c: float) -> float:
    """Difference in log odds divided by 1.65 (WWC handbook), proportions kept off 0 and 1."""
    p_t, p_c = (min(max(p, 1e-6), 1 - 1e-6) for p in (p_t, p_c))
    return float((np.log(p_t / (1 - p_t)) - np.log(p_c / (1 - p_c))) / 1.65)


def wwc_class(d: float) -> str:
    if np.isnan(d):
        return "."
    if abs(d) <= est.WWC_EQUIVALENT:
        return "uppfyllt"
    return "kräver justering" if abs(d) <= est.WWC_ADJUSTABLE else "ej uppfyllt"


BASELINE_MEASURES = {  # per outcome: (label, column, binary)
    "absence_rate": [
        ("Frånvaro före inskrivning, jämfört med skolan", "pre_mean", False),
        ("Frånvaro senaste månaden, jämfört med skolan", "pre_1", False),
        ("Andel godkända ämnen", "base_share_passed", False),
        ("Pojke", "boy", True),
    ],
    "share_passed_change": [
        ("Andel godkända ämnen", "base_share_passed", False),
        ("Meritvärde", "base_merit", False),
        ("Frånvaro före inskrivning, jämfört med skolan", "pre_mean", False),
        ("Pojke", "boy", True),
    ],
}
BASELINE_MEASURES["eligible_vocational"] = BASELINE_MEASURES["share_passed_change"]


def _difference(x_t: np.ndarray, x_c: np.ndarray, w_t: np.ndarray, w_c: np.ndarray, binary: bool) -> float:
    if not len(x_t) or not len(x_c):
        return float("nan")
    if binary:
        return cox_index(float(np.average(x_t, weights=w_t)), float(np.average(x_c, weights=w_c)))
    return hedges_g(x_t, x_c, w_t, w_c)


def equivalence(a: Analytic) -> pl.DataFrame:
    """Baseline differences in the outcome's analytic sample: all eligible enrolled pupils
    against all candidates (before), and matched enrolled against weighted neighbours (after)."""
    measures = BASELINE_MEASURES[a.outcome]
    # only the measured columns: filtering or joining every column of a city's frame copies GBs
    frame = a.frame.select("treated", "in_subset", *dict.fromkeys(column for _, column, _ in measures))
    weights = a.control_weights()
    matched_t = frame[np.sort(a.members["row"].to_numpy())]  # `row` is the frame's row number
    matched_c = frame[weights["c_row"].to_numpy()].with_columns(weights["weight"])
    t_all, c_all = frame.filter(pl.col("in_subset")), frame.filter(~pl.col("treated"))
    rows = []
    for label, column, binary in measures:
        before = _difference(
            t_all[column].to_numpy(), c_all[column].to_numpy(), np.ones(t_all.height), np.ones(c_all.height), binary
        )
        after = _difference(
            matched_t[column].to_numpy(),
            matched_c[column].to_numpy(),
            np.ones(matched_t.height),
            matched_c["weight"].to_numpy(),
            binary,
        )
        rows.append(
            {
                "outcome": a.outcome,
                "covariate": label,
                "before": before,
                "class_before": wwc_class(before),
                "after": after,
                "class_after": wwc_class(after),
            }
        )
    return pl.DataFrame(rows)


# --- the estimator ------------------------------------------------------------------------
def _adjusted(a: Analytic) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(treated, comparison): per enrolled pupil in the estimate its cell, outcome, adjusted
    comparison and D = y - y_c; per cell and school of comparison rows the sum s of each row's
    weight times its residual's deviation from the cell's, w (r - r_cell), with r = y - mu.

    y_c is the cell's weighted comparison mean plus mu(x_pupil) - (weighted mean of mu over
    the comparison), with mu the regression of the outcome on the covariates (and the squares
    of the absence path, which is skewed) over all comparison candidates: the bias correction
    of Abadie & Imbens (2011). With balanced means its cell average is the weighted
    difference; per pupil it moves each comparison to the pupil's own baseline.

    The same for every caller (the headline, each subgroup): computed once per analytic sample."""
    if a.adjusted is None:
        a.adjusted = _adjust(a)
    return a.adjusted


def _adjust(a: Analytic) -> tuple[pl.DataFrame, pl.DataFrame]:
    # The design built column-major by polars (what LAPACK reads, no strided copies), and
    # rows picked by their index: `row` numbers the frame's rows, so no joins on a city's
    # million comparison rows.
    design = a.frame.select(
        pl.lit(1.0).alias("_intercept"),
        *(pl.col(c).cast(pl.Float64) for c in a.covariates),
        *((pl.col(c).cast(pl.Float64) * pl.col(c).cast(pl.Float64)).alias(f"_{c}_sq") for c in PATH),
    ).to_numpy()
    y = a.frame["y"].cast(pl.Float64).to_numpy()
    controls = ~a.frame["treated"].to_numpy()
    mu = design @ np.linalg.lstsq(design[controls], y[controls], rcond=None)[0] if controls.any() else np.zeros(len(y))
    del design
    schools = a.frame["school_unit_code"]
    c_rows = a.weights["row"].to_numpy()
    comparison = a.weights.with_columns(
        pl.Series("r", y[c_rows] - mu[c_rows]), schools.gather(c_rows).fill_null("?").alias("school_unit_code")
    ).with_columns((pl.col("w") * pl.col("r")).sum().over("cell").alias("r_cell"))
    t_rows = a.members["row"].to_numpy()
    r_cell = comparison.group_by("cell").agg(pl.col("r_cell").first())
    treated = (
        a.members.with_columns(
            a.frame["pupil_key"].gather(t_rows),
            schools.gather(t_rows),
            pl.Series("y", y[t_rows]),
            pl.Series("mu", mu[t_rows]),
        )
        .join(r_cell, on="cell", how="left")
        .with_columns((pl.col("mu") + pl.col("r_cell")).alias("y_c"))
        .with_columns((pl.col("y") - pl.col("y_c")).alias("d"))
        .select("row", "cell", "pupil_key", "school_unit_code", "y", "y_c", "d")
        .sort("row")
    )
    # the comparison side of the clustered standard error, summed per cell and school once:
    # a subgroup's estimate only rescales each cell's sum (clustered_effect)
    sums = comparison.group_by("cell", "school_unit_code").agg(
        (pl.col("w") * (pl.col("r") - pl.col("r_cell"))).sum().alias("s")
    )
    return treated, sums


def pair_differences(a: Analytic) -> pl.DataFrame:
    """Per enrolled pupil in the estimate: outcome, its adjusted comparison, and D = y - y_c."""
    if a.members.is_empty():
        schema = {"row": pl.Int64, "cell": pl.String, "pupil_key": pl.String, "school_unit_code": pl.String}
        return pl.DataFrame(schema=schema | {c: pl.Float64 for c in ("y", "y_c", "d")})
    return _adjusted(a)[0]


def clustered_effect(a: Analytic, keys: set[str] | None = None) -> tuple[float, float, int, float]:
    """Mean D over the enrolled pupils in the estimate (or those of `keys`), with a standard
    error clustered by school that counts both sides: an enrolled pupil's deviation, and each
    comparison pupil's share of its cell's weighted mean (weights taken as given). Without
    the second part, a comparison mean resting on few pupils would look certain. The third
    value is the number of schools the enrolled pupils come from (the interval's clusters),
    the fourth the Bell-McCaffrey degrees of freedom of their mean (inference.bm_df).

    CR2 (inference.py): each school's sum is scaled by (1 - n_g/n)^(-1/2), n_g its enrolled
    pupils in the estimate (its leverage in their mean); a school only comparison pupils come
    from has none and keeps its sum as it is."""
    if a.members.is_empty():
        return float("nan"), float("nan"), 0, float("nan")
    treated, comparison = _adjusted(a)
    if keys is not None:
        treated = treated.filter(pl.col("pupil_key").is_in(list(keys)))
    n = treated.height
    if n == 0:
        return float("nan"), float("nan"), 0, float("nan")
    mean = float(treated["d"].mean())
    per_cell = treated.group_by("cell").len("n_t").with_columns(pl.col("n_t").cast(pl.Float64))
    inf = pl.concat(
        [
            treated.select("school_unit_code", ((pl.col("d") - mean) / n).alias("psi")),
            comparison.join(per_cell, on="cell").select(
                "school_unit_code", (-pl.col("n_t") / n * pl.col("s")).alias("psi")
            ),
        ]
    ).with_columns(pl.col("school_unit_code").fill_null("?"))
    sizes = treated.group_by(pl.col("school_unit_code").fill_null("?")).len("n_g")
    sums = (
        inf.group_by("school_unit_code")
        .agg(pl.col("psi").sum())
        .join(sizes, on="school_unit_code", how="left")
        .with_columns(pl.col("n_g").fill_null(0))
    )
    # the variance sums over every school either side draws on; the interval's degrees of
    # freedom count only the enrolled pupils' schools (inference.py)
    g_all, g = sums.height, sizes.height
    if g_all < 2 or g < 2:
        return mean, float("nan"), g, float("nan")
    scaled = sums["psi"].to_numpy() * cr2_factors(sums["n_g"].to_numpy().astype(float))
    return mean, float(np.sqrt((scaled**2).sum())), g, bm_df(sizes["n_g"].to_numpy())


@dataclass
class Estimate:
    outcome: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_eligible: int
    n_enrolled: int
    n_comparison: int
    n_schools: int
    mean_treated: float
    mean_comparison: float
    effect_size: float
    effect_size_measure: str
    max_baseline_difference: float
    evalue: float
    evalue_ci: float
    # the evidence on trends (evidence.py), filled by headline(): NaN where not tested
    pretrend_p: float = float("nan")
    robust_low: float = float("nan")
    robust_high: float = float("nan")
    breakdown: float = float("nan")
    # a grade outcome of pupils whose attendance got the verdict "trend" (evaluation.headline)
    attendance_trend: bool = False

    @property
    def verdict(self) -> str:
        return evd.judge(
            self.estimate,
            self.ci_low,
            self.ci_high,
            claimable=self.claimable,
            n_schools=self.n_schools,
            pretrend_p=self.pretrend_p,
            robust_lo=self.robust_low,
            robust_hi=self.robust_high,
            trend_elsewhere=self.attendance_trend,
        )

    @property
    def finding(self) -> bool:
        """An effect the report states (a withheld verdict is no finding)."""
        return self.verdict == evd.EFFECT

    @property
    def coverage(self) -> float:
        return self.n_enrolled / self.n_eligible if self.n_eligible else float("nan")

    @property
    def claimable(self) -> bool:
        """An effect may be stated only where the groups were alike enough at baseline."""
        return bool(np.isfinite(self.estimate)) and self.max_baseline_difference <= CLAIM_LIMIT

    @property
    def certain(self) -> bool:
        return self.claimable and (self.ci_low > 0 or self.ci_high < 0)


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): the strength of association, on the
    risk-ratio scale, that an unmeasured confounder would need with both enrolment and the
    outcome to explain the estimate away."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = max(rr, 1 / rr)
    return float(rr + np.sqrt(rr * (rr - 1)))


def _evalues(outcome: str, est_: float, lo: float, hi: float, sd: float, p_t: float) -> tuple[float, float]:
    """E-values of the estimate and of the interval limit nearest to no effect; a continuous
    outcome goes through its standardised difference, RR = exp(0.91 d) (VanderWeele & Ding)."""
    if not np.isfinite(est_):
        return float("nan"), float("nan")

    def rr(x: float) -> float:
        if outcome in BINARY:
            p_c = p_t - x
            return p_t / p_c if 0 < p_c < 1 and p_t > 0 else float("nan")
        return float(np.exp(0.91 * x / sd)) if sd > 0 else float("nan")

    nearest = 0.0 if not np.isfinite(lo) or lo <= 0 <= hi else (lo if lo > 0 else hi)
    return evalue_rr(rr(est_)), (1.0 if nearest == 0 else evalue_rr(rr(nearest)))


def estimate(a: Analytic) -> Estimate:
    diffs = pair_differences(a)
    d = diffs["d"].to_numpy()
    mean, se, g, df = clustered_effect(a)
    lo, hi, p = t_interval(mean, se, g, df)
    y_t = diffs["y"].to_numpy()
    y_c = diffs["y_c"].to_numpy()
    m_t = float(y_t.mean()) if len(y_t) else float("nan")
    m_c = float(y_c.mean()) if len(y_c) else float("nan")
    level = {"absence_rate": "post_mean", "share_passed_change": "later_share_passed"}.get(a.outcome, "y")
    weights = a.control_weights()
    levels = a.frame[level].cast(pl.Float64)  # `row` is the frame's row number; diffs are in row order
    t_level = levels.gather(diffs["row"]).to_numpy()
    c_level, c_w = levels.gather(weights["c_row"]).to_numpy(), weights["weight"].to_numpy()
    if a.outcome in BINARY:
        size, measure, sd = (cox_index(m_t, m_t - mean) if np.isfinite(mean) else float("nan")), "Cox index", 1.0
    elif len(t_level) >= 2 and len(c_level) >= 2:
        v_t, (_, v_c) = float(np.var(t_level, ddof=1)), _wmean_var(c_level, c_w)
        size, measure = _standardise(mean, v_t, v_c, len(t_level), len(c_level)), "Hedges g"
        sd = float(np.sqrt(((len(t_level) - 1) * v_t + (len(c_level) - 1) * v_c) / (len(t_level) + len(c_level) - 2)))
    else:
        size, measure, sd = float("nan"), "Hedges g", float("nan")
    balance = equivalence(a)
    worst = float(balance["after"].abs().max()) if balance.height and balance["after"].is_not_nan().any() else np.nan
    e_point, e_ci = _evalues(a.outcome, mean, lo, hi, sd, m_t)
    return Estimate(
        a.outcome,
        mean,
        se,
        lo,
        hi,
        p,
        a.n_eligible,
        len(d),
        a.n_comparison,
        g,
        m_t,
        m_c,
        size,
        measure,
        worst if np.isfinite(worst) else float("inf"),
        e_point,
        e_ci,
    )


def _baseline_label(e: Estimate) -> str:
    """WWC baseline equivalence in words; alike in level but apart in trend before enrolment
    (a failed pre-trend test) is not equivalent either."""
    if not e.claimable:
        return "ej uppfyllt"
    if np.isfinite(e.pretrend_p) and e.pretrend_p < evd.ALPHA:
        return "ej uppfyllt (trend före)"
    return "uppfyllt" if e.max_baseline_difference <= est.WWC_EQUIVALENT else "kräver justering (gjord)"


def estimates_frame(estimates: dict[str, Estimate]) -> pl.DataFrame:
    """The headline estimates, one row per outcome (raw: the disclosure layer hides). Where
    the groups differed by more than 0.25 at baseline, no interval or E-value is given."""
    rows = []
    for e in estimates.values():
        claim = e.claimable
        rows.append(
            {
                "outcome": e.outcome,
                "measure": OUTCOME_LABELS[e.outcome],
                "n_eligible": e.n_eligible,
                "n_treated": e.n_enrolled,
                "n_comparison": e.n_comparison,
                "difference": e.estimate,
                "lo": e.ci_low if claim else None,
                "hi": e.ci_high if claim else None,
                "effect_size": e.effect_size,
                "size_kind": e.effect_size_measure,
                "evalue": e.evalue if claim else None,
                "evalue_ci": e.evalue_ci if claim else None,
                "baseline": _baseline_label(e),
                "n_schools": e.n_schools,
                "pretrend_p": e.pretrend_p,
                "robust_lo": e.robust_low if claim else None,
                "robust_hi": e.robust_high if claim else None,
                "breakdown": e.breakdown if claim and np.isfinite(e.breakdown) else None,
                "verdict": e.verdict,
            }
        )
    schema = {
        "outcome": pl.String,
        "measure": pl.String,
        "n_eligible": pl.Int64,
        "n_treated": pl.Int64,
        "n_comparison": pl.Int64,
        "difference": pl.Float64,
        "lo": pl.Float64,
        "hi": pl.Float64,
        "effect_size": pl.Float64,
        "size_kind": pl.String,
        "evalue": pl.Float64,
        "evalue_ci": pl.Float64,
        "baseline": pl.String,
        "n_schools": pl.Int64,
        "pretrend_p": pl.Float64,
        "robust_lo": pl.Float64,
        "robust_hi": pl.Float64,
        "breakdown": pl.Float64,
        "verdict": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col(pl.Float64).fill_nan(None))
