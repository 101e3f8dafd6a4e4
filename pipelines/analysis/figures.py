"""The yearly report's figures, registered with the disclosure-control layer.

Each `register_*` function computes figures and registers every frame the report shows
(table, chart or sentence) with the cells it publishes: each count column carries the
pupils it counts (`<col>__members`), and the disclosure layer derives every relation
between cells from those pupils. The notebook computes all figures first, protects them
together (with every earlier publication of the store), and only then displays protected
frames. Labels (`K`, `KD`) name cells in messages; they never link cells.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from pipelines.analysis import evaluation as ev
from pipelines.analysis import followup as fu
from pipelines.analysis.crosscheck import Worker as CrossCheckWorker
from pipelines.analysis.crosscheck import callaway_santanna
from pipelines.analysis.disclosure import ALL, Key, KeyFn, Publication, key, keyed, members
from pipelines.analysis.sample import build_sample
from pipelines.labels import DIMENSION, MEASURES, PUPIL_GENDER, THIS_FOLLOWUP, TOTAL

# Populations whose cells name their district (a district's own, or the subset's marker as
# the total): a subset report's cell of one of them is the full report's cell of the same
# pupils, so the full report's pattern applies to it. Every other population of a subset
# report is a different one (the subset's pupils, comparison schools and matches) and its
# cells carry `subset=<marker>`.
DISTRICT_NAMED = {"enrolled", "district_pupils", "selection_reasons", "interventions", "pupils", "eval_eligible"}


def scoped(year: int, districts: list[str] | None = None) -> tuple[Callable[..., Key], Callable[..., KeyFn]]:
    """Key makers for the populations of the `year` report (on `districts` only, if given).
    Most figures count pupils "up to the end of `year`", so their cells carry `through=year`
    and another year's report names different cells; enrolments per calendar year are the
    same cells in every report."""
    subset = {"subset": subset_marker(districts)} if districts else {}

    def own(population: str) -> dict:
        return {} if population in DISTRICT_NAMED else subset

    def k(population: str, **dims: Any) -> Key:
        if population == "enrolled":  # all years up to `year`: a margin of its own
            return key(population, **(dims | ({"year": through(year)} if dims.get("year") == ALL else {})))
        return key(population, through=year, **dims, **own(population))

    def kd(population: str, *columns: str, **fixed: Any) -> KeyFn:
        return keyed(population, *columns, through=year, **fixed, **own(population))

    return k, kd


def through(year: int) -> str:
    return f"t.o.m. {year}"


def _total_or(value: str, total_key: str) -> str:
    return total_key if value == TOTAL else value


def subset_marker(districts: list[str] | None) -> str:
    """The dimension value of a total over some districts only (a subset report's `Totalt`)."""
    return ALL if not districts else "+".join(sorted(districts))


# --- the follow-up (sections 1-6) ---------------------------------------------------------
def register_followup(
    pub: Publication,
    con,
    year: int,
    districts: list[str] | None = None,
    absence_threshold: float = fu.DEFAULT_ABSENCE_THRESHOLD,
) -> None:
    K, KD = scoped(year, districts)
    marker = subset_marker(districts)
    files, rules = fu.data_quality(con)  # about files and rows, not pupils: shown as they are
    pub.table("quality", files, counts={})
    pub.table("quarantine_rules", rules, counts={})

    cov = fu.coverage(con, year, districts)
    pub.table("coverage", cov, counts={"k": KD("found_in", "source"), "n": lambda r: K("pupils", district=marker)})

    enrolled = fu.enrolled_by_district(con, year, districts)
    pub.table(
        "enrolled",
        enrolled,
        counts={"n_pupils": lambda r: K("enrolled", district=_total_or(r["district"], marker), year=r["year"])},
        labels=["year"],
    )
    apart = fu.programmes_apart(con, year, districts)  # other programmes of the register: not PPSS, shown apart
    pub.table(
        "other_programmes",
        apart,
        counts={"n_pupils": KD("other_programme", "programme"), "n_also_ppss": KD("other_programme_ppss", "programme")},
    )
    # Only periods that end within the year: a report never shows what came after it.
    targets = fu.enrolled_vs_targets(con, districts).filter(pl.col("last_day") <= dt.date(year, 12, 31))
    pub.table("targets", targets, counts={"registered": KD("first_enrolled", "period")}, labels=["documented"])

    for column in ("selection_reasons", "interventions"):
        voc = fu.vocabulary_by_district(con, year, column, districts)
        pub.table(
            column,
            voc,
            counts={"n_pupils": KD(column, "district", "term_value"), "n_district": KD("district_pupils", "district")},
            rests_on={"share": ["n_pupils", "n_district"]},
        )

    event = fu.attendance_event_time(con, year, districts)
    pub.table(
        "attendance_event_time",
        event,
        counts={"n": KD("event_month_pupils", "pupil_group", "event_month")},
        labels=["event_month"],
    )
    thresholds = fu.absence_thresholds(con, year, absence_threshold, districts)
    pub.table(
        "absence_thresholds",
        thresholds,
        counts={
            "n": KD("term_pupils", "term_label", "pupil_group"),
            "k": KD("high_absence", "term_label", "pupil_group", "threshold"),
        },
        labels=["term_index", "threshold"],
    )
    indiv, group = fu.pass_change(con, year, districts)
    n_fn = KD("pass_change_pupils", "gender_label")
    pub.table("pass_change_individual", indiv, counts={"k": KD("pass_change", "gender_label", "direction"), "n": n_fn})
    pub.table("pass_change_group", group, counts={"n": n_fn})

    elig = fu.grade9_eligibility(con, year, districts)
    pub.table(
        "grade9_eligibility",
        elig,
        counts={
            "n": KD("grade9_pupils", "pupil_group", "gender_label"),
            "k": KD("eligible", "measure", "pupil_group", "gender_label"),
        },
    )
    ctx = fu.context_comparison(con, year, districts)
    own = lambda fn: lambda r: fn(r) if r["source"] == THIS_FOLLOWUP else None  # noqa: E731
    pub.table(
        "context",
        ctx,
        counts={
            "n": own(lambda r: K("grade9_pupils", pupil_group=r["label"], gender_label=fu.ALL)),
            "k_vocational": own(
                lambda r: K(
                    "eligible", measure=MEASURES["eligible_vocational"], pupil_group=r["label"], gender_label=fu.ALL
                )
            ),
            "k_all_passed": own(lambda r: K("all_passed", pupil_group=r["label"])),
        },
        rests_on={
            "share_eligible_vocational": ["n", "k_vocational"],
            "share_all_subjects_passed": ["n", "k_all_passed"],
            "mean_merit_value_17": ["n"],
        },
        labels=["spring_year"],
    )


# --- the evaluation (sections 7-9) -------------------------------------------------------
def group_key(population: str, year: int, districts: list[str] | None = None, **fixed: Any) -> KeyFn:
    """Rows of an attrition-by-group table: a gender (over the report's districts) or a
    district (over both genders)."""
    K, _ = scoped(year, districts)

    def fn(r: dict) -> Key:
        if r["label"] == DIMENSION["gender"]:
            return K(population, gender=r["reason"], district=subset_marker(districts), **fixed)
        return K(population, district=r["reason"], gender=ALL, **fixed)

    return fn


def _keys_at(a, rows: pl.Series | list[int]) -> list[str]:
    """The pupils of an analytic sample's frame rows."""
    frame = a.frame.select("row", "pupil_key")
    return frame.filter(pl.col("row").is_in(pl.Series(rows).implode()))["pupil_key"].unique().to_list()


def _pupil_sets(sample) -> dict[str, dict[str, list[str]]]:
    """Per outcome: the enrolled pupils the estimand is about, those in the estimate, and the
    comparison pupils with any weight."""
    out = {}
    for outcome, a in sample.analytic.items():
        out[outcome] = {
            "eligible": a.treated["pupil_key"].unique().to_list(),
            "matched": _keys_at(a, a.members["row"]),
            "comparison": _keys_at(a, a.weights.filter(pl.col("w") > 0)["row"]),
        }
    return out


def register_evaluation(
    pub: Publication,
    con,
    year: int,
    min_cell: int,
    districts: list[str] | None = None,
    worker: CrossCheckWorker | None = None,
) -> dict:
    """Register the evaluation's figures (sections 7-9) from one evaluation sample (of the
    pupils first enrolled in `districts`, if given); returns what the notebook needs besides
    protected frames (the event curve's pre-trend test). `worker`: the process the report
    spawned for the cross-check (crosscheck.Worker); without it, it runs here."""
    K, KD = scoped(year, districts)
    marker = subset_marker(districts)
    sample = build_sample(con, year, districts)
    # the worker's cross-check runs while the figures below are computed; started after the
    # sample so that its memory does not add to the sample's peak (a city: under 3 GB in all)
    pending = worker.run(con, year, districts) if worker is not None else None
    estimates = ev.headline(sample)
    sets = _pupil_sets(sample)
    enrolled_keys = sample.enrolled["pupil_key"].unique().to_list()

    def eligible(outcome: str) -> Key:
        return K("eval_eligible", outcome=outcome, gender=ALL, district=marker)

    def in_estimate(outcome: str) -> Key:
        return K("eval_in_estimate", outcome=outcome, gender=ALL, district=marker)

    steps = ["enrolled", "eligible", "matched"]
    attrition = ev.attrition(sample)
    attrition = attrition.with_columns(
        pl.Series(
            members("n"),
            [
                enrolled_keys if r["step_no"] == 0 else sets[r["outcome"]][steps[r["step_no"]]]
                for r in attrition.iter_rows(named=True)
            ],
            dtype=pl.List(pl.String),
        ),
        pl.Series(members("n_enrolled"), [enrolled_keys] * attrition.height, dtype=pl.List(pl.String)),
    )
    step_labels = [
        lambda r: K("enrolled", district=marker, year=ALL),
        lambda r: eligible(r["outcome"]),
        lambda r: in_estimate(r["outcome"]),
    ]
    pub.table(
        "attrition",
        attrition,
        counts={
            "n": lambda r: step_labels[r["step_no"]](r),
            "n_enrolled": lambda r: K("enrolled", district=marker, year=ALL),
        },
        rests_on={"share": ["n", "n_enrolled"]},
        labels=["step_no"],
    )
    for outcome in estimates:
        pub.prefer_shown(in_estimate(outcome))  # the estimates rest on it: hide a neighbour instead

    groups = ev.attrition_by_group(sample)
    status = sample.enrolled.select(
        "pupil_key", "district", pl.col("gender").replace_strict(PUPIL_GENDER, default=None).alias("gender_label")
    )
    absence = sets.get("absence_rate", {"eligible": [], "matched": []})
    group_members = {"n": [], "n_eligible": [], "n_matched": []}
    for r in groups.iter_rows(named=True):
        column = "gender_label" if r["label"] == DIMENSION["gender"] else "district"
        keys = status.filter(pl.col(column) == r["reason"])["pupil_key"].to_list()
        group_members["n"].append(keys)
        group_members["n_eligible"].append(sorted(set(keys) & set(absence["eligible"])))
        group_members["n_matched"].append(sorted(set(keys) & set(absence["matched"])))
    groups = groups.with_columns(pl.Series(members(c), v, dtype=pl.List(pl.String)) for c, v in group_members.items())
    pub.table(
        "attrition_by_group",
        groups,
        counts={
            "n": group_key("pupils", year, districts),
            "n_eligible": group_key("eval_eligible", year, districts, outcome="absence_rate"),
            "n_matched": group_key("eval_in_estimate", year, districts, outcome="absence_rate"),
        },
        rests_on={"share": ["n_eligible", "n_matched"]},
    )

    left = ev.left_out(sample)
    left = left.with_columns(
        pl.Series(
            members("n"),
            [sorted(set(sets[o]["eligible"]) - set(sets[o]["matched"])) for o in left["outcome"]],
            dtype=pl.List(pl.String),
        )
    )
    pub.table("left_out", left, counts={"n": KD("eval_left_out", "outcome")})

    effects = ev.estimates_frame(estimates)
    effects = effects.with_columns(
        pl.Series(members(c), [sets[o][s] for o in effects["outcome"]], dtype=pl.List(pl.String))
        for c, s in (("n_eligible", "eligible"), ("n_treated", "matched"), ("n_comparison", "comparison"))
    )
    pub.table(
        "effects",
        effects,
        counts={
            "n_eligible": lambda r: eligible(r["outcome"]),
            "n_treated": lambda r: in_estimate(r["outcome"]),
            "n_comparison": KD("eval_comparison", "outcome"),
        },
        rests_on={
            c: ["n_treated", "n_comparison"] for c in ("difference", "lo", "hi", "effect_size", "evalue", "evalue_ci")
        },
        measures={c: (lambda r, c=c: f"effekt.{c}:{r['outcome']}") for c in ("difference", "lo", "hi")},
    )
    # no counts of its own: it describes the analytic samples, hidden with them
    pub.table(
        "balance",
        ev.equivalence_all(sample),
        counts={},
        keys=[in_estimate(o) for o in estimates],
        rests_on={"class_before": [], "class_after": []},
    )
    curve, pretrend = ev.event_curve(sample)
    pub.table(
        "effect_event_curve", curve, counts={"n_treated": KD("did_treated", "event_month")}, labels=["event_month"]
    )
    pub.table(
        "pretrend",
        pl.DataFrame({"p_value": [pretrend["p_value"]]}).with_columns(pl.col("p_value").fill_nan(None)),
        counts={},
        keys=[in_estimate("absence_rate")],
    )

    check = pending.result() if pending is not None else callaway_santanna(con, year, districts)
    pub.table(
        "crosscheck",
        pl.DataFrame([check], schema_overrides={members("n_enrolled"): pl.List(pl.String)}).with_columns(
            pl.col(pl.Float64).fill_nan(None)
        ),
        counts={"n_enrolled": lambda r: K("crosscheck_enrolled")},
    )

    sub = ev.subgroups(sample)
    # the p- and q-values are figures of the group's estimate: hidden with its count
    pub.table(
        "subgroups",
        sub,
        counts={"n": KD("subgroup", "dimension", "group")},
        measures={c: (lambda r, c=c: f"effekt.{c}:absence_rate") for c in ("change", "lo", "hi")},
    )

    individual, boys = ev.followup_2015(con, min_cell, districts)
    pub.table(
        "followup_2015_individual",
        individual,
        counts={"n": KD("fu2015_pairs", "label"), "k": KD("fu2015_increased", "label")},
        rests_on={"group_change": ["n"], "group_lo": ["n"], "group_hi": ["n"]},
    )
    pub.table(
        "followup_2015_boys",
        boys,
        counts={"n": KD("fu2015_boys", "label"), "k": KD("fu2015_boys_es", "label")},
        rests_on={"mean_share_passed": ["n"]},
        labels=["term_no"],
    )
    return {"pretrend": pretrend}
