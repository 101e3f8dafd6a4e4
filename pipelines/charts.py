"""Altair charts for the follow-up, Swedish labels and number format.

Charts render as SVG through vl-convert: JupyterLab 4.6 does not render Altair 6's
Vega-Lite v6 output, and the default HTML renderer loads Vega from a CDN. SVG needs no
script at all, so reports open offline and print as they look. Every chart takes
protected frames from `pipelines.disclosure` (hidden figures are null and not drawn).
"""

from __future__ import annotations

import altair as alt
import polars as pl

from .estimands import WWC_ADJUSTABLE, WWC_EQUIVALENT
from .labels import DIRECTIONS, ENROLLED, GENDER_ORDER, MEASURES, OTHERS, TOTAL
from .suppress import fmt_num

GROUP_COLORS = alt.Scale(domain=[ENROLLED, OTHERS], range=["#c0392b", "#7f8c8d"])
PCT = ".0%"


def use_svg() -> None:
    """Render charts as SVG with Swedish number and date format (notebooks call this first)."""
    alt.renderers.enable("svg")
    alt.renderers.set_embed_options(format_locale="sv-SE", time_format_locale="sv-SE")


def hidden_note(min_cell: int) -> str:
    return f"Uppgifter som vilar på färre än {min_cell} elever, eller som skulle avslöja en sådan, visas inte."


def _shown(df: pl.DataFrame, column: str) -> pl.DataFrame:
    return df.filter(pl.col(column).is_not_null())


def _base(df: pl.DataFrame, title: str, subtitle: str | list[str] = "") -> alt.Chart:
    return alt.Chart(df, title=alt.Title(title, subtitle=subtitle, anchor="start"))


def enrolled_by_district(df: pl.DataFrame, min_cell: int) -> alt.Chart:
    data = _shown(df.filter(pl.col("district") != TOTAL), "n_pupils").with_columns(pl.col("year").cast(pl.String))
    return (
        _base(
            data,
            "Inskrivna elever per stadsdel och år",
            f"Första inskrivning. {hidden_note(min_cell)}",
        )
        .mark_bar()
        .encode(
            x=alt.X("district:N", title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset="year:N",
            y=alt.Y("n_pupils:Q", title="Antal elever"),
            color=alt.Color("year:N", title="År", scale=alt.Scale(scheme="tealblues")),
            tooltip=[
                alt.Tooltip("district:N", title="Stadsdel"),
                alt.Tooltip("year:N", title="År"),
                alt.Tooltip("n_pupils:Q", title="Elever"),
            ],
        )
        .properties(width=560, height=260)
    )


def vocabulary_heatmap(df: pl.DataFrame, title: str, min_cell: int) -> alt.Chart:
    data = _shown(df, "share")
    base = _base(data, title, ["Andel av stadsdelens inskrivna elever.", hidden_note(min_cell)])
    rect = base.mark_rect().encode(
        x=alt.X("term_value:N", title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("district:N", title=None),
        color=alt.Color(
            "share:Q", title="Andel", scale=alt.Scale(scheme="oranges", domain=[0, 1]), legend=alt.Legend(format=PCT)
        ),
    )
    text = base.mark_text(fontSize=10).encode(
        x="term_value:N",
        y="district:N",
        text=alt.Text("share:Q", format=PCT),
        color=alt.condition("datum.share > 0.6", alt.value("white"), alt.value("black")),
    )
    return (rect + text).properties(width=420, height=240)


def attendance_event_time(df: pl.DataFrame, min_cell: int) -> alt.Chart:
    data = _shown(df, "mean")
    base = _base(
        data,
        "Frånvaro före och efter inskrivning",
        [
            "Genomsnittlig andel frånvaro per månad, med 95 % konfidensintervall för inskrivna.",
            "Jämförelse: ej inskrivna elever i samma skola samma kalendermånad.",
            hidden_note(min_cell),
        ],
    )
    x = alt.X("event_month:Q", title="Månader från inskrivning", scale=alt.Scale(domain=[-6, 12]))
    color = alt.Color("pupil_group:N", title=None, scale=GROUP_COLORS, legend=alt.Legend(orient="bottom"))
    band = (
        base.transform_filter(alt.datum.pupil_group == ENROLLED)
        .mark_area(opacity=0.2, color="#c0392b")
        .encode(x=x, y=alt.Y("lo:Q", title="Andel frånvaro", axis=alt.Axis(format=PCT)), y2="hi:Q")
    )
    line = base.mark_line(point=True).encode(
        x=x,
        y=alt.Y("mean:Q"),
        color=color,
        strokeDash=alt.StrokeDash(
            "pupil_group:N", legend=None, scale=alt.Scale(domain=[ENROLLED, OTHERS], range=[[1, 0], [4, 3]])
        ),
        tooltip=[
            alt.Tooltip("event_month:Q", title="Månad"),
            alt.Tooltip("pupil_group:N", title="Grupp"),
            alt.Tooltip("mean:Q", title="Frånvaro", format=".1%"),
            alt.Tooltip("n:Q", title="Elever"),
        ],
    )
    rule = alt.Chart(pl.DataFrame({"x": [0]})).mark_rule(strokeDash=[2, 2], color="black").encode(x="x:Q")
    return (band + line + rule).properties(width=560, height=280)


def _pct_label(share: float) -> str:
    return f"{share * 100:.1f}".rstrip("0").rstrip(".").replace(".", ",") + " %"


def absence_thresholds(df: pl.DataFrame, threshold: float, min_cell: int) -> alt.Chart:
    """Shares at every computed threshold (`followup.absence_levels`), the report's own named."""
    levels = sorted(df["threshold"].unique().to_list())
    data = _shown(df, "share").with_columns(
        pl.col("threshold")
        .replace_strict({t: _pct_label(t) for t in levels}, return_dtype=pl.String)
        .alias("threshold_label")
    )
    base = alt.Chart(data)
    bars = base.mark_bar().encode(
        x=alt.X("pupil_group:N", title=None, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("share:Q", title="Andel elever", axis=alt.Axis(format=PCT)),
        color=alt.Color("pupil_group:N", title=None, scale=GROUP_COLORS, legend=alt.Legend(orient="bottom")),
    )
    errors = base.mark_errorbar(ticks=True).encode(x="pupil_group:N", y=alt.Y("lo:Q", title="Andel elever"), y2="hi:Q")
    return (
        (bars + errors)
        .properties(width=90, height=200)
        .facet(
            column=alt.Column("threshold_label:N", title="Frånvarogräns", sort=[_pct_label(t) for t in levels]),
            row=alt.Row("term_label:N", title=None),
        )
        .properties(
            title=alt.Title(
                "Elever med hög frånvaro",
                anchor="start",
                subtitle=[
                    f"Andel elever i åk 7–9 vars frånvaro når gränsen; {_pct_label(threshold)}"
                    " är rapportens huvudgräns.",
                    "Felstaplar: 95 % konfidensintervall.",
                    hidden_note(min_cell),
                ],
            )
        )
    )


def pass_change_individual(df: pl.DataFrame, min_cell: int) -> alt.Chart:
    data = _shown(df, "share")
    order = list(DIRECTIONS)
    return (
        _base(
            data,
            "Andel godkända ämnen från termin 1 till termin 2, per elev",
            [
                "Termin 1 är terminen då eleven skrevs in. Som i stadens uppföljning 2015.",
                hidden_note(min_cell),
            ],
        )
        .mark_bar()
        .encode(
            y=alt.Y("gender_label:N", title=None, sort=GENDER_ORDER),
            x=alt.X("share:Q", title="Andel elever", stack="normalize", axis=alt.Axis(format=PCT)),
            color=alt.Color(
                "direction:N",
                title="Andel godkända",
                sort=order,
                scale=alt.Scale(domain=order, range=["#c0392b", "#bdc3c7", "#27ae60"]),
            ),
            order=alt.Order("direction_order:Q"),
            tooltip=[
                alt.Tooltip("direction:N", title="Förändring"),
                alt.Tooltip("share:Q", title="Andel", format=".0%"),
                alt.Tooltip("k:Q", title="Elever"),
            ],
        )
        .transform_calculate(direction_order=f"indexof({order!r}, datum.direction)")
        .properties(width=480, height=120)
    )


def pass_change_group(df: pl.DataFrame, min_cell: int) -> alt.Chart:
    data = _shown(df, "change")
    base = _base(
        data,
        "Genomsnittlig förändring i andel godkända ämnen (gruppnivå)",
        [
            "Termin 2 minus termin 1, i procentenheter, med 95 % konfidensintervall.",
            hidden_note(min_cell),
        ],
    )
    y = alt.Y("gender_label:N", title=None, sort=GENDER_ORDER)
    points = base.mark_point(filled=True, size=80, color="#2c3e50").encode(
        y=y, x=alt.X("change:Q", title="Förändring (andel godkända ämnen)", axis=alt.Axis(format="+.0%"))
    )
    errors = base.mark_errorbar(ticks=True, color="#2c3e50").encode(
        y=y, x=alt.X("lo:Q", title="Förändring (andel godkända ämnen)"), x2="hi:Q"
    )
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="black", strokeDash=[2, 2]).encode(x="x:Q")
    return (errors + points + zero).properties(width=480, height=120)


def grade9_eligibility(df: pl.DataFrame, min_cell: int) -> alt.Chart:
    data = _shown(df, "share")
    base = alt.Chart(data)
    y = alt.Y("pupil_group:N", title=None, axis=alt.Axis(labels=False, ticks=False))
    points = base.mark_point(filled=True, size=70).encode(
        y=y,
        x=alt.X("share:Q", title="Andel behöriga", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=PCT)),
        color=alt.Color("pupil_group:N", title=None, scale=GROUP_COLORS, legend=alt.Legend(orient="bottom")),
        tooltip=[
            alt.Tooltip("measure:N", title="Mått"),
            alt.Tooltip("pupil_group:N", title="Grupp"),
            alt.Tooltip("share:Q", title="Andel", format=".0%"),
            alt.Tooltip("n:Q", title="Elever"),
        ],
    )
    errors = base.mark_errorbar(ticks=True).encode(
        y=y, x=alt.X("lo:Q", title="Andel behöriga"), x2="hi:Q", color=alt.Color("pupil_group:N", scale=GROUP_COLORS)
    )
    return (
        (errors + points)
        .properties(width=200, height=50)
        .facet(
            row=alt.Row(
                "measure:N",
                title=None,
                header=alt.Header(labelAngle=0, labelAlign="left"),
                sort=list(MEASURES.values()),
            ),
            column=alt.Column("gender_label:N", title=None, sort=GENDER_ORDER),
        )
        .properties(
            title=alt.Title(
                "Behörighet till gymnasiet efter årskurs 9",
                anchor="start",
                subtitle=[
                    "Inskrivna elever och övriga elever i samma skolor, med 95 % konfidensintervall.",
                    hidden_note(min_cell),
                ],
            )
        )
    )


def love_plot(bal: pl.DataFrame) -> alt.Chart:
    """Baseline differences before and after weighting, per outcome's analytic sample, with
    the WWC limits 0.05 and 0.25 (rows hidden by disclosure control are left out)."""
    index = "label" if "label" in bal.columns else "covariate"
    data = (
        bal.select(pl.col(index).alias("covariate"), "before", "after")
        .unpivot(index="covariate", on=["before", "after"], variable_name="when", value_name="d")
        .drop_nulls("d")
        .with_columns(pl.col("when").replace_strict({"before": "Före vägning", "after": "Efter vägning"}))
    )
    base = alt.Chart(
        data,
        title=alt.Title(
            "Skillnader före inskrivning (baslinjen)",
            anchor="start",
            subtitle=[
                "Hedges g för andelar av tid och ämnen, Cox index för ja/nej-mått. "
                f"Inom ±{fmt_num(WWC_EQUIVALENT, 2)}: likvärdiga grupper;",
                f"inom ±{fmt_num(WWC_ADJUSTABLE, 2)}: likvärdiga efter statistisk justering "
                "(What Works Clearinghouse).",
            ],
        ),
    )
    limits = (
        alt.Chart(pl.DataFrame({"x": [-WWC_ADJUSTABLE, -WWC_EQUIVALENT, WWC_EQUIVALENT, WWC_ADJUSTABLE]}))
        .mark_rule(strokeDash=[3, 3], color="#999")
        .encode(x="x:Q")
    )
    points = base.mark_point(filled=True, size=80).encode(
        x=alt.X("d:Q", title="Standardiserad skillnad (inskrivna minus jämförelse)"),
        y=alt.Y("covariate:N", title=None, axis=alt.Axis(labelLimit=320)),
        color=alt.Color(
            "when:N",
            title=None,
            scale=alt.Scale(domain=["Före vägning", "Efter vägning"], range=["#bdc3c7", "#2c3e50"]),
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=[alt.Tooltip("covariate:N", title="Mått"), alt.Tooltip("d:Q", title="Skillnad", format=".2f")],
    )
    return (limits + points).properties(width=480, height=140)


def effect_event_curve(df: pl.DataFrame, min_cell: int) -> alt.Chart:
    """The chart of `evaluation.event_curve`: the effect on absence per month from enrolment."""
    data = _shown(df, "att")
    base = _base(
        data,
        "Frånvaro: effekt jämfört med vägd jämförelsegrupp",
        [
            "Förändring i inskrivnas frånvaro minus förändring hos jämförelseeleverna, per månad från inskrivning,",
            "med 95 % konfidensintervall (klustrade på skola). Månad −14 till −9 är ett test:",
            "där ska skillnaden vara nära noll.",
            hidden_note(min_cell),
        ],
    )
    x = alt.X("event_month:Q", title="Månader från inskrivning", scale=alt.Scale(domain=[-14, 12]))
    band = base.mark_area(opacity=0.25, color="#c0392b").encode(
        x=x, y=alt.Y("lo:Q", title="Skillnad i andel frånvaro", axis=alt.Axis(format="+.0%")), y2="hi:Q"
    )
    line = base.mark_line(point=alt.OverlayMarkDef(color="#c0392b"), color="#c0392b").encode(
        x=x,
        y="att:Q",
        tooltip=[
            alt.Tooltip("event_month:Q", title="Månad"),
            alt.Tooltip("att:Q", title="Effekt", format="+.1%"),
            alt.Tooltip("n_treated:Q", title="Inskrivna"),
        ],
    )
    zero = alt.Chart(pl.DataFrame({"y": [0.0]})).mark_rule(color="black").encode(y="y:Q")
    start = alt.Chart(pl.DataFrame({"x": [0]})).mark_rule(strokeDash=[2, 2], color="black").encode(x="x:Q")
    return (band + line + zero + start).properties(width=560, height=260)
