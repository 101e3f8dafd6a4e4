"""Effects against a matched comparison group: matching, baseline equivalence, attrition,
and an event-time difference-in-differences for attendance.

Design (written out in Swedish in the report's methods section):
- Matching: coarsened exact matching (Iacus, King & Porro 2012) at the baseline term (the
  last full term before enrolment) on term, school, årskurs, gender, absence band and
  band of passed subjects. Each enrolled pupil is compared with never-enrolled pupils of
  the same stratum; CEM weights make the comparison group's strata mix equal the enrolled.
- Baseline equivalence as the What Works Clearinghouse states it (Procedures and
  Standards Handbook v5.0): Hedges' g for continuous measures, the Cox index for binary
  ones; |d| <= 0.05 satisfied, <= 0.25 needs statistical adjustment, else not satisfied.
- Attendance: for each enrolled pupil and the matched pupils of its stratum, monthly
  absence in event time (months -6 to +12 around the enrolment month), each unit's change
  from its own mean over months -6..-1. ATT(e) = weighted mean change of the enrolled minus
  that of the comparison pupils. Comparing every enrolled pupil only with never-enrolled
  pupils at the same calendar months (a stacked design, Cengiz et al. 2019) respects
  staggered entry; a single two-way fixed-effects regression would use already-enrolled
  pupils as controls (Goodman-Bacon 2021). The `differences` package (Callaway-Sant'Anna)
  was tried first: its clustered bootstrap fails under pandas 3 here, hence this estimator,
  which tests/test_evaluation.py checks on simulated data with known effects.
- Intervals: 95 % percentile intervals from a bootstrap that resamples schools (clusters).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from .followup import blank_suppressed, describe_interval, mean_ci, report_query, with_share_ci
from .suppress import check_min_cell

# Band edges: coarse enough that most enrolled pupils find a match in their own school and
# årskurs, fine enough that balance within the bands is checked (and reported) afterwards.
ABSENCE_BANDS = [0.10, 0.20]  # under 10 %, 10-20 %, 20 % or more
PASS_BANDS = [0.75, 0.9999]  # under 75 %, 75 % to all but one, all passed
STRATUM = ["term_index", "school_unit_code", "school_year", "gender", "absence_band", "pass_band"]
EVENT_MONTHS = np.arange(-6, 13)
BASELINE_MONTHS = EVENT_MONTHS < 0
OUTCOME_MONTHS = EVENT_MONTHS >= 3  # the first months after enrolment are still settling


# --- matching -----------------------------------------------------------------------------
def coarsen(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("absence_rate").cut(ABSENCE_BANDS, left_closed=True).cast(pl.String).alias("absence_band"),
        pl.col("share_passed").cut(PASS_BANDS, left_closed=True).cast(pl.String).alias("pass_band"),
    )


def cem(frame: pl.DataFrame) -> pl.DataFrame:
    """Matched rows with CEM weights: 1 for the enrolled, (n_t/n_c) * (N_c/N_t) for the others."""
    complete = coarsen(frame.drop_nulls(["absence_rate", "share_passed", "gender"]))
    counts = complete.group_by(STRATUM).agg(
        (pl.col("treated") == 1).sum().alias("n_t"), (pl.col("treated") == 0).sum().alias("n_c")
    )
    kept = counts.filter((pl.col("n_t") > 0) & (pl.col("n_c") > 0))
    total_t, total_c = kept["n_t"].sum(), kept["n_c"].sum()
    matched = complete.join(kept, on=STRATUM, how="inner").with_columns(
        pl.when(pl.col("treated") == 1)
        .then(1.0)
        .otherwise(pl.col("n_t") / pl.col("n_c") * (total_c / max(total_t, 1)))
        .alias("weight")
    )
    # The comparison pupils of a stratum take the enrolled pupils' median enrolment month.
    month_index = pl.col("enrolment_month").dt.year() * 12 + pl.col("enrolment_month").dt.month() - 1
    pseudo = (
        matched.filter(pl.col("treated") == 1)
        .with_columns(month_index.alias("m"))
        .group_by(STRATUM)
        .agg(pl.col("m").median().round(0).cast(pl.Int64).alias("stratum_month"))
    )
    return (
        matched.join(pseudo, on=STRATUM, how="left")
        .with_columns(
            pl.when(pl.col("treated") == 1).then(month_index).otherwise(pl.col("stratum_month")).alias("event_zero")
        )
        .with_row_index("unit")
    )


# --- baseline equivalence -----------------------------------------------------------------
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
    pooled = np.sqrt(((n_t - 1) * v_t + (n_c - 1) * v_c) / (n_t + n_c - 2))
    if pooled == 0:
        return 0.0
    return float((1 - 3 / (4 * (n_t + n_c) - 9)) * (m_t - m_c) / pooled)


def cox_index(p_t: float, p_c: float) -> float:
    """Difference in log odds divided by 1.65 (WWC handbook), proportions kept off 0 and 1."""
    p_t, p_c = (min(max(p, 1e-6), 1 - 1e-6) for p in (p_t, p_c))
    return float((np.log(p_t / (1 - p_t)) - np.log(p_c / (1 - p_c))) / 1.65)


def wwc_class(d: float) -> str:
    if np.isnan(d):
        return "."
    return "uppfyllt" if abs(d) <= 0.05 else "kräver justering" if abs(d) <= 0.25 else "ej uppfyllt"


COVARIATES = [  # (label, column, kind)
    ("Frånvaro (andel)", "absence_rate", "continuous"),
    ("Andel godkända ämnen", "share_passed", "continuous"),
    ("Hög frånvaro (minst 15 %)", "high_absence", "binary"),
    ("Pojke", "boy", "binary"),
]


def balance(frame: pl.DataFrame, matched: pl.DataFrame) -> pl.DataFrame:
    """Baseline differences before matching (all candidates) and after (CEM weights)."""
    rows = []
    for label, column, kind in COVARIATES:
        out = {"covariate": label}
        for when, df, weighted in (("before", frame, False), ("after", matched, True)):
            df = df.drop_nulls(["absence_rate", "share_passed", "gender"]).with_columns(
                (pl.col("absence_rate") >= 0.15).cast(pl.Float64).alias("high_absence"),
                (pl.col("gender") == "M").cast(pl.Float64).alias("boy"),
            )
            t, c = df.filter(pl.col("treated") == 1), df.filter(pl.col("treated") == 0)
            w_t = t["weight"].to_numpy() if weighted else np.ones(t.height)
            w_c = c["weight"].to_numpy() if weighted else np.ones(c.height)
            x_t, x_c = t[column].cast(pl.Float64).to_numpy(), c[column].cast(pl.Float64).to_numpy()
            if kind == "continuous":
                d = hedges_g(x_t, x_c, w_t, w_c)
            else:
                d = (
                    cox_index(np.average(x_t, weights=w_t), np.average(x_c, weights=w_c))
                    if t.height and c.height
                    else float("nan")
                )
            out[when] = d
            out[f"class_{when}"] = wwc_class(d)
        rows.append(out)
    return pl.DataFrame(rows)


# --- attendance: event-time difference-in-differences -------------------------------------
@dataclass
class EventPanel:
    y: np.ndarray  # units x event months, absence rate (nan where not reported)
    treated: np.ndarray  # bool per unit
    weight: np.ndarray
    cluster: np.ndarray  # cluster (school) index per unit


def event_panel(matched: pl.DataFrame, months: pl.DataFrame) -> EventPanel:
    units = matched.select("unit", "pupil_key", "treated", "weight", "school_unit_code", "event_zero")
    m = months.with_columns((pl.col("month_start").dt.year() * 12 + pl.col("month_start").dt.month() - 1).alias("mi"))
    joined = units.join(m, on="pupil_key").with_columns((pl.col("mi") - pl.col("event_zero")).alias("e"))
    joined = joined.filter(pl.col("e").is_between(EVENT_MONTHS[0], EVENT_MONTHS[-1]))
    y = np.full((units.height, len(EVENT_MONTHS)), np.nan)
    y[joined["unit"].to_numpy(), joined["e"].to_numpy() - EVENT_MONTHS[0]] = joined["absence_rate"].to_numpy()
    schools = units["school_unit_code"].to_list()
    codes = {s: i for i, s in enumerate(sorted(set(schools)))}
    return EventPanel(
        y, units["treated"].to_numpy() == 1, units["weight"].to_numpy(), np.array([codes[s] for s in schools])
    )


def did_event(y: np.ndarray, treated: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """ATT per event month and over months +3..+12, from changes against each unit's baseline."""
    if y.shape[0] == 0:
        return np.full(len(EVENT_MONTHS), np.nan), float("nan")
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # units without baseline months
        base = np.nanmean(np.where(BASELINE_MONTHS, y, np.nan), axis=1)
    change = y - base[:, None]
    ok = ~np.isnan(change)
    att = np.full(y.shape[1], np.nan)
    for group_sign, mask in ((1, treated), (-1, ~treated)):
        w = np.where(ok & mask[:, None], weight[:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(np.where(w > 0, change, 0.0) * w, axis=0) / w.sum(axis=0)
        att = mean if group_sign == 1 else att - mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = float(np.nanmean(att[OUTCOME_MONTHS]))
    return att, overall


def school_resamples(cluster: np.ndarray, reps: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of `reps` bootstrap samples that draw whole schools with replacement."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(cluster == c) for c in np.unique(cluster)]
    for _ in range(reps):
        yield np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])


def cluster_bootstrap(panel: EventPanel, reps: int = 300, seed: int = 2016) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap draws of (ATT per event month, overall ATT), resampling schools."""
    if not len(panel.cluster):  # nothing to resample: a store too small to match anyone
        return np.full((reps, len(EVENT_MONTHS)), np.nan), np.full(reps, np.nan)
    draws = [
        did_event(panel.y[idx], panel.treated[idx], panel.weight[idx])
        for idx in school_resamples(panel.cluster, reps, seed)
    ]
    return np.array([d[0] for d in draws]), np.array([d[1] for d in draws])


def _percentile(draws: np.ndarray, q: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # event months no draw could estimate
        return np.nanpercentile(draws, q, axis=0)


def baseline_equivalence(con, year: int) -> pl.DataFrame:
    frame = report_query(con, "evaluation_baseline", year)
    return balance(frame, cem(frame))


def attendance_effect(con, year: int, min_cell: int, reps: int = 300) -> tuple[pl.DataFrame, dict]:
    """Event-time ATT on absence with school-clustered bootstrap intervals, and the overall ATT."""
    check_min_cell(min_cell)
    matched = cem(report_query(con, "evaluation_baseline", year))
    panel = event_panel(matched, report_query(con, "evaluation_months", year))
    att, overall = did_event(panel.y, panel.treated, panel.weight)
    draws, overall_draws = cluster_bootstrap(panel, reps)
    n_t = (~np.isnan(panel.y[panel.treated])).sum(axis=0)
    n_c = (~np.isnan(panel.y[~panel.treated])).sum(axis=0)
    df = pl.DataFrame(
        {
            "event_month": EVENT_MONTHS,
            "att": att,
            "lo": _percentile(draws, 2.5),
            "hi": _percentile(draws, 97.5),
            "n_treated": n_t,
            "n_comparison": n_c,
        }
    ).with_columns(((pl.col("n_treated") < min_cell) | (pl.col("n_comparison") < min_cell)).alias("suppressed"))
    df = blank_suppressed(df, ["att", "lo", "hi"])
    summary = {
        "att": overall,
        "lo": float(np.nanpercentile(overall_draws, 2.5)),
        "hi": float(np.nanpercentile(overall_draws, 97.5)),
        "n_treated": int(panel.treated.sum()),
        "n_comparison": int((~panel.treated).sum()),
        "n_schools": int(panel.cluster.max() + 1) if len(panel.cluster) else 0,
    }
    return df, summary


# --- attrition ----------------------------------------------------------------------------
def attrition(con, year: int, min_cell: int) -> pl.DataFrame:
    """Enrolled pupils and how many remain at each step of the analysis, before any effect."""
    frame = report_query(con, "evaluation_baseline", year)
    enrolled = int(report_query(con, "enrolled_by_district", year)["n_pupils"].sum())
    treated = frame.filter(pl.col("treated") == 1)
    with_baseline = treated.drop_nulls(["absence_rate", "share_passed", "gender"]).height
    matched = cem(frame)
    n_matched = matched.filter(pl.col("treated") == 1).height
    months = report_query(con, "evaluation_months", year)
    panel = event_panel(matched, months)
    after = ~np.isnan(panel.y[:, OUTCOME_MONTHS]).all(axis=1)
    before = ~np.isnan(panel.y[:, BASELINE_MONTHS]).all(axis=1)
    with_outcome = int((panel.treated & after & before).sum())
    steps = [
        ("Inskrivna till och med året", enrolled),
        ("med en hel termin före inskrivningen i data", treated.height),
        ("med frånvaro och betyg den terminen", with_baseline),
        ("med matchade jämförelseelever", n_matched),
        ("med närvaro både före och 3–12 månader efter", with_outcome),
    ]
    df = pl.DataFrame(steps, schema=["step", "n"], orient="row").with_columns(
        (pl.col("n") / pl.lit(enrolled)).alias("share")
    )
    return df.with_columns(((pl.col("n") > 0) & (pl.col("n") < min_cell)).alias("suppressed"))


def text_attendance_effect(summary: dict) -> str:
    return (
        f"Jämfört med matchade elever i samma skolor och årskurser som aldrig skrevs in ändrades de inskrivna "
        f"elevernas frånvaro 3–12 månader efter inskrivningen med "
        f"{describe_interval(summary['att'], summary['lo'], summary['hi'])} Skattningen bygger på "
        f"{summary['n_treated']} inskrivna och {summary['n_comparison']} jämförelseelever i "
        f"{summary['n_schools']} skolor; intervallet tar hänsyn till att elever i samma skola liknar varandra."
    )


# --- grades and eligibility ---------------------------------------------------------------
def _diff_and_size(values: np.ndarray, treated: np.ndarray, weight: np.ndarray, binary: bool) -> tuple[float, float]:
    t, c = treated, ~treated
    if t.sum() < 2 or c.sum() < 2:
        return float("nan"), float("nan")
    m_t, m_c = np.average(values[t], weights=weight[t]), np.average(values[c], weights=weight[c])
    size = cox_index(m_t, m_c) if binary else hedges_g(values[t], values[c], weight[t], weight[c])
    return float(m_t - m_c), size


def _bootstrap(values, treated, weight, cluster, binary: bool, reps: int, seed: int) -> np.ndarray:
    return np.array(
        [
            _diff_and_size(values[idx], treated[idx], weight[idx], binary)
            for idx in school_resamples(cluster, reps, seed)
        ]
    )


def grade_effects(con, year: int, min_cell: int, reps: int = 300) -> pl.DataFrame:
    """Matched comparison of (1) the change in share of passed subjects from the baseline term
    to the term after enrolment and (2) eligibility for yrkesprogram at the end of årskurs 9."""
    matched = cem(report_query(con, "evaluation_baseline", year))
    outcomes = report_query(con, "evaluation_outcomes", year)
    later = outcomes.select("pupil_key", pl.col("term_index").alias("t2"), pl.col("share_passed").alias("s2"))
    change = (
        matched.with_columns((pl.col("term_index") + 2).alias("t2"))
        .join(later, on=["pupil_key", "t2"])
        .drop_nulls("s2")
        .with_columns((pl.col("s2") - pl.col("share_passed")).alias("value"))
    )
    final = outcomes.filter((pl.col("term") == "VT") & (pl.col("school_year") == 9)).select(
        "pupil_key", pl.col("term_index").alias("t9"), pl.col("eligible_vocational").cast(pl.Float64).alias("value")
    )
    eligibility = (
        matched.join(final, on="pupil_key")
        .filter(pl.col("t9") > pl.col("term_index"))
        .drop_nulls("value")
        .unique(["unit"])
    )
    rows = []
    for label, df, binary in (
        ("Förändring i andel godkända ämnen", change, False),
        ("Behörig till yrkesprogram efter åk 9", eligibility, True),
    ):
        values, treated = df["value"].to_numpy(), df["treated"].to_numpy() == 1
        weight, cluster = df["weight"].to_numpy(), df["school_unit_code"].to_numpy()
        diff, size = _diff_and_size(values, treated, weight, binary)
        draws = _bootstrap(values, treated, weight, cluster, binary, reps, 2016) if len(df) else np.full((1, 2), np.nan)
        with np.errstate(all="ignore"):
            lo, hi = np.nanpercentile(draws[:, 0], [2.5, 97.5]) if np.isfinite(draws[:, 0]).any() else (np.nan,) * 2
            s_lo, s_hi = np.nanpercentile(draws[:, 1], [2.5, 97.5]) if np.isfinite(draws[:, 1]).any() else (np.nan,) * 2
        rows.append(
            {
                "measure": label,
                "n_treated": int(treated.sum()),
                "n_comparison": int((~treated).sum()),
                "mean_treated": float(np.average(values[treated], weights=weight[treated])) if treated.any() else None,
                "mean_comparison": float(np.average(values[~treated], weights=weight[~treated]))
                if (~treated).any()
                else None,
                "difference": diff,
                "lo": lo,
                "hi": hi,
                "effect_size": size,
                "size_lo": s_lo,
                "size_hi": s_hi,
                "size_kind": "Cox index" if binary else "Hedges g",
            }
        )
    df = pl.DataFrame(rows).with_columns(pl.col(pl.Float64).fill_nan(None))
    return df.with_columns(((pl.col("n_treated") < min_cell) | (pl.col("n_comparison") < min_cell)).alias("suppressed"))


# --- the förstudie's questions ------------------------------------------------------------
def absence_change_by_group(con, year: int, min_cell: int) -> pl.DataFrame:
    """Enrolled pupils' change in absence (months +3..+12 minus -6..-1) by selection reason,
    intervention, district and gender: descriptive, with t intervals; groups overlap."""
    months = report_query(con, "attendance_event_time", year)
    per_pupil = (
        months.group_by("pupil_key")
        .agg(
            pl.col("absence_rate").filter(pl.col("event_month").is_between(3, 12)).mean().alias("after"),
            pl.col("absence_rate").filter(pl.col("event_month").is_between(-6, -1)).mean().alias("before"),
        )
        .drop_nulls()
        .with_columns((pl.col("after") - pl.col("before")).alias("change"))
    )
    groups = report_query(con, "evaluation_groups", year)
    rows = []
    for dimension, column in (
        ("Urvalsgrund", "selection_reasons"),
        ("Insats", "interventions"),
        ("Stadsdel", "district"),
        ("Kön", "gender_label"),
    ):
        exploded = groups.explode(column) if groups.schema[column] == pl.List(pl.String) else groups
        joined = (
            exploded.select("pupil_key", pl.col(column).alias("group"))
            .drop_nulls()
            .unique()
            .join(per_pupil, on="pupil_key")
        )
        for (group,), part in joined.group_by("group"):
            mean, lo, hi, n = mean_ci(part["change"].to_numpy())
            rows.append({"dimension": dimension, "group": group, "n": n, "change": mean, "lo": lo, "hi": hi})
    df = pl.DataFrame(
        rows,
        schema={
            "dimension": pl.String,
            "group": pl.String,
            "n": pl.Int64,
            "change": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
        },
    ).sort("dimension", "group")
    df = df.with_columns(((pl.col("n") > 0) & (pl.col("n") < min_cell)).alias("suppressed"))
    return blank_suppressed(df, ["change", "lo", "hi"])


def followup_2015(con, min_cell: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The 2015 follow-up's statistics from the store: per-pupil rise in share passed from
    term 1 to 2 and 2 to 3 with the group-level change; and boys' share passed and
    högskoleförberedande (ES) eligibility per term. Wilson and t intervals."""
    rows = report_query(con, "followup_2015", 2015)
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


def text_grade_effects(effects: pl.DataFrame) -> str:
    parts = []
    for r in effects.iter_rows(named=True):
        if r["suppressed"] or r["difference"] is None:
            parts.append(f"{r['measure']}: för få elever för en jämförelse.")
            continue
        parts.append(
            f"{r['measure']}: inskrivna jämfört med matchade elever "
            f"{describe_interval(r['difference'], r['lo'], r['hi'])}"
        )
    return " ".join(parts) + (
        " Skillnaden i behörighet gäller de inskrivna som hunnit gå ut årskurs 9; den visar inte "
        "vad programmet orsakat om eleverna skiljer sig på sätt som matchningen inte fångar."
    )


def attrition_by_group(con, year: int, min_cell: int) -> pl.DataFrame:
    """Attrition by gender and district: enrolled, matched, and with attendance before and after."""
    frame = report_query(con, "evaluation_baseline", year)
    groups = report_query(con, "evaluation_groups", year).select("pupil_key", "district", "gender_label")
    matched = cem(frame)
    panel = event_panel(matched, report_query(con, "evaluation_months", year))
    has_both = (~np.isnan(panel.y[:, OUTCOME_MONTHS]).all(axis=1)) & (
        ~np.isnan(panel.y[:, BASELINE_MONTHS]).all(axis=1)
    )
    units = matched.select("unit", "pupil_key", "treated").with_columns(pl.Series("complete", has_both))
    done = units.filter((pl.col("treated") == 1) & pl.col("complete"))["pupil_key"]
    status = groups.with_columns(
        pl.col("pupil_key").is_in(matched.filter(pl.col("treated") == 1)["pupil_key"].implode()).alias("matched"),
        pl.col("pupil_key").is_in(done.implode()).alias("complete"),
    )
    rows = []
    for dimension, column in (("Kön", "gender_label"), ("Stadsdel", "district")):
        for (group,), part in status.drop_nulls(column).group_by(column):
            rows.append(
                {
                    "label": dimension,
                    "reason": group,
                    "n": part.height,
                    "n_matched": int(part["matched"].sum()),
                    "n_complete": int(part["complete"].sum()),
                }
            )
    df = pl.DataFrame(
        rows,
        schema={"label": pl.String, "reason": pl.String, "n": pl.Int64, "n_matched": pl.Int64, "n_complete": pl.Int64},
    ).sort("label", "reason")
    # a row rests on its smallest count: suppress it if any count is small
    small = pl.any_horizontal(((pl.col(c) > 0) & (pl.col(c) < min_cell)) for c in ("n", "n_matched", "n_complete"))
    return df.with_columns((pl.col("n_complete") / pl.col("n")).alias("share"), small.alias("suppressed"))
