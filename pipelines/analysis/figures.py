"""The yearly report's figures, registered with the disclosure-control layer.

Each `register_*` function computes figures, registers every frame the report shows
(table, chart or sentence) with the cells it publishes, and declares how those cells are
linked. The notebook computes all figures first, protects them together, and only then
displays protected frames.

`register_evaluation` registers the evaluation's outputs, all from one evaluation sample.
Any function that returns a polars frame of aggregates can be registered the same way:
name the count columns with `keyed(...)`, say which figures rest on which counts, and link
the counts (`sum_over`, `equal_sum`, `at_most`, `share`).
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
from pipelines.analysis.disclosure import ALL, Key, KeyFn, Publication, key, keyed
from pipelines.analysis.sample import build_sample
from pipelines.labels import DIMENSION, GENDERS, MEASURES, THIS_FOLLOWUP, TOTAL

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
    pupils = K("pupils", gender=ALL, district=marker)
    pub.table(
        "coverage",
        cov,
        counts={"k": KD("found_in", "source"), "n": lambda r: pupils},
    )
    for r in cov.iter_rows(named=True):
        pub.share(K("found_in", source=r["source"]), pupils)

    enrolled = fu.enrolled_by_district(con, year, districts)
    pub.table(
        "enrolled",
        enrolled,
        counts={"n_pupils": lambda r: K("enrolled", district=_total_or(r["district"], marker), year=r["year"])},
        labels=["year"],
    )
    names = [d for d in enrolled["district"].unique(maintain_order=True).to_list() if d != TOTAL]
    pub.sum_over("enrolled", "district", total=marker, members=names)
    years = enrolled["year"].unique(maintain_order=True).to_list()
    for d in [*names, marker]:  # each district's enrolments over the years: not shown, but implied
        rows = enrolled.filter(pl.col("district") == (TOTAL if d == marker else d))
        pub.count(K("enrolled", district=d, year=ALL), int(rows["n_pupils"].sum()), internal=True)
    pub.sum_over("enrolled", "year", total=through(year), members=years)

    apart = fu.programmes_apart(con, year, districts)  # other programmes of the register: not PPSS, shown apart
    pub.table(
        "other_programmes",
        apart,
        counts={"n_pupils": KD("other_programme", "programme"), "n_also_ppss": KD("other_programme_ppss", "programme")},
    )
    for r in apart.iter_rows(named=True):
        pub.at_most(K("other_programme_ppss", programme=r["programme"]), K("other_programme", programme=r["programme"]))

    # Only periods that end within the year: a report never shows what came after it.
    targets = fu.enrolled_vs_targets(con, districts).filter(pl.col("last_day") <= dt.date(year, 12, 31))
    pub.table("targets", targets, counts={"registered": KD("first_enrolled", "period")}, labels=["documented"])

    for column in ("selection_reasons", "interventions"):
        voc = fu.vocabulary_by_district(con, year, column, districts)
        pub.table(
            column,
            voc,
            counts={
                "n_pupils": KD(column, "district", "term_value"),
                "n_district": KD("district_pupils", "district"),
            },
        )
        for r in voc.iter_rows(named=True):
            # "1 of 37 pupils with Annat" is a count of one: the numerator is protected;
            # pupils *without* a reason are not a group the heatmap describes.
            pub.share(
                K(column, district=r["district"], term_value=r["term_value"]),
                K("district_pupils", district=r["district"]),
                complement=False,
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
    by_group: dict[tuple, list[tuple[float, Key]]] = {}
    for r in thresholds.iter_rows(named=True):
        k = K("high_absence", term_label=r["term_label"], pupil_group=r["pupil_group"], threshold=r["threshold"])
        n = K("term_pupils", term_label=r["term_label"], pupil_group=r["pupil_group"])
        pub.share(k, n)
        by_group.setdefault((r["term_label"], r["pupil_group"]), []).append((r["threshold"], k))
    for ks in by_group.values():  # a higher threshold counts a subset of a lower one
        ordered = [k for _, k in sorted(ks)]
        for higher, lower in zip(ordered[1:], ordered, strict=False):
            pub.at_most(higher, lower)

    indiv, group = fu.pass_change(con, year, districts)
    n_fn = KD("pass_change_pupils", "gender_label")
    pub.table("pass_change_individual", indiv, counts={"k": KD("pass_change", "gender_label", "direction"), "n": n_fn})
    pub.table("pass_change_group", group, counts={"n": n_fn})
    for population in ("pass_change", "pass_change_pupils"):
        pub.sum_over(population, "gender_label", total=fu.ALL, members=GENDERS)
    for g in indiv["gender_label"].unique(maintain_order=True).to_list():
        pub.equal_sum(
            K("pass_change_pupils", gender_label=g),
            [K("pass_change", gender_label=g, direction=d) for d in fu.DIRECTIONS],
        )

    elig = fu.grade9_eligibility(con, year, districts)
    pub.table(
        "grade9_eligibility",
        elig,
        counts={
            "n": KD("grade9_pupils", "pupil_group", "gender_label"),
            "k": KD("eligible", "measure", "pupil_group", "gender_label"),
        },
    )
    for population in ("grade9_pupils", "eligible"):
        pub.sum_over(population, "gender_label", total=fu.ALL, members=GENDERS)
    for r in elig.iter_rows(named=True):
        dims = {"pupil_group": r["pupil_group"], "gender_label": r["gender_label"]}
        pub.share(K("eligible", measure=r["measure"], **dims), K("grade9_pupils", **dims))

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
    for r in ctx.filter(pl.col("source") == THIS_FOLLOWUP).iter_rows(named=True):
        pub.share(
            K("all_passed", pupil_group=r["label"]), K("grade9_pupils", pupil_group=r["label"], gender_label=fu.ALL)
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
    # One cell per population: the enrolled pupils of the year (the enrolment table's total
    # over districts and years, linked to section 1's pupils by link_report), and per outcome
    # those the estimand is about and those in the estimate. The attendance outcome's cells
    # are the totals of its attrition-by-group table.
    enrolled = K("enrolled", district=marker, year=ALL)

    def eligible(outcome: str) -> Key:
        return K("eval_eligible", outcome=outcome, gender=ALL, district=marker)

    def in_estimate(outcome: str) -> Key:
        return K("eval_in_estimate", outcome=outcome, gender=ALL, district=marker)

    steps = [lambda r: enrolled, lambda r: eligible(r["outcome"]), lambda r: in_estimate(r["outcome"])]
    pub.table(
        "attrition",
        ev.attrition(sample),
        counts={"n": lambda r: steps[r["step_no"]](r), "n_enrolled": lambda r: enrolled},
        rests_on={"share": ["n", "n_enrolled"]},
        labels=["step_no"],
    )
    for outcome in estimates:
        pub.at_most(in_estimate(outcome), eligible(outcome))
        pub.at_most(eligible(outcome), enrolled)
        pub.prefer_shown(in_estimate(outcome))  # the estimates rest on it: hide a neighbour instead

    groups = ev.attrition_by_group(sample)
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
    for population in ("pupils", "eval_eligible", "eval_in_estimate"):
        pub.sum_over(population, "gender", total=ALL)
        pub.sum_over(population, "district", total=marker, members=sorted(districts) if districts else None)
    for r in groups.iter_rows(named=True):
        p, e, m = (
            group_key("pupils", year, districts)(r),
            group_key("eval_eligible", year, districts, outcome="absence_rate")(r),
            group_key("eval_in_estimate", year, districts, outcome="absence_rate")(r),
        )
        pub.at_most(e, p)
        pub.at_most(m, e)

    left = ev.left_out(sample)
    pub.table("left_out", left, counts={"n": KD("eval_left_out", "outcome")})
    for outcome in estimates:
        pub.equal_sum(eligible(outcome), [in_estimate(outcome), K("eval_left_out", outcome=outcome)])

    effects = ev.estimates_frame(estimates)
    pub.table(
        "effects",
        effects,
        counts={
            "n_eligible": lambda r: eligible(r["outcome"]),
            "n_treated": lambda r: in_estimate(r["outcome"]),
            "n_comparison": KD("eval_comparison", "outcome"),
        },
        rests_on={
            c: ["n_treated", "n_comparison"]
            for c in (
                *("difference", "lo", "hi", "effect_size", "evalue", "evalue_ci"),
                *("n_schools", "pretrend_p", "robust_lo", "robust_hi", "breakdown"),
            )
        },
    )
    # what attendance was measured against: the pupils in the estimate, by level
    levels = ev.reference_levels(sample)
    pub.table(
        "comparison_levels",
        levels,
        counts={"n": KD("eval_reference", "level"), "n_total": lambda r: in_estimate("absence_rate")},
    )
    pub.equal_sum(
        in_estimate("absence_rate"), [K("eval_reference", level=v) for v in levels["level"].to_list()], gap=False
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
    for m in curve["event_month"].to_list():
        pub.at_most(K("did_treated", event_month=m), in_estimate("absence_rate"))
    pub.table(
        "pretrend",
        pl.DataFrame({"p_value": [pretrend["p_value"]]}).with_columns(pl.col("p_value").fill_nan(None)),
        counts={},
        keys=[in_estimate("absence_rate")],
    )

    check = pending.result() if pending is not None else callaway_santanna(con, year, districts)
    pub.table(
        "crosscheck",
        pl.DataFrame([check]).with_columns(pl.col(pl.Float64).fill_nan(None)),
        counts={"n_enrolled": lambda r: K("crosscheck_enrolled")},
    )
    pub.at_most(K("crosscheck_enrolled"), enrolled)

    sub = ev.subgroups(sample)
    pub.table("subgroups", sub, counts={"n": KD("subgroup", "dimension", "group")}, labels=["p_value", "q_value"])
    for r in sub.iter_rows(named=True):
        pub.at_most(K("subgroup", dimension=r["dimension"], group=r["group"]), in_estimate("absence_rate"))
    for dimension in (DIMENSION["gender"], DIMENSION["district"]):  # each pupil has one gender and one district
        part = sub.filter(pl.col("dimension") == dimension)
        cells = [K("subgroup", dimension=dimension, group=g) for g in part["group"].to_list()]
        if cells and int(part["n"].sum()) == estimates["absence_rate"].n_enrolled:
            pub.equal_sum(in_estimate("absence_rate"), cells, gap=False)

    individual, boys = ev.followup_2015(con, min_cell, districts)
    pub.table(
        "followup_2015_individual",
        individual,
        counts={"n": KD("fu2015_pairs", "label"), "k": KD("fu2015_increased", "label")},
        rests_on={"group_change": ["n"], "group_lo": ["n"], "group_hi": ["n"]},
    )
    for r in individual.iter_rows(named=True):
        pub.share(K("fu2015_increased", label=r["label"]), K("fu2015_pairs", label=r["label"]))
    pub.table(
        "followup_2015_boys",
        boys,
        counts={"n": KD("fu2015_boys", "label"), "k": KD("fu2015_boys_es", "label")},
        rests_on={"mean_share_passed": ["n"]},
        labels=["term_no"],
    )
    for r in boys.iter_rows(named=True):
        pub.share(K("fu2015_boys_es", label=r["label"]), K("fu2015_boys", label=r["label"]))
    return {"pretrend": pretrend}


# --- links between the blocks ------------------------------------------------------------
def link_report(pub: Publication, year: int, districts: list[str] | None = None) -> None:
    """Cells of different blocks that count overlapping pupils. Enrolments are counted per
    pupil and programme; a pupil counts once, in the district of the first enrolment, so
    enrolments = pupils + a remainder that is never negative (pupils in two programmes).
    A link whose cells a block did not register is skipped."""
    K, _ = scoped(year, districts)
    marker = subset_marker(districts)
    names = {dict(k[1:])["district"] for k in pub.cells if k[0] == "district_pupils"} | set(districts or [])
    for d in sorted(names | {marker}, key=lambda d: (d == marker, d)):
        pupils = K("pupils", gender=ALL, district=d)
        pub.equal_sum(K("enrolled", district=d, year=ALL), [pupils])
        if d in names:
            pub.at_most(pupils, K("district_pupils", district=d))
    pub.at_most(K("pass_change_pupils", gender_label=fu.ALL), K("pupils", gender=ALL, district=marker))
