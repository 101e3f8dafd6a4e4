"""7. Effects against similar pupils: the evaluation sample, attrition, balance, the
headline effects with their uncertainty, and how strong an unknown factor would have to be."""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.analysis import evaluation as ev
from pipelines.analysis.crosscheck import callaway_santanna
from pipelines.analysis.disclosure import ALL, Key, KeyFn, members
from pipelines.analysis.figures import scoped, subset_marker
from pipelines.analysis.sample import build_sample
from pipelines.labels import DIMENSION, PUPIL_GENDER
from pipelines.report import charts, tables
from pipelines.report.sections.base import Context, chart, markdown, table

TITLE = "Effekter jämfört med liknande elever"
INTRO = ""
# Shown in the methods appendix (closing.py): hard going for a committee reader.
SENSITIVITY = (
    "### Känslighet: hur stark måste en okänd faktor vara?\n\n"
    "Jämförelsen tar hänsyn till det som syns i data. Ett E-värde anger hur starkt en okänd faktor (till exempel en "
    "kris i familjen) skulle behöva hänga ihop både med att eleven skrevs in och med utfallet, mätt som en "
    "riskkvot, för att helt förklara bort skattningen. Ju större E-värde, desto mer robust är resultatet; ett "
    "E-värde nära 1 betyder att även en svag okänd faktor räcker."
)


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


def register(pub, ctx: Context) -> None:
    """The evaluation's figures from one evaluation sample (of the pupils first enrolled in the
    report's districts, if given), kept in `ctx.state` for the subgroups section. The cross-check
    runs in the report's spawned process (`ctx.worker`) while the figures are computed."""
    year, districts, con = ctx.year, ctx.districts, ctx.con
    K, KD = scoped(year, districts)
    marker = subset_marker(districts)
    sample = build_sample(con, year, districts)
    ctx.state["sample"] = sample
    # the worker's cross-check runs while the figures below are computed; started after the
    # sample so that its memory does not add to the sample's peak (a city: under 3 GB in all)
    pending = ctx.worker.run(con, year, districts) if ctx.worker is not None else None
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
    # The report's count of enrolled pupils: a neighbour gives way before it does.
    pub.prefer_shown(K("enrolled", district=marker, year=ALL))

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
            c: ["n_treated", "n_comparison"]
            for c in (
                *("difference", "lo", "hi", "effect_size", "evalue", "evalue_ci"),
                *("n_schools", "pretrend_p", "robust_lo", "robust_hi", "breakdown"),
                *("verdict", "baseline"),  # words about the estimate: hidden with it
            )
        },
        # a district report's headline is the full report's subgroup row of the same pupils
        measures={
            c: ((lambda r, m=m: f"effekt.{m}:{r['outcome']}"), ["n_treated"])
            for c, m in (("difference", "estimate"), ("lo", "lo"), ("hi", "hi"))
        },
    )
    # what attendance was measured against: the pupils in the estimate, by level
    pub.table(
        "comparison_levels",
        ev.reference_levels(sample),
        counts={"n": KD("eval_reference", "level"), "n_total": lambda r: in_estimate("absence_rate")},
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
    ctx.state["pretrend"] = pretrend
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


def show(prot, ctx: Context) -> None:
    markdown(ev.text_design())
    steps = tables.with_bands(prot["attrition"], ["n"], by="outcome", order="step_no")
    table(ctx, "attrition", tables.attrition_table(steps), {"attrition": prot["attrition"]})
    groups = prot["attrition_by_group"]
    banded = tables.with_bands(groups, ["n", "n_eligible", "n_matched"])
    table(ctx, "attrition_by_group", tables.attrition_group_table(banded), {"attrition_by_group": groups})
    if tables.has_band(steps, banded):
        markdown(tables.BAND_NOTE)
    markdown(ev.text_left_out(prot["left_out"], ctx.min_cell))
    equivalence = prot["balance"]
    table(ctx, "balance", tables.balance_table(equivalence), {"balance": equivalence})
    chart(charts.love_plot(equivalence))
    curve = prot["effect_event_curve"]
    chart(charts.effect_event_curve(curve, ctx.min_cell), ctx, {"effect_event_curve": curve})
    effects = prot["effects"]
    table(ctx, "effects", tables.effects_table(effects), {"effects": effects})
    markdown(ev.text_headlines(effects, prot.row("pretrend")))
    markdown("Hur robust skattningarna är mot en okänd faktor som data inte visar (E-värden) beskrivs i Metodbilagan.")
