"""The evaluation of a report, from one evaluation sample (`sample.py`): the headline
estimates with their evidence on trends, subgroups, attrition, the published frames and
effects.csv, and the city's 2015 follow-up reproduced. The parts live in their own modules
and are re-exported here, so a caller reads one namespace:

- estimator.py: effect sizes, baseline equivalence, the regression-adjusted weighted
  comparison, its clustered standard error, E-values (`estimate`, `Estimate`);
- eventtime.py: attendance in event time and the pre-trend test (`event_curve`);
- evidence.py: the grades' placebo, the robust interval and the verdict every sentence,
  table and effects.csv row follows; inference.py: clustered means and t intervals;
- evaluation_text.py: the sentences, the design and the methods appendix.

Subgroups (selection reason, intervention, district, gender) are each relative to their own
weighted comparison, Benjamini-Hochberg within the table, labelled exploratory, and held to
the headline's pre-trend evidence and to their q-value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from statsmodels.stats.multitest import multipletests

from pipelines import labels as lb
from pipelines.analysis import estimands as est
from pipelines.analysis import evidence as evd
from pipelines.analysis.estimator import (  # noqa: F401  (re-exported)
    BASELINE_MEASURES,
    BINARY,
    CLAIM_LIMIT,
    METHOD,
    OUTCOME_LABELS,
    SHORT_LABELS,
    Estimate,
    clustered_effect,
    cox_index,
    equivalence,
    estimate,
    estimates_frame,
    evalue_rr,
    hedges_g,
    pair_differences,
    wwc_class,
)
from pipelines.analysis.evaluation_text import (  # noqa: F401  (re-exported)
    text_design,
    text_effect,
    text_estimate,
    text_headlines,
    text_left_out,
    text_methods,
    text_sensitivity,
)
from pipelines.analysis.eventtime import EVENT_MONTHS, event_curve, pretrend_test  # noqa: F401
from pipelines.analysis.followup import mean_ci, report_query, with_share_ci
from pipelines.analysis.inference import MIN_SCHOOLS, clustered_mean, t_interval  # noqa: F401
from pipelines.analysis.sample import EvaluationSample

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
            mean, se, g, df = clustered_effect(a, set(part["pupil_key"].to_list()))
            lo, hi, p = t_interval(mean, se, g, df)
            rows.append(
                {
                    "dimension": dimension,
                    "group": group,
                    "n": part.height,
                    "n__members": part["pupil_key"].to_list(),  # for the disclosure layer
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
        "n__members": pl.List(pl.String),
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


# --- what attendance is compared against -------------------------------------------------
REFERENCE_LEVELS = ("school", "district", "city")  # evaluation_months.sql, finest first


def reference_levels(sample: EvaluationSample) -> pl.DataFrame:
    """The enrolled pupils in the attendance estimate by what their absence was measured
    against (evaluation_months.sql): their own school in every month of the baseline and
    outcome windows, or for some month the district's or the city's pupils (the coarsest
    counts). Sums to the pupils in the estimate."""
    a = sample.analytic["absence_rate"]
    members = a.frame.select("row", "pupil_key", "cohort_month").join(a.members.select("row"), on="row")
    months = sample.months.select("pupil_key", "month_index", "reference")
    rank = {level: i for i, level in enumerate(REFERENCE_LEVELS)}
    coarsest = (
        members.join(months, on="pupil_key")
        .filter(
            pl.col("month_index").is_between(
                pl.col("cohort_month") - est.PRE_MONTHS, pl.col("cohort_month") + est.OUTCOME_LAST
            )
        )
        .group_by("row", "pupil_key")
        .agg(pl.col("reference").replace_strict(rank, return_dtype=pl.Int64).max().alias("level"))
    )
    pupils = {i: part["pupil_key"].to_list() for (i,), part in coarsest.group_by("level")}
    everyone = coarsest["pupil_key"].to_list()
    return pl.DataFrame(
        {
            "level": list(REFERENCE_LEVELS),
            "label": [lb.REFERENCE[level] for level in REFERENCE_LEVELS],
            "n": [len(pupils.get(i, [])) for i in range(len(REFERENCE_LEVELS))],
            "n__members": [pupils.get(i, []) for i in range(len(REFERENCE_LEVELS))],  # for the disclosure layer
            "n_total": [len(everyone)] * len(REFERENCE_LEVELS),
            "n_total__members": [everyone] * len(REFERENCE_LEVELS),
        },
        schema={
            "level": pl.String,
            "label": pl.String,
            "n": pl.Int64,
            "n__members": pl.List(pl.String),
            "n_total": pl.Int64,
            "n_total__members": pl.List(pl.String),
        },
    )


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
        bound = evd.absence_bound(curve, pretrend.get("slope_se", float("nan")), pretrend.get("slope_schools", 0))
        absence = {"pretrend_p": pretrend["p_value"], "bound": bound, "kind": "months"}
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
                # in share passed; for eligibility turned into its units by the comparison's
                # gradient of eligibility on share passed
                "bound": placebo["bound"]
                if outcome == "share_passed_change"
                else placebo["bound"] * abs(evd.eligibility_gradient(sample.analytic[outcome])),
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
        if np.isfinite(bound):  # without a bound (no placebo term), the verdict rests on the tests
            e.robust_low, e.robust_high = evd.robust_interval(e.ci_low, e.ci_high, bound)
            e.breakdown = evd.breakdown(e.ci_low, e.ci_high, bound)
    # the grades are held to the attendance's verdict too: the same pupils were selected, and a
    # trajectory attendance cannot tell from the programme may lie behind their grades as well
    absence = estimates.get("absence_rate")
    if absence is not None and absence.verdict == evd.TREND:
        for outcome, e in estimates.items():
            e.attendance_trend = outcome != "absence_rate"
    return estimates


def equivalence_all(sample: EvaluationSample) -> pl.DataFrame:
    """Baseline equivalence of every outcome's analytic sample, labelled for table and plot."""
    frames = [equivalence(a) for a in sample.analytic.values()]
    return pl.concat(frames).with_columns(
        pl.col("outcome").replace_strict(OUTCOME_LABELS).alias("measure"),
        (pl.col("outcome").replace_strict(SHORT_LABELS) + ": " + pl.col("covariate")).alias("label"),
    )


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
                "n__members": pair["pupil_key"].to_list(),  # for the disclosure layer
                "k": int((diff > 1e-9).sum()),
                "k__members": pair.filter(pl.Series(diff > 1e-9))["pupil_key"].to_list(),
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
            "n__members": pl.List(pl.String),
            "k": pl.Int64,
            "k__members": pl.List(pl.String),
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
            pl.col("pupil_key").alias("n__members"),
            pl.col("share_passed").mean().alias("mean_share_passed"),
            pl.col("eligible_hp_es").fill_null(False).sum().alias("k"),
            pl.col("pupil_key").filter(pl.col("eligible_hp_es").fill_null(False)).alias("k__members"),
        )
        .sort("term_no")
    )
    boys = with_share_ci(boys).with_columns(("Termin " + pl.col("term_no").cast(pl.String)).alias("label"))
    individual = individual.with_columns(((pl.col("n") > 0) & (pl.col("n") < min_cell)).alias("suppressed"))
    boys = boys.with_columns(((pl.col("n") > 0) & (pl.col("n") < min_cell)).alias("suppressed"))
    return individual, boys
