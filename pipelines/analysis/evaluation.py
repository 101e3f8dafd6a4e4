"""Effects against matched comparison pupils, on the evaluation sample (`sample.py`).

- Estimand: the average effect on the enrolled pupils of the outcome's analytic sample
  (estimands.py), estimated on those with comparison pupils within the caliper (at least
  90 % of them is the aim; the report says how many and how the others differ).
- Estimator: bias-corrected nearest-neighbour matching (Abadie & Imbens 2011). For each
  enrolled pupil, D = outcome minus the mean of its neighbours' outcomes, each adjusted by a
  regression of the comparison outcome on the covariates. Attendance uses the change from
  the pupil's own baseline months (a difference in differences on matched pupils).
- Uncertainty: the mean of D with a standard error clustered by school (pupils of one
  school are alike) and t intervals with (schools - 1) degrees of freedom.
- Baseline equivalence per analytic sample (What Works Clearinghouse, Procedures and
  Standards Handbook v5.0): Hedges' g / Cox index; over 0.25 after matching, no effect is
  claimed. Effect sizes use the outcome's pooled SD (Hedges' g) or the Cox index.
- Pre-trend: placebo months -14..-9, never matched on; a joint Wald test that all six
  differences are zero qualifies the attendance headline.
- Sensitivity: the E-value (VanderWeele & Ding 2017) of each headline effect and of its
  interval's limit nearest to no effect.
- Subgroups: each relative to its own matched comparison, Benjamini-Hochberg within the
  table, labelled exploratory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.stats.multitest import multipletests

from pipelines import labels as lb
from pipelines.analysis import estimands as est
from pipelines.analysis import evidence as evd
from pipelines.analysis.followup import describe_interval, mean_ci, report_query, with_share_ci
from pipelines.analysis.inference import MIN_SCHOOLS, clustered_mean, t_interval
from pipelines.analysis.sample import PATH, Analytic, EvaluationSample
from pipelines.analysis.suppress import fmt_num, fmt_pct

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
METHOD = "entropy balancing in calendar-month x årskurs cells, regression-adjusted; school-clustered SE"


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


def clustered_effect(a: Analytic, keys: set[str] | None = None) -> tuple[float, float, int]:
    """Mean D over the enrolled pupils in the estimate (or those of `keys`), with a standard
    error clustered by school that counts both sides: an enrolled pupil's deviation, and each
    comparison pupil's share of its cell's weighted mean (weights taken as given). Without
    the second part, a comparison mean resting on few pupils would look certain. The third
    value is the number of schools the enrolled pupils come from (the interval's clusters)."""
    if a.members.is_empty():
        return float("nan"), float("nan"), 0
    treated, comparison = _adjusted(a)
    if keys is not None:
        treated = treated.filter(pl.col("pupil_key").is_in(list(keys)))
    n = treated.height
    if n == 0:
        return float("nan"), float("nan"), 0
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
    sums = inf.group_by("school_unit_code").agg(pl.col("psi").sum())["psi"].to_numpy()
    # the variance sums over every school either side draws on; the interval's degrees of
    # freedom count only the enrolled pupils' schools (inference.py)
    g_all, g = len(sums), treated["school_unit_code"].fill_null("?").n_unique()
    if g_all < 2 or g < 2:
        return mean, float("nan"), g
    return mean, float(np.sqrt(g_all / (g_all - 1) * (sums**2).sum())), g


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
    mean, se, g = clustered_effect(a)
    lo, hi, p = t_interval(mean, se, g)
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


# --- attendance in event time, and the pre-trend test -------------------------------------
EVENT_MONTHS = np.arange(est.PLACEBO_FIRST, est.OUTCOME_LAST + 1)


def event_curve(sample: EvaluationSample) -> tuple[pl.DataFrame, dict]:
    """Per month from enrolment: mean over matched enrolled pupils of (own change from the
    baseline months) minus (the neighbours' weighted change), with clustered t intervals;
    and a joint Wald test over the placebo months (F with schools - 1 denominator df)."""
    if "event_curve" in sample.cache:
        return sample.cache["event_curve"]
    a = sample.analytic["absence_rate"]
    t_side, c_side = _event_paths(a, sample.months)
    schools = a.frame.select(pl.col("row").alias("t_row"), "school_unit_code")
    d = (
        t_side.join(c_side, on=["cell", "e"])
        .with_columns((pl.col("change") - pl.col("c_change")).alias("d"))
        .join(schools, on="t_row")
        .sort("e", "t_row")
    )
    rows, placebo = [], []
    for e in EVENT_MONTHS:
        part = d.filter(pl.col("e") == e)
        mean, se, g = clustered_mean(part["d"].to_numpy(), part["school_unit_code"].fill_null("?").to_numpy())
        lo, hi, _ = t_interval(mean, se, g)
        rows.append({"event_month": int(e), "att": mean, "lo": lo, "hi": hi, "n_treated": part.height})
        if est.PLACEBO_FIRST <= e <= est.PLACEBO_LAST:
            placebo.append(part.with_columns((pl.col("d") - mean).alias("inf"), pl.lit(part.height).alias("n")))
    curve = pl.DataFrame(rows).with_columns(pl.col(pl.Float64).fill_nan(None))
    sample.cache["event_curve"] = (curve, pretrend_test(placebo, curve))
    return sample.cache["event_curve"]


def _event_paths(a: Analytic, months: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(enrolled side, comparison side) of the event curve: each matched enrolled row's change
    from its baseline per event month (t_row, cell, e, change), and per cell and event month
    the comparison rows' weighted mean change over the rows with that month (cell, e, c_change).

    A comparison row counts up to three months before its own enrolment. Months are looked up
    in a pupil x calendar-month grid (a city: 90,000 x 60 values), never by joining every
    candidate row with its months (rows x 27 event months: tens of millions of rows, GBs)."""
    events = EVENT_MONTHS.astype(np.int64)
    frame = a.frame.select("row", "pupil_key", "cohort_month", "own_month", "pre_mean")
    keys = pl.DataFrame({"pupil_key": months["pupil_key"].unique(maintain_order=True)}).with_row_index("p")
    n_p = keys.height  # index n_p: a pupil without any reported month
    grid_months = months.join(keys, on="pupil_key")
    m0 = int(grid_months["month_index"].min()) if grid_months.height else 0
    span = (int(grid_months["month_index"].max()) - m0 + 1) if grid_months.height else 0
    grid = np.full((n_p + 1, span + 1), np.nan)  # the last column: a month outside the data
    grid[grid_months["p"].to_numpy(), grid_months["month_index"].to_numpy() - m0] = grid_months[
        "absence_rate"
    ].to_numpy()

    # per frame row (indexed by `row`): the pupil's grid row, cohort month, own month, baseline
    r = frame.join(keys, on="pupil_key", how="left")
    rows_at = r["row"].to_numpy()
    size = int(rows_at.max()) + 1 if len(rows_at) else 0
    p_of, cohort_of, own_of, base_of = np.full(size, n_p), np.zeros(size, np.int64), np.zeros(size), np.zeros(size)
    p_of[rows_at] = r["p"].fill_null(n_p).to_numpy()
    cohort_of[rows_at] = r["cohort_month"].to_numpy()
    own_of[rows_at] = r["own_month"].cast(pl.Float64).fill_null(np.inf).to_numpy()
    base_of[rows_at] = r["pre_mean"].cast(pl.Float64).fill_null(np.nan).to_numpy()

    def changes(rows: np.ndarray, comparison: bool) -> np.ndarray:
        """rows x event months: absence minus the row's baseline, NaN where not counted."""
        mi = cohort_of[rows][:, None] + events[None, :]
        col = mi - m0
        col = np.where((col >= 0) & (col < span), col, span)
        out = grid[p_of[rows][:, None], col] - base_of[rows][:, None]
        if comparison:  # a later-enrolled pupil counts until three months before its enrolment
            out[~(mi < own_of[rows][:, None] - 3)] = np.nan
        return out

    t = a.members.select("row", "cell")
    d_t = changes(t["row"].to_numpy(), comparison=False)
    t_idx, e_idx = np.nonzero(~np.isnan(d_t))
    t_side = pl.DataFrame(
        {
            "t_row": t["row"].to_numpy()[t_idx],
            "cell": t["cell"].to_numpy()[t_idx],
            "e": events[e_idx].astype(np.int32),
            "change": d_t[t_idx, e_idx],
        },
        schema={"t_row": pl.Int64, "cell": pl.String, "e": pl.Int32, "change": pl.Float64},
    )
    cells = a.weights["cell"].unique().sort().to_numpy()
    codes = (a.weights["cell"].rank("dense") - 1).to_numpy().astype(np.int64)
    k = len(events)
    sum_wc, sum_w, count = (np.zeros(len(cells) * k) for _ in range(3))
    step = 100_000  # comparison rows per block: the block's rows x 27 months stay small
    for lo in range(0, a.weights.height, step):
        block = a.weights.slice(lo, step)
        d_c = changes(block["row"].to_numpy(), comparison=True)
        present = ~np.isnan(d_c)
        w = block["w"].to_numpy()[:, None] * np.ones((1, k))
        index = (codes[lo : lo + block.height, None] * k + np.arange(k)[None, :])[present]
        sum_wc += np.bincount(index, weights=(w * d_c)[present], minlength=len(cells) * k)
        sum_w += np.bincount(index, weights=w[present], minlength=len(cells) * k)
        count += np.bincount(index, minlength=len(cells) * k)
    kept = np.flatnonzero(count > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c_change = sum_wc[kept] / sum_w[kept]
    c_side = pl.DataFrame(
        {"cell": cells[kept // k] if len(cells) else [], "e": events[kept % k].astype(np.int32), "c_change": c_change},
        schema={"cell": pl.String, "e": pl.Int32, "c_change": pl.Float64},
    )
    return t_side, c_side


def pretrend_test(placebo: list[pl.DataFrame], curve: pl.DataFrame) -> dict:
    """Joint test that the placebo-month differences are all zero: Wald statistic from the
    school-clustered covariance of their influence functions, Hotelling's F approximation."""
    parts = [p for p in placebo if p.height >= 2]
    if not parts:
        return {"p_value": float("nan"), "months": 0, "schools": 0}
    months = [int(p["e"][0]) for p in parts]
    att = np.array([curve.filter(pl.col("event_month") == m)["att"][0] or 0.0 for m in months], dtype=float)
    stacked = pl.concat(
        [p.select("school_unit_code", "e", (pl.col("inf") / pl.col("n")).alias("psi")) for p in parts]
    ).with_columns(pl.col("school_unit_code").fill_null("?"))
    sums = stacked.pivot(on="e", index="school_unit_code", values="psi", aggregate_function="sum").fill_null(0.0)
    s = sums.select([str(m) for m in months]).to_numpy()
    g, q = s.shape[0], len(months)
    if g <= q:
        return {"p_value": float("nan"), "months": q, "schools": g}
    v = g / (g - 1) * s.T @ s
    wald = float(att @ np.linalg.pinv(v) @ att)
    f = wald * (g - q) / (q * (g - 1))
    return {"p_value": float(stats.f.sf(f, q, g - q)), "months": q, "schools": g, "wald": wald}


# --- subgroups ----------------------------------------------------------------------------
GROUP_DIMENSIONS = (
    (lb.DIMENSION["selection_reasons"], "selection_reasons"),
    (lb.DIMENSION["interventions"], "interventions"),
    (lb.DIMENSION["district"], "district"),
    (lb.DIMENSION["gender"], "gender_label"),
)


def subgroups(sample: EvaluationSample) -> pl.DataFrame:
    """The attendance effect by selection reason, intervention, district and gender, each
    against its own comparison; Benjamini-Hochberg over every group tested (hidden or not).
    Raw aggregates: the disclosure layer decides what is shown."""
    a = sample.analytic["absence_rate"]
    diffs = pair_differences(a)
    absence = trend_evidence(sample)["absence_rate"]
    groups = sample.enrolled.select(
        "pupil_key",
        "selection_reasons",
        "interventions",
        "district",
        pl.col("gender").replace_strict(lb.PUPIL_GENDER, default=None).alias("gender_label"),
    )
    joined = diffs.join(groups, on="pupil_key", how="left")
    rows = []
    for dimension, column in GROUP_DIMENSIONS:
        exploded = joined.explode(column) if joined.schema[column] == pl.List(pl.String) else joined
        for (group,), part in exploded.drop_nulls(column).group_by(column):
            mean, se, g = clustered_effect(a, set(part["pupil_key"].to_list()))
            lo, hi, p = t_interval(mean, se, g)
            rows.append(
                {
                    "dimension": dimension,
                    "group": group,
                    "n": part.height,
                    "n_schools": g,
                    "change": mean,
                    "lo": lo,
                    "hi": hi,
                    "p_value": p,
                }
            )
    schema = {
        "dimension": pl.String,
        "group": pl.String,
        "n": pl.Int64,
        "n_schools": pl.Int64,
        "change": pl.Float64,
        "lo": pl.Float64,
        "hi": pl.Float64,
        "p_value": pl.Float64,
    }
    df = pl.DataFrame(rows, schema=schema).with_columns(pl.col(pl.Float64).fill_nan(None)).sort("dimension", "group")
    tested = df.filter(pl.col("p_value").is_not_null())
    q = multipletests(tested["p_value"].to_numpy(), method="fdr_bh")[1] if tested.height else np.array([])
    df = df.join(tested.select("dimension", "group", pl.Series("q_value", q)), on=["dimension", "group"], how="left")
    # each group's verdict by the headline's rule, held to the attendance pre-trend test and
    # its bound (a subgroup has too few pupils for a test of its own), and to its q-value
    verdicts = []
    for r in df.iter_rows(named=True):
        nan = float("nan")
        lo, hi = (nan if r["lo"] is None else r["lo"]), (nan if r["hi"] is None else r["hi"])
        r_lo, r_hi = evd.robust_interval(lo, hi, absence["bound"])
        verdicts.append(
            evd.judge(
                nan if r["change"] is None else r["change"],
                lo,
                hi,
                claimable=True,
                n_schools=r["n_schools"] or 0,
                pretrend_p=absence["pretrend_p"],
                robust_lo=r_lo,
                robust_hi=r_hi,
                q_value=nan if r["q_value"] is None else r["q_value"],
            )
        )
    return df.with_columns(pl.Series("verdict", verdicts, dtype=pl.String))


# --- attrition ----------------------------------------------------------------------------
def attrition(sample: EvaluationSample) -> pl.DataFrame:
    """Per outcome: enrolled pupils up to the year, those the estimand is about (baseline and
    outcome data in the window), and those in the estimate (with comparison pupils)."""
    enrolled = sample.enrolled.height
    rows = []
    for outcome, a in sample.analytic.items():
        for step_no, (step, n) in enumerate(
            (
                ("Inskrivna till och med året", enrolled),
                ("med uppgifter före och under uppföljningstiden (skattningen avser dem)", a.n_eligible),
                ("med jämförelseelever (ingår i skattningen)", a.n_matched),
            )
        ):
            rows.append(
                {"outcome": outcome, "measure": OUTCOME_LABELS[outcome], "step_no": step_no, "step": step, "n": n}
            )
    schema = {"outcome": pl.String, "measure": pl.String, "step_no": pl.Int64, "step": pl.String, "n": pl.Int64}
    return pl.DataFrame(rows, schema=schema).with_columns(
        pl.lit(enrolled).alias("n_enrolled"), (pl.col("n") / pl.lit(max(enrolled, 1))).alias("share")
    )


def attrition_by_group(sample: EvaluationSample) -> pl.DataFrame:
    """The attendance estimate's attrition by gender and district: enrolled, in the estimand,
    and in the estimate."""
    a = sample.analytic["absence_rate"]
    eligible = a.treated["pupil_key"].unique().implode()
    keys = a.frame.select("row", "pupil_key")
    matched = keys.filter(pl.col("row").is_in(a.members["row"].implode()))["pupil_key"].unique().implode()
    status = sample.enrolled.select(
        "pupil_key",
        "district",
        pl.col("gender").replace_strict(lb.PUPIL_GENDER, default=None).alias("gender_label"),
        pl.col("pupil_key").is_in(eligible).alias("eligible"),
        pl.col("pupil_key").is_in(matched).alias("matched"),
    )
    rows = []
    for dimension, column in ((lb.DIMENSION["gender"], "gender_label"), (lb.DIMENSION["district"], "district")):
        for (group,), part in status.drop_nulls(column).group_by(column):
            rows.append(
                {
                    "label": dimension,
                    "reason": group,
                    "n": part.height,
                    "n_eligible": int(part["eligible"].sum()),
                    "n_matched": int(part["matched"].sum()),
                }
            )
    df = pl.DataFrame(
        rows,
        schema={"label": pl.String, "reason": pl.String, "n": pl.Int64, "n_eligible": pl.Int64, "n_matched": pl.Int64},
    ).sort("label", "reason")
    return df.with_columns((pl.col("n_matched") / pl.col("n_eligible")).alias("share"))


def left_out(sample: EvaluationSample) -> pl.DataFrame:
    """Per outcome, the eligible enrolled pupils without comparison pupils and their baseline
    (mean absence before enrolment, share of passed subjects): whom the estimate leaves out."""
    rows = []
    for outcome, a in sample.analytic.items():
        out = a.treated.filter(~pl.col("row").is_in(a.matched_rows))
        rows.append(
            {
                "outcome": outcome,
                "measure": OUTCOME_LABELS[outcome],
                "n": out.height,
                "absence": out["raw_pre_mean"].mean(),  # as recorded, not relative to the school
                "share_passed": out["base_share_passed"].mean(),
            }
        )
    schema = {
        "outcome": pl.String,
        "measure": pl.String,
        "n": pl.Int64,
        "absence": pl.Float64,
        "share_passed": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


# --- all headline estimates, and the machine-readable results -----------------------------
def trend_evidence(sample: EvaluationSample) -> dict[str, dict]:
    """Per outcome: the pre-trend test's p and the bound on a continuing trend (evidence.py).
    A grade outcome is also held to the attendance test: the same pupils were selected, and a
    trajectory they were selected on shows in either (the stricter p counts)."""
    if "evidence" not in sample.cache:
        _, pretrend = event_curve(sample)
        curve = sample.cache["event_curve"][0]
        absence = {"pretrend_p": pretrend["p_value"], "bound": evd.absence_bound(curve), "kind": "months"}
        out = {"absence_rate": absence}
        for outcome in ("share_passed_change", "eligible_vocational"):
            if outcome not in sample.analytic:
                continue
            placebo = evd.grade_placebo(sample.analytic[outcome])
            ps = [p for p in (placebo["p_value"], absence["pretrend_p"]) if p is not None and np.isfinite(p)]
            out[outcome] = {
                "pretrend_p": min(ps) if ps else float("nan"),
                "grade_placebo_p": placebo["p_value"],
                "grade_placebo": placebo["estimate"],
                # in share-passed units: no bound for eligibility, whose verdict rests on the tests
                "bound": placebo["bound"] if outcome == "share_passed_change" else float("nan"),
                "kind": "terms",
            }
        sample.cache["evidence"] = out
    return sample.cache["evidence"]


def headline(sample: EvaluationSample) -> dict[str, Estimate]:
    estimates = {outcome: estimate(a) for outcome, a in sample.analytic.items()}
    evidence = trend_evidence(sample)
    for outcome, e in estimates.items():
        ev_ = evidence.get(outcome, {})
        e.pretrend_p = ev_.get("pretrend_p", float("nan"))
        bound = ev_.get("bound", float("nan"))
        if np.isfinite(bound):  # eligibility has no bound in its own units: its verdict rests on the tests
            e.robust_low, e.robust_high = evd.robust_interval(e.ci_low, e.ci_high, bound)
            e.breakdown = evd.breakdown(e.ci_low, e.ci_high, bound)
    return estimates


def equivalence_all(sample: EvaluationSample) -> pl.DataFrame:
    """Baseline equivalence of every outcome's analytic sample, labelled for table and plot."""
    frames = [equivalence(a) for a in sample.analytic.values()]
    return pl.concat(frames).with_columns(
        pl.col("outcome").replace_strict(OUTCOME_LABELS).alias("measure"),
        (pl.col("outcome").replace_strict(SHORT_LABELS) + ": " + pl.col("covariate")).alias("label"),
    )


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
                "baseline": "uppfyllt"
                if e.max_baseline_difference <= est.WWC_EQUIVALENT
                else "justerat"
                if claim
                else "ej uppfyllt",
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


EFFECT_COLUMNS = [
    "outcome",
    "group",
    "estimate",
    "ci_low",
    "ci_high",
    "n_eligible",
    "n_enrolled",
    "n_comparison",
    "effect_size",
    "effect_size_measure",
    "n_schools",
    "pretrend_p",
    "robust_ci_low",
    "robust_ci_high",
    "p_value",
    "q_value",
    "verdict",
    "method",
]


def effects_frame(effects: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """effects.csv, from the protected headline and subgroup frames: one row per published
    estimate, proportions as fractions, hidden numbers empty; `verdict` is what the report
    concludes (evidence.py: effect, no_change, trend, few_schools, not_claimable), subgroup
    rows carry their p and Benjamini-Hochberg q."""
    head = effects.select(
        "outcome",
        pl.lit("").alias("group"),
        pl.col("difference").alias("estimate"),
        pl.col("lo").alias("ci_low"),
        pl.col("hi").alias("ci_high"),
        "n_eligible",
        pl.col("n_treated").alias("n_enrolled"),
        "n_comparison",
        "effect_size",
        pl.col("size_kind").alias("effect_size_measure"),
        "n_schools",
        "pretrend_p",
        pl.col("robust_lo").alias("robust_ci_low"),
        pl.col("robust_hi").alias("robust_ci_high"),
        pl.lit(None, pl.Float64).alias("p_value"),
        pl.lit(None, pl.Float64).alias("q_value"),
        _shown_verdict("difference"),
        pl.lit(METHOD).alias("method"),
    )
    sub = groups.select(
        pl.lit("absence_rate").alias("outcome"),
        (pl.col("dimension") + ": " + pl.col("group")).alias("group"),
        pl.col("change").alias("estimate"),
        pl.col("lo").alias("ci_low"),
        pl.col("hi").alias("ci_high"),
        pl.lit(None, pl.Int64).alias("n_eligible"),
        pl.col("n").alias("n_enrolled"),
        pl.lit(None, pl.Int64).alias("n_comparison"),
        pl.lit(None, pl.Float64).alias("effect_size"),
        pl.lit("").alias("effect_size_measure"),
        "n_schools",
        pl.lit(None, pl.Float64).alias("pretrend_p"),
        pl.lit(None, pl.Float64).alias("robust_ci_low"),
        pl.lit(None, pl.Float64).alias("robust_ci_high"),
        "p_value",
        "q_value",
        _shown_verdict("change"),
        pl.lit(METHOD + ", exploratory").alias("method"),
    )
    return pl.concat([head, sub], how="vertical_relaxed").select(EFFECT_COLUMNS)


def _shown_verdict(estimate: str) -> pl.Expr:
    """The verdict code where the estimate is published (a hidden estimate has none)."""
    return pl.when(pl.col(estimate).is_not_null()).then(pl.col("verdict")).alias("verdict")


def write_effects(frame: pl.DataFrame, path: Path) -> Path:
    """Twelve significant digits: sums over threads differ in their last bits from run to run,
    and the same store should give the same file (it does unless a value lies on a rounding
    boundary of the twelfth digit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.with_columns(pl.col(pl.Float64).round_sig_figs(12)).write_csv(path)
    return path


# --- sentences: from protected numbers only -----------------------------------------------
def _pp(v: float) -> str:
    return fmt_num(100 * v, 1)


def text_effect(row: dict, pretrend_p: float | None = None) -> str:
    """The sentence of one headline row, following its verdict (evidence.py): an effect is
    stated only where no test of trends before enrolment failed and the robust interval
    excludes zero too; a hidden estimate is too small to report. `pretrend_p` stands in for
    a row without its own (older frames)."""
    label = row["measure"]
    if row.get("difference") is None or row.get("n_treated") is None:
        return f"{label}: för få elever för att redovisa en skattning."
    who = f"Skattningen gäller {row['n_treated']} inskrivna elever"
    if row.get("n_eligible"):
        who += (
            f" av de {row['n_eligible']} med uppgifter före och under uppföljningstiden "
            f"({fmt_pct(row['n_treated'] / row['n_eligible'])})"
        )
    who += ", jämförda med liknande elever som ännu inte skrivits in."
    if row.get("lo") is None:
        return (
            f"{label}: grupperna skilde sig för mycket redan före inskrivningen "
            f"(mer än {fmt_num(CLAIM_LIMIT, 2)} standardavvikelser), så ingen effekt kan anges. {who}"
        )
    p = row.get("pretrend_p", pretrend_p)
    verdict = row.get("verdict") or evd.judge(
        row["difference"],
        row["lo"],
        row["hi"],
        claimable=True,
        n_schools=row.get("n_schools") or MIN_SCHOOLS,
        pretrend_p=float("nan") if p is None else p,
        robust_lo=float("nan"),
        robust_hi=float("nan"),
    )
    interval = f"95 % konfidensintervall {_pp(row['lo'])} till {_pp(row['hi'])}"
    numbers = f"{_pp(row['difference'])} procentenheter ({interval})"
    if verdict == evd.FEW_SCHOOLS:
        return (
            f"{label}: {numbers}. De inskrivna eleverna kommer från {row['n_schools']} skolor, färre än "
            f"{MIN_SCHOOLS}; med så få skolor är intervallet inte tillförlitligt och ingen slutsats dras. {who}"
        )
    if verdict == evd.TREND:
        if p is not None and np.isfinite(p) and p < evd.ALPHA:
            why = (
                "de inskrivna skilde sig från jämförelseeleverna redan före inskrivningen, i hur "
                f"{'frånvaron' if row['outcome'] == 'absence_rate' else 'frånvaron eller betygen'} utvecklades "
                f"(test av tiden före inskrivningen: p = {fmt_num(p, 2)})"
            )
        else:
            why = (
                "om utvecklingen före inskrivningen fortsatte lika starkt efteråt omfattar intervallet noll "
                f"({_pp(row['robust_lo'])} till {_pp(row['robust_hi'])} procentenheter)"
            )
        return (
            f"{label}: {numbers}. Designen kan inte skilja programmet från en trend som fanns före "
            f"inskrivningen: {why}. Ingen effekt anges. {who}"
        )
    text = f"{label}: {describe_interval(row['difference'], row['lo'], row['hi'])} {who}"
    if verdict == evd.EFFECT and row.get("robust_lo") is not None:
        text += (
            " Även om utvecklingen före inskrivningen fortsatte lika starkt efteråt ligger intervallet på samma "
            f"sida om noll ({_pp(row['robust_lo'])} till {_pp(row['robust_hi'])} procentenheter)."
        )
    return text


def text_estimate(e: Estimate, pretrend_p: float | None = None) -> str:
    """The sentence for an estimate outside a report (tests, the methods harness)."""
    return text_effect(estimates_frame({e.outcome: e}).row(0, named=True), pretrend_p)


def text_headlines(effects: pl.DataFrame, pretrend: dict | None) -> str:
    """Every headline sentence; each row carries its own pre-trend test (`pretrend`, the
    attendance test, is read only by a frame without one)."""
    p = pretrend.get("p_value") if pretrend else None
    return "\n\n".join(
        f"- {text_effect(r, p if r['outcome'] == 'absence_rate' else None)}" for r in effects.iter_rows(named=True)
    )


def text_left_out(left: pl.DataFrame, min_cell: int) -> str:
    """Whom the estimates leave out, from the protected left-out frame."""
    parts = []
    for r in left.iter_rows(named=True):
        label = r["measure"]
        if r["n"] == 0:
            parts.append(f"{label}: alla inskrivna med uppgifter ingår.")
        elif r["n"] is None or r["absence"] is None:
            parts.append(f"{label}: färre än {min_cell} inskrivna saknade jämförbara elever.")
        else:
            parts.append(
                f"{label}: {r['n']} inskrivna saknade jämförbara elever; de hade i genomsnitt "
                f"{fmt_pct(r['absence'])} frånvaro och {fmt_pct(r['share_passed'])} godkända ämnen före inskrivningen."
            )
    return "**Elever som inte ingår i skattningarna.** " + " ".join(parts)


def text_sensitivity(effects: pl.DataFrame) -> str:
    lines = []
    for r in effects.iter_rows(named=True):
        if r["evalue"] is None or r["difference"] is None:
            continue
        if r["evalue_ci"] is None or r["evalue_ci"] <= 1.0:
            lines.append(
                f"- {r['measure']}: intervallet omfattar redan ingen effekt, så det behövs ingen okänd "
                "faktor för att förklara bort resultatet."
            )
        else:
            lines.append(
                f"- {r['measure']}: en okänd faktor som förklarar bort skattningen måste göra inskrivning och utfall "
                f"{fmt_num(r['evalue'])} gånger så sannolika (E-värde); för att flytta intervallet till noll räcker "
                f"{fmt_num(r['evalue_ci'])} gånger."
            )
    return "\n".join(lines) or "- Ingen skattning att pröva."


# --- the city's 2015 follow-up, reproduced ------------------------------------------------
def followup_2015(con, min_cell: int, districts: list[str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The 2015 follow-up's statistics from the store: per-pupil rise in share passed from
    term 1 to 2 and 2 to 3 with the group-level change; and boys' share passed and
    högskoleförberedande (ES) eligibility per term. Wilson and t intervals."""
    rows = report_query(con, "followup_2015", 2015, districts)
    wide = rows.pivot(on="term_no", index=["pupil_key", "gender"], values="share_passed")
    steps = []
    for a, b in (("1", "2"), ("2", "3")):
        if a not in wide.columns or b not in wide.columns:
            continue
        pair = wide.drop_nulls([a, b])
        diff = (pair[b] - pair[a]).to_numpy()
        mean, lo, hi, n = mean_ci(diff)
        steps.append(
            {
                "label": f"Termin {a} till {b}",
                "n": n,
                "k": int((diff > 1e-9).sum()),
                "group_change": mean,
                "group_lo": lo,
                "group_hi": hi,
            }
        )
    individual = pl.DataFrame(
        steps,
        schema={
            "label": pl.String,
            "n": pl.Int64,
            "k": pl.Int64,
            "group_change": pl.Float64,
            "group_lo": pl.Float64,
            "group_hi": pl.Float64,
        },
    )
    individual = with_share_ci(individual) if individual.height else individual
    boys = (
        rows.filter(pl.col("gender") == "M")
        .group_by("term_no")
        .agg(
            pl.len().alias("n"),
            pl.col("share_passed").mean().alias("mean_share_passed"),
            pl.col("eligible_hp_es").fill_null(False).sum().alias("k"),
        )
        .sort("term_no")
    )
    boys = with_share_ci(boys).with_columns(("Termin " + pl.col("term_no").cast(pl.String)).alias("label"))
    individual = individual.with_columns(((pl.col("n") > 0) & (pl.col("n") < min_cell)).alias("suppressed"))
    boys = boys.with_columns(((pl.col("n") > 0) & (pl.col("n") < min_cell)).alias("suppressed"))
    return individual, boys


# --- the design in words, filled from the constants it states ------------------------------
NUMBER_WORDS = {1: "en", 2: "två", 3: "tre", 4: "fyra", 5: "fem", 6: "sex", 7: "sju", 8: "åtta", 9: "nio", 10: "tio"}


def _word(n: int) -> str:
    return NUMBER_WORDS.get(n, str(n))


def text_design() -> str:
    """Section 7's introduction: who is compared with whom (estimands.py, sample.py)."""
    return (
        "Varje inskriven elev jämförs med elever som ännu inte hade skrivits in samma kalendermånad, i samma "
        "årskurs, och som före inskrivningen liknade de inskrivna: samma frånvaro månad för månad under de "
        f"{_word(est.PRE_MONTHS)} månaderna före, samma andel godkända ämnen och samma meritvärde de två senaste "
        "terminerna, samma andel pojkar. En elev som skrivs in senare används som jämförelse fram till "
        f"{_word(est.ANTICIPATION_MONTHS)} månader före sin egen inskrivning. Rapporten för ett år använder inga "
        "uppgifter efter årets slut. Först redovisas vilka elever skattningarna gäller (bortfall), sedan hur lika "
        "grupperna var före inskrivningen, och först därefter effekterna."
    )


def _text_trend_results(effects: pl.DataFrame | None) -> str:
    """This report's pre-trend tests and verdicts, from the protected headline frame."""
    if effects is None or "pretrend_p" not in effects.columns:
        return ""
    parts = []
    for r in effects.iter_rows(named=True):
        if r.get("difference") is None or r.get("pretrend_p") is None:
            continue
        verdict = lb.VERDICT.get(r.get("verdict") or "", "").lower()
        parts.append(f"{SHORT_LABELS[r['outcome']].lower()} p = {fmt_num(r['pretrend_p'], 2)} ({verdict})")
    return (" I år: " + "; ".join(parts) + ".") if parts else ""


def text_methods(effects: pl.DataFrame | None = None) -> str:
    """The methods appendix (section 11), with every window and limit from the constants, and
    what this report's tests showed from `effects` (the protected headline frame), if given."""
    pre, anticipation = est.PRE_MONTHS, est.ANTICIPATION_MONTHS
    window = f"{est.OUTCOME_FIRST}–{est.OUTCOME_LAST}"
    placebo = f"{-est.PLACEBO_LAST}–{-est.PLACEBO_FIRST}"
    n_placebo = est.PLACEBO_LAST - est.PLACEBO_FIRST + 1
    eq, adj = fmt_num(est.WWC_EQUIVALENT, 2), fmt_num(est.WWC_ADJUSTABLE, 2)
    return "\n\n".join(
        [
            "**Definitioner.** Andel godkända ämnen: ämnen med betyg A–E delat med ämnen med betyg (F och streck "
            "räknas som ej godkända). Behörighet och meritvärde enligt Skolverket och gymnasieförordningen. "
            "Frånvaro: giltig och ogiltig frånvaro delad med erbjuden tid; månader utan rapportering räknas som "
            "saknade.",
            "**Vilka effekterna gäller (estimand).** Den genomsnittliga effekten för de inskrivna eleverna, till och "
            "med årets slut, som har uppgifter före inskrivningen och under uppföljningstiden: för frånvaro minst "
            f"{_word(est.MIN_PRE_MONTHS)} rapporterade månader av de {_word(pre)} före inskrivningen och minst en "
            f"månad {window} månader efter; för betyg betyg terminen före inskrivningsterminen och terminen efter "
            "den (förändring i andel godkända ämnen) respektive slutbetyg i årskurs 9. Skattningen bygger på de av "
            "dem som fick jämförelseelever; bortfallstabellen visar hur många, och texten beskriver dem som föll bort.",
            "**Jämförelsegrupp.** Elever som ännu inte skrivits in samma kalendermånad och i samma årskurs (så att "
            "årstid och läsår tar ut varandra). Frånvaron mäts i förhållande till elevens skola samma månad: "
            "elevens frånvaro minus genomsnittet för skolans övriga elever som inte är inskrivna (stadsdelens om "
            f"skolan har färre än {_word(est.MIN_REFERENCE)} sådana elever den månaden, annars hela stadens), så att "
            "en svängning som gäller hela skolan, en influensavinter eller ett nytt sätt att registrera, tar ut sig "
            "själv. Vikterna beräknas för alla inskrivna i staden; en rapport om några stadsdelar använder samma "
            "vikter, så att samma elever får samma skattning i båda. En elev som skrivs in senare används som "
            "jämförelse fram till "
            f"{_word(anticipation)} månader före sin egen inskrivning, eftersom elever ofta skrivs in just när "
            "frånvaron toppar. Rapporten för ett år använder inga uppgifter efter årets slut, och elever som skrivs "
            "in senare än så räknas som ännu inte inskrivna.",
            "**Jämförelsegruppens vikter (entropy balancing).** Inom varje kombination av kalendermånad och årskurs "
            "vägs de elever som ännu inte skrivits in så att deras genomsnitt blir desamma som de inskrivnas "
            "(Hainmueller 2012; beräknat med Googles paket `empirical_calibration`): frånvaron månad för månad före "
            f"inskrivningen (senaste månaden, månaden före, månad 3–4 och 5–{pre} före), andel godkända ämnen och "
            "meritvärde de två senaste terminerna och andelen pojkar. Vikterna ligger så nära lika vikter som "
            "möjligt. Går det inte inom årskursen prövas alla årskurser samma månad, och sist bara den senaste "
            f"frånvaron och andelen godkända (med högst {adj} standardavvikelsers skillnad, det som What Works "
            "Clearinghouse godtar med statistisk justering). Inskrivna som ingen vägning når, för att ingen annan "
            "elev liknade dem, ingår inte; bortfallet redovisas. Att jämföra på förloppet, inte bara en termins nivå, "
            "gör att jämförelseeleverna också hade en topp och återgår mot sitt medelvärde på samma sätt.",
            "**Skattning.** För varje inskriven elev: utfallet minus jämförelsegruppens vägda genomsnitt, justerat "
            "med en regression på samma variabler från jämförelsegruppens genomsnitt till elevens egna värden "
            "(Abadie och Imbens 2011). Det är den statistiska justering som What Works Clearinghouse kräver när "
            f"skillnaden vid baslinjen är mellan {eq} och {adj}; över {adj} anges ingen effekt. För frånvaro är "
            "utfallet förändringen från elevens egna månader före inskrivningen (skillnad i skillnader). "
            "Effektstorlekar: Hedges g med utfallets standardavvikelse, Cox index för behörighet (WWC Procedures and "
            "Standards Handbook v5.0).",
            f"**Test av trender före inskrivningen.** Månaderna {placebo} före inskrivningen används aldrig i "
            "vägningen; för frånvaro prövas om grupperna ändå skiljer sig där (ett gemensamt Wald-test av de "
            f"{_word(n_placebo)} månaderna). För betyg prövas på samma sätt förändringen i andel godkända ämnen "
            "från tre terminer före inskrivningsterminen till terminen före, en termin som inte heller används i "
            "vägningen; betygsutfallen prövas också mot frånvarons test, eftersom det är samma elever som valts ut. "
            "Ett robust intervall visar vad som händer om en trend som syns före inskrivningen fortsätter lika "
            "starkt efteråt (i andan av Rambachan och Roth 2023, förenklat: trendens lutning före inskrivningen "
            "förlängd till uppföljningstiden läggs till på båda sidor av intervallet). En effekt anges bara när "
            "testet inte visar någon skillnad (p ≥ 0,05) och både konfidensintervallet och det robusta intervallet "
            "utesluter noll; annars säger texten att designen inte kan skilja programmet från trenden."
            + _text_trend_results(effects),
            "**Osäkerhet.** 95 % konfidensintervall med standardfel som tar hänsyn till att elever i samma skola "
            "liknar varandra (klustrade på skola; t-fördelning med antal skolor som de inskrivna eleverna kommer "
            f"från minus ett frihetsgrader). Kommer eleverna från färre än {_word(MIN_SCHOOLS)} skolor anses "
            "intervallet inte tillförlitligt och ingen slutsats dras. Wilsonintervall för andelar och t-intervall "
            "för medelvärden. Undergruppernas p-värden justeras med Benjamini och Hochbergs metod, och en "
            "undergrupps effekt anges bara när q-värdet är under 0,05.",
            "**Prövat på simulerade data.** Metoden prövas på demodata där den sanna effekten är känd: världar "
            "utan effekt och med effekt, med samma urval och samma slumptal, och världar där elever väljs ut på "
            "en dold försämring som fortsätter, under en kris som går över, där hela skolors frånvaro svänger och "
            "där skolor börjar vid olika tidpunkter (se projektets README, avsnittet om metodprövning).",
            "**Känslighet.** E-värden (VanderWeele och Ding 2017): hur stark en okänd faktor måste vara, som "
            "riskkvot med både inskrivning och utfall, för att förklara bort skattningen respektive flytta "
            "intervallet till noll.",
            "**Vad designen inte kan utesluta.** Eleverna valdes ut av skola och socialtjänst, av skäl som inte syns "
            "i data (till exempel en kris i familjen). Om sådana skäl också påverkar utfallet kan skillnaden bero på "
            "dem och inte på programmet; E-värdet visar hur starka de skulle behöva vara. Elever utan "
            "jämförelseelever, och de som flyttat eller saknar betyg, ingår inte.",
        ]
    )
