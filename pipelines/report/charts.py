"""Altair charts for the follow-up, Swedish labels and number format.

Two renderers, both offline (JupyterLab 4.6 does not render Altair 6's Vega-Lite v6
mimetype, and Altair's default HTML loads Vega from a CDN):

- `use_interactive()` for JupyterLab: `alt.JupyterChart` in offline mode, whose widget
  carries the Vega bundle that vl-convert-python ships (hover tooltips, selections).
- `use_report()` for the yearly report: each chart is a static SVG (drawn by vl-convert,
  it prints as it looks) plus its Vega-Lite spec; `pipelines.report.render` adds one Vega
  bundle to the page, which turns every spec into a live chart with tooltips on screen.

Every chart takes protected frames from `pipelines.analysis.disclosure` (hidden figures are null
and not drawn); its accessible name is its title. A chart with nothing to draw is a short
Swedish sentence, not an empty frame.

Hidden rows stay in a chart's data, with their figures null: no mark, tooltip or label is drawn
from a null, but a facet keeps its cell (Vega's facet grid places the cells it has one after
the other, so a cell left out moved every later point under the wrong header), an axis keeps
its category, and a line or band breaks at a hidden month instead of being drawn across it.
A chart says where a figure is hidden: at its place (`..` as in the tables, or the words,
with a tooltip), or in its subtitle (a line's break; the district chart, whose one facet
dimension leaves hidden years out: see `enrolled_by_district`).
"""

from __future__ import annotations

import html as html_mod
import itertools
import json
import re
import textwrap

import altair as alt
import polars as pl
from altair.utils.mimebundle import spec_to_mimebundle

from pipelines.analysis.disclosure import HIDDEN_SUFFIX
from pipelines.analysis.estimands import WWC_ADJUSTABLE, WWC_EQUIVALENT
from pipelines.analysis.suppress import fmt_num
from pipelines.labels import DIRECTIONS, ENROLLED, GENDER_ORDER, MEASURES, OTHERS, TOTAL

GROUP_COLORS = alt.Scale(domain=[ENROLLED, OTHERS], range=["#c0392b", "#7f8c8d"])
PCT = ".0%"
PCT1 = ".1%"
COUNT = ",d"  # whole numbers, thousands spaced in the Swedish locale
# A share axis from 0 to 100 %: five labels, so "80 %" and "100 %" never run together on a
# narrow chart (Vega's own tick choice did, with the wide Swedish "\u00a0%").
SHARE_TICKS = [0, 0.25, 0.5, 0.75, 1]
INTERVAL = "95 % konfidensintervall"
# Changes in percentage points (values multiplied by 100 before charting): a sign on gains,
# the minus sign on losses, none on zero.
PP_AXIS = {"format": ".0f", "labelExpr": "datum.value > 0 ? '+' + datum.label : datum.label"}


def format_locale() -> dict:
    """Swedish numbers: decimal comma, space as thousands separator and before %."""
    import vl_convert

    return {**vl_convert.get_format_locale("sv-SE"), "percent": "\u00a0%"}


def embed_locale() -> dict:
    """For `spec_to_mimebundle`, which reads vega-embed's own (camelCase) option names."""
    return {"formatLocale": format_locale(), "timeFormatLocale": "sv-SE"}


REPORT_RENDERER = "ppss_report"
SPEC_CLASS = "ppss-chart-spec"


def use_interactive() -> None:
    """JupyterLab: interactive charts (tooltips, selections) with no network."""

    # One call: `set_embed_options` afterwards would replace the options and drop offline=True.
    # SVG marks (hover targets a browser test can find); the Swedish locale as an object, which
    # the widget passes straight to vega-embed.
    alt.renderers.enable(
        "jupyter",
        offline=True,
        embed_options={
            "renderer": "svg",
            "actions": False,
            "formatLocale": format_locale(),
        },
    )


def use_svg() -> None:
    """Static SVG with Swedish number and date format (for places where no script runs)."""
    alt.renderers.enable("svg")
    alt.renderers.set_embed_options(format_locale=format_locale(), time_format_locale="sv-SE")


def chart_title(spec: dict) -> str:
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    if isinstance(title, list):
        title = " ".join(title)
    return str(title or spec.get("description") or "Diagram")


_STATIC_IDS = itertools.count(1)


def _own_ids(svg: str, prefix: str) -> str:
    """Ids of one static SVG made unique on the page. Vega names a legend's gradient and its
    clip paths alike in every drawing; the live chart's `url(#gradient_0)` then found the hidden
    static copy's gradient first, and Chromium draws no gradient from a hidden element."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m[1]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m[1]})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m[1]}"', svg)


def report_mimebundle(spec: dict, **_: object) -> dict:
    """A chart in the report: a figure whose accessible name is the chart's title, holding the
    static SVG (what prints, and what shows without scripts) and the spec the page's one Vega
    bundle draws interactively."""
    title = chart_title(spec)
    spec = {**spec, "description": title}
    svg = spec_to_mimebundle(spec, format="svg", mode="vega-lite", embed_options=embed_locale())["image/svg+xml"]
    svg = _own_ids(svg, f"ppss-static-{next(_STATIC_IDS)}")
    data = json.dumps(spec, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    label = html_mod.escape(title, quote=True)
    html = (
        f'<figure class="chart" role="group" aria-label="{label}">'
        f'<div class="chart-static" role="img" aria-label="{label}">{svg}</div>'
        f'<div class="chart-live" aria-hidden="true"></div>'
        f'<script type="application/json" class="{SPEC_CLASS}">{data}</script></figure>'
    )
    return {"text/html": html, "text/plain": f"Diagram: {title}"}


alt.renderers.register(REPORT_RENDERER, report_mimebundle)


def use_report() -> None:
    """The yearly report notebook: static SVG + spec per chart (see `report_mimebundle`)."""
    alt.renderers.enable(REPORT_RENDERER)


class NoData:
    """What a chart shows when nothing is left to draw (no data for the year, or all hidden)."""

    def __init__(self, title: str, reason: str) -> None:
        self.title, self.reason = title, reason

    def text(self) -> str:
        return f"{self.title}: {self.reason}"

    def _repr_html_(self) -> str:
        title, reason = html_mod.escape(self.title), html_mod.escape(self.reason)
        return f'<p class="chart-empty"><strong>{title}.</strong> {reason}</p>'

    def _repr_markdown_(self) -> str:
        return f"**{self.title}.** {self.reason}"

    def __repr__(self) -> str:
        return self.text()


def no_data(title: str, source: pl.DataFrame, min_cell: int) -> NoData:
    if source.height:
        return NoData(
            title,
            f"Alla uppgifter döljs av röjandekontrollen: de vilar på färre än {min_cell} elever "
            "eller skulle ge bort en sådan.",
        )
    return NoData(title, "Det finns inga uppgifter att visa för det här året.")


def _named(chart: alt.TopLevelMixin, title: str) -> alt.TopLevelMixin:
    """The chart's accessible name (Vega's aria-label on the drawing) is its title."""
    return chart.properties(description=title)


def _note(text: str) -> alt.Tooltip:
    """A fixed tooltip for a mark that is not a figure (a band, a reference line): hovering it
    says what it is instead of showing nothing or the first row's raw values."""
    return alt.Tooltip(value=text)  # type: ignore[call-arg]


def _interval(lo: str, hi: str, fmt: str) -> list[alt.Tooltip]:
    return [alt.Tooltip(lo, title=f"{INTERVAL}, från", format=fmt), alt.Tooltip(hi, title="till", format=fmt)]


def hidden_note(min_cell: int) -> str:
    return f"Uppgifter som vilar på färre än {min_cell} elever, eller som skulle avslöja en sådan, visas inte."


def _shown(df: pl.DataFrame, column: str) -> pl.DataFrame:
    return df.filter(pl.col(column).is_not_null())


HIDDEN = "döljs av röjandekontrollen"
HIDDEN_MARK = ".."  # what the tables show in a hidden cell
HIDDEN_FLAG = "is_hidden"
# Path marks (lines, bands) break at a null instead of joining the points either side of it;
# the point, bar and rule marks draw nothing for a null (Vega-Lite's default, stated here).
BREAK_AT_NULLS = "break-paths-filter-domains"


def _flag_hidden(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """`df` with `is_hidden`: disclosure control hid `column` in this row (its `__hidden` flag;
    a frame without flags counts a null as hidden)."""
    flag = f"{column}{HIDDEN_SUFFIX}"
    hidden = pl.col(flag).fill_null(False) if flag in df.columns else pl.col(column).is_null()
    return df.with_columns(hidden.alias(HIDDEN_FLAG))


def _every_cell(df: pl.DataFrame, *keys: str) -> pl.DataFrame:
    """A row (its figures null, not hidden) for every combination of the facet's categories
    that `df` lacks: Vega's facet grid fills its slots in order with the cells it has, so
    one cell missing moved every later cell, and its points, under the next header."""
    grid = df.select(keys[0]).unique()
    for key in keys[1:]:
        grid = grid.join(df.select(key).unique(), how="cross")
    missing = grid.join(df.select(keys).unique(), on=list(keys), how="anti", nulls_equal=True)
    out = pl.concat([df, missing], how="diagonal_relaxed")
    return out.with_columns(pl.col(HIDDEN_FLAG).fill_null(False)) if HIDDEN_FLAG in out.columns else out


def _valid(*columns: str) -> str:
    return " && ".join(f"isValid(datum[{c!r}])" for c in columns)


def _hidden_layer(
    base: alt.Chart,
    text: str,
    context: list[alt.Tooltip],
    figure: str = "Andel",
    align: str = "center",
    **encoding: object,
) -> alt.Chart:
    """Text at the place of each hidden figure; its tooltip names the figure and says it is
    hidden (it carries no value of it)."""
    return (
        base.transform_filter(f"datum.{HIDDEN_FLAG}")
        .transform_calculate(hidden_text=repr(text), hidden_note=repr(HIDDEN))
        .mark_text(fontSize=10, color="#555", align=align)
        .encode(
            text="hidden_text:N",
            tooltip=[*context, alt.Tooltip("hidden_note:N", title=figure)],
            **encoding,
        )
    )


def _break_line(df: pl.DataFrame) -> list[str]:
    """The subtitle line that says why a line breaks, in a chart with a hidden month."""
    if not df[HIDDEN_FLAG].any():
        return []
    return ["Där linjen bryts döljs månaden av röjandekontrollen."]


def _hidden_line(df: pl.DataFrame) -> list[str]:
    """The subtitle line that says what `..` is, in a chart that shows one."""
    if HIDDEN_FLAG not in df.columns or not df[HIDDEN_FLAG].any():
        return []
    return [f"”{HIDDEN_MARK}” betyder att uppgiften {HIDDEN}."]


def _wrapped(*texts: str, width: int = 90) -> list[str]:
    """Subtitle lines of at most `width` characters (Vega does not wrap a title)."""
    return [line for text in texts for line in textwrap.wrap(text, width)]


def _base(df: pl.DataFrame, title: str, subtitle: str | list[str] = "") -> alt.Chart:
    return alt.Chart(df, title=alt.Title(title, subtitle=subtitle, anchor="start"))


def enrolled_by_district(df: pl.DataFrame, min_cell: int) -> alt.Chart | NoData:
    title = "Inskrivna elever per stadsdel och år"
    source = df.filter(pl.col("district") != TOTAL)
    if _shown(source, "n_pupils").filter(pl.col("n_pupils") > 0).is_empty():
        return no_data(title, source.filter(pl.col("n_pupils").fill_null(1) > 0), min_cell)
    # A hidden year has no bar and no slot, a district hidden whole no cell: the subtitle names
    # them. (Kept in the data with a `..` layer, they made Vega-Lite warn on every page: each
    # cell's own year scale then has two data sources. One facet dimension: nothing moves.)
    flagged = _flag_hidden(source, "n_pupils").with_columns(pl.col("year").cast(pl.String))
    hidden = flagged.filter(pl.col(HIDDEN_FLAG)).group_by("district", maintain_order=True).agg("year")
    named = "; ".join(f"{d} {', '.join(sorted(years))}" for d, years in hidden.iter_rows())
    return _named(
        alt.Chart(_shown(flagged, "n_pupils"))
        .mark_bar()
        .encode(
            x=alt.X("year:N", title=None, axis=None),
            y=alt.Y("n_pupils:Q", title="Antal elever"),
            color=alt.Color(
                "year:N", title="År", scale=alt.Scale(scheme="tealblues"), legend=alt.Legend(orient="bottom")
            ),
            tooltip=[
                alt.Tooltip("district:N", title="Stadsdel"),
                alt.Tooltip("year:N", title="År"),
                alt.Tooltip("n_pupils:Q", title="Elever", format=COUNT),
            ],
        )
        # One cell per district, as wide as its own years: a district with one year has one
        # bar in the middle of its cell, not a bar in its year's slot beside an empty one.
        .properties(width=alt.Step(22), height=240, view=alt.ViewBackground(stroke=None))
        .facet(
            column=alt.Column(
                "district:N",
                title=None,
                header=alt.Header(labelOrient="bottom", labelAngle=-30, labelAlign="right", labelBaseline="top"),
            ),
            spacing=12,
        )
        .resolve_scale(x="independent")
        .properties(
            title=alt.Title(
                title,
                # wrapped: one long line made the printed chart as wide as the line, then scaled down
                subtitle=_wrapped(
                    f"Första inskrivning. {hidden_note(min_cell)}",
                    *([f"{HIDDEN.capitalize()}: {named}."] if named else []),
                ),
                anchor="start",
            )
        ),
        title,
    )


def vocabulary_heatmap(df: pl.DataFrame, title: str, min_cell: int) -> alt.Chart | NoData:
    if _shown(df, "share").is_empty():
        return no_data(title, df, min_cell)
    # Hidden cells stay (share null): `..` in the cell, as in the tables, and every district
    # and category keeps its row and column even when all of its cells are hidden.
    data = _flag_hidden(df, "share")
    base = _base(data, title, ["Andel av stadsdelens inskrivna elever.", hidden_note(min_cell), *_hidden_line(data)])
    shown = base.transform_filter(_valid("share"))
    # The number label covers most of its cell: it carries the cell's tooltip.
    tooltip = [
        alt.Tooltip("district:N", title="Stadsdel"),
        alt.Tooltip("term_value:N", title="Kategori"),
        alt.Tooltip("share:Q", title="Andel", format=PCT),
    ]
    rect = shown.mark_rect().encode(
        x=alt.X("term_value:N", title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("district:N", title=None),
        color=alt.Color(
            "share:Q",
            title="Andel",
            scale=alt.Scale(scheme="oranges", domain=[0, 1]),
            # below the cells, one length in every report (two districts' rows squeezed it)
            legend=alt.Legend(
                format=PCT, values=SHARE_TICKS, orient="bottom", direction="horizontal", gradientLength=200
            ),
        ),
        tooltip=tooltip,
    )
    text = shown.mark_text(fontSize=10).encode(
        x="term_value:N",
        y="district:N",
        text=alt.Text("share:Q", format=PCT),
        color=alt.condition("datum.share > 0.6", alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    hidden = _hidden_layer(base, HIDDEN_MARK, tooltip[:2], x="term_value:N", y="district:N")
    # Cells of one size in every report: a district report's few columns are not stretched to 420 px.
    return _named((rect + text + hidden).properties(width=alt.Step(52), height=alt.Step(30)), title)


def attendance_event_time(df: pl.DataFrame, min_cell: int) -> alt.Chart | NoData:
    title = "Frånvaro före och efter inskrivning"
    if _shown(df, "mean").is_empty():
        return no_data(title, df, min_cell)
    # Hidden months stay (null): the line and the band break there instead of joining the
    # months either side; points are drawn for shown months only.
    data = _flag_hidden(df, "mean").sort("pupil_group", "event_month")
    base = _base(
        data,
        title,
        [
            "Genomsnittlig andel frånvaro per månad, med 95 % konfidensintervall för inskrivna.",
            "Jämförelse: ej inskrivna elever i samma skola samma kalendermånad.",
            hidden_note(min_cell),
            *_break_line(data),
        ],
    )
    x = alt.X("event_month:Q", title="Månader från inskrivning", scale=alt.Scale(domain=[-6, 12]))
    # Colour and dash share one legend (a legend shown for one and hidden for the other made
    # Vega-Lite log 'Conflicting legend property "disable"' on every page).
    legend = alt.Legend(orient="bottom")
    color = alt.Color("pupil_group:N", title=None, scale=GROUP_COLORS, legend=legend)
    dash = alt.StrokeDash(
        "pupil_group:N", title=None, legend=legend, scale=alt.Scale(domain=[ENROLLED, OTHERS], range=[[1, 0], [4, 3]])
    )
    band = (
        base.transform_filter(alt.datum.pupil_group == ENROLLED)
        .mark_area(opacity=0.2, color="#c0392b", invalid=BREAK_AT_NULLS)
        .encode(
            x=x,
            y=alt.Y("lo:Q", title="Andel frånvaro", axis=alt.Axis(format=PCT)),
            y2="hi:Q",
            tooltip=_note(f"Skuggat: {INTERVAL} för inskrivna"),
        )
    )
    # Each month's figures are on its point. A line is one drawn path: Vega shows a line's tooltip
    # only with the pointer on a vertex, where the point lies on top, so the line has none.
    line = base.mark_line(invalid=BREAK_AT_NULLS).encode(x=x, y=alt.Y("mean:Q"), color=color, strokeDash=dash)
    points = (
        base.transform_filter(_valid("mean"))
        .mark_point(filled=True)
        .encode(
            x=x,
            y=alt.Y("mean:Q"),
            color=color,
            tooltip=[
                alt.Tooltip("event_month:Q", title="Månad"),
                alt.Tooltip("pupil_group:N", title="Grupp"),
                alt.Tooltip("mean:Q", title="Frånvaro", format=PCT1),
                *_interval("lo:Q", "hi:Q", PCT1),
                # both series rest on the enrolled pupils: the other pupils' value is their
                # schools' mean in each enrolled pupil's month (attendance_event_time.sql)
                alt.Tooltip("n:Q", title="Inskrivna elever bakom värdet", format=COUNT),
            ],
        )
    )
    rule = (
        alt.Chart(pl.DataFrame({"x": [0]}))
        .mark_rule(strokeDash=[2, 2], color="black")
        .encode(x="x:Q", tooltip=_note("Månad 0: inskrivning"))
    )
    return _named((band + line + points + rule).properties(width=560, height=280), title)


def _pct_label(share: float) -> str:
    return f"{share * 100:.1f}".rstrip("0").rstrip(".").replace(".", ",") + " %"


def absence_thresholds(df: pl.DataFrame, threshold: float, min_cell: int) -> alt.Chart | NoData:
    """Shares at every computed threshold (`followup.absence_levels`), the report's own named."""
    title = "Elever med hög frånvaro"
    if _shown(df, "share").is_empty():
        return no_data(title, df, min_cell)
    levels = sorted(df["threshold"].unique().to_list())
    # The report's own threshold is named in its column header, not only in the subtitle.
    names = {t: _pct_label(t) + (" (huvudgräns)" if abs(t - threshold) < 1e-9 else "") for t in levels}
    # Hidden rows stay (share null): every term and threshold keeps its facet cell.
    data = _every_cell(
        _flag_hidden(df, "share").with_columns(
            pl.col("threshold").replace_strict(names, return_dtype=pl.String).alias("threshold_label")
        ),
        "term_label",
        "threshold_label",
        "pupil_group",
    )
    # Terms in time order (VT 2016 before HT 2016), not alphabetical.
    terms = data.sort("term_index", nulls_last=True)["term_label"].unique(maintain_order=True).to_list()
    base = alt.Chart(data)
    context = [
        alt.Tooltip("term_label:N", title="Termin"),
        alt.Tooltip("threshold_label:N", title="Frånvarogräns"),
        alt.Tooltip("pupil_group:N", title="Grupp"),
    ]
    tooltip = [
        *context,
        alt.Tooltip("share:Q", title="Andel", format=PCT1),
        *_interval("lo:Q", "hi:Q", PCT1),
        alt.Tooltip("n:Q", title="Elever", format=COUNT),
    ]
    x = alt.X("pupil_group:N", title=None, axis=alt.Axis(labels=False, ticks=False))
    y_title = "Andel elever"
    bars = (
        base.transform_filter(_valid("share"))
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("share:Q", title=y_title, axis=alt.Axis(format=PCT)),
            color=alt.Color("pupil_group:N", title=None, scale=GROUP_COLORS, legend=alt.Legend(orient="bottom")),
            tooltip=tooltip,
        )
    )
    # Caps in the whiskers' colour (Vega-Lite draws caps in the default blue otherwise).
    errors = (
        base.transform_filter(_valid("lo", "hi"))
        .mark_errorbar(ticks=alt.MarkConfig(color="black"), color="black")
        .encode(x="pupil_group:N", y=alt.Y("lo:Q", title=y_title), y2="hi:Q", tooltip=tooltip)
    )
    # `..` at the foot of a hidden group's bar, as in the tables.
    hidden = _hidden_layer(base, HIDDEN_MARK, context, x="pupil_group:N", y=alt.value(170))
    return _named(
        (bars + errors + hidden)
        .properties(width=90, height=180)
        .facet(
            column=alt.Column(
                "threshold_label:N",
                title="Frånvarogräns",
                sort=[names[t] for t in levels],
            ),
            row=alt.Row("term_label:N", title=None, sort=terms),
        )
        .properties(
            title=alt.Title(
                title,
                anchor="start",
                subtitle=[
                    f"Andel elever i åk 7–9 vars frånvaro når gränsen; {_pct_label(threshold)}"
                    " är rapportens huvudgräns.",
                    "Felstaplar: 95 % konfidensintervall.",
                    hidden_note(min_cell),
                    *_hidden_line(data),
                ],
            )
        ),
        title,
    )


def _segments(df: pl.DataFrame, group: str, order: list[str], key: str) -> pl.DataFrame:
    """Where each shown share of a 100 % bar lies (`x0`, `x1`), and `x_gap` for the hidden ones.

    The shares of a group add up to one, so a shown share is placed after the shares before it
    when those are all shown, else before the shares after it when those are; the hidden ones
    leave their room empty. (Vega-Lite's normalised stack spread the shown shares over the
    hidden ones' room: a bar of 20 % was drawn across the whole row.) A shown share between two
    hidden ones has no known place and is not drawn; the table beside the chart gives it."""
    rank = {v: i for i, v in enumerate(order)}
    out = []
    for part in df.with_columns(pl.col(key).replace_strict(rank, return_dtype=pl.Int64).alias("_rank")).partition_by(
        group, maintain_order=True
    ):
        part = part.sort("_rank")
        shares = part["share"].to_list()
        hidden = part[HIDDEN_FLAG].to_list()
        n = len(shares)
        x0: list[float | None] = []
        for i in range(n):
            if hidden[i]:
                x0.append(None)
            elif not any(hidden[:i]):
                x0.append(sum(shares[:i]))
            elif not any(hidden[i + 1 :]):
                x0.append(1 - sum(shares[i:]))
            else:
                x0.append(None)
        # the hidden room: from the end of the shown shares on the left to the start of those on the right
        left = next((i for i in range(n) if hidden[i]), n)
        right = next((i for i in reversed(range(n)) if hidden[i]), -1)
        gap = (sum(shares[:left]) + 1 - sum(shares[right + 1 :])) / 2 if left < n else None
        out.append(
            part.with_columns(
                pl.Series("x0", x0, dtype=pl.Float64),
                pl.Series("x_gap", [gap if h else None for h in hidden], dtype=pl.Float64),
            )
        )
    return pl.concat(out).with_columns((pl.col("x0") + pl.col("share")).alias("x1")).drop("_rank")


def pass_change_individual(df: pl.DataFrame, min_cell: int) -> alt.Chart | NoData:
    title = "Andel godkända ämnen från termin 1 till termin 2, per elev"
    if _shown(df, "share").is_empty():
        return no_data(title, df, min_cell)
    order = list(DIRECTIONS)
    data = _segments(_flag_hidden(df, "share"), "gender_label", order, "direction")
    base = _base(
        data,
        title,
        [
            "Termin 1 är terminen då eleven skrevs in. Som i stadens uppföljning 2015.",
            hidden_note(min_cell),
            *_hidden_line(data),
        ],
    )
    y = alt.Y("gender_label:N", title=None, sort=GENDER_ORDER)
    context = [alt.Tooltip("direction:N", title="Förändring"), alt.Tooltip("gender_label:N", title="Grupp")]
    bars = (
        base.transform_filter(_valid("x0", "x1"))
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(
                "x0:Q",
                title="Andel elever",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=PCT, values=SHARE_TICKS),
            ),
            x2="x1:Q",
            color=alt.Color(
                "direction:N",
                title="Andel godkända",
                sort=order,
                scale=alt.Scale(domain=order, range=["#c0392b", "#bdc3c7", "#27ae60"]),
            ),
            tooltip=[
                *context,
                alt.Tooltip("share:Q", title="Andel", format=PCT),
                alt.Tooltip("k:Q", title="Elever", format=COUNT),
            ],
        )
    )
    hidden = _hidden_layer(base, HIDDEN_MARK, context, y=y, x=alt.X("x_gap:Q", title="Andel elever"))
    return _named((bars + hidden).properties(width=480, height=120), title)


def pass_change_group(df: pl.DataFrame, min_cell: int) -> alt.Chart | NoData:
    title = "Genomsnittlig förändring i andel godkända ämnen (gruppnivå)"
    if _shown(df, "change").is_empty():
        return no_data(title, df, min_cell)
    # A hidden group keeps its row, where the words say it is hidden.
    data = _flag_hidden(df, "change").with_columns((pl.col(c) * 100).alias(f"{c}_pp") for c in ("change", "lo", "hi"))
    base = _base(
        data,
        title,
        [
            "Termin 2 minus termin 1, i procentenheter, med 95 % konfidensintervall.",
            hidden_note(min_cell),
        ],
    )
    y = alt.Y("gender_label:N", title=None, sort=GENDER_ORDER)
    x_title = "Förändring i andel godkända ämnen (procentenheter)"
    tooltip = [
        alt.Tooltip("gender_label:N", title="Grupp"),
        alt.Tooltip("change_pp:Q", title="Förändring (procentenheter)", format="+.1f"),
        *_interval("lo_pp:Q", "hi_pp:Q", "+.1f"),
    ]
    points = (
        base.transform_filter(_valid("change_pp"))
        .mark_point(filled=True, size=80, color="#2c3e50")
        .encode(y=y, x=alt.X("change_pp:Q", title=x_title, axis=alt.Axis(**PP_AXIS)), tooltip=tooltip)
    )
    errors = (
        base.transform_filter(_valid("lo_pp", "hi_pp"))
        .mark_errorbar(ticks=alt.MarkConfig(color="#2c3e50"), color="#2c3e50")
        .encode(y=y, x=alt.X("lo_pp:Q", title=x_title), x2="hi_pp:Q", tooltip=tooltip)
    )
    hidden = _hidden_layer(base, HIDDEN, tooltip[:1], figure="Förändring", align="left", y=y, x=alt.value(4))
    zero = (
        alt.Chart(pl.DataFrame({"x": [0.0]}))
        .mark_rule(color="black", strokeDash=[2, 2])
        .encode(x="x:Q", tooltip=_note("Noll: ingen förändring"))
    )
    return _named((errors + points + hidden + zero).properties(width=480, height=120), title)


def grade9_eligibility(df: pl.DataFrame, min_cell: int) -> alt.Chart | NoData:
    title = "Behörighet till gymnasiet efter årskurs 9"
    if _shown(df, "share").is_empty():
        return no_data(title, df, min_cell)
    # Hidden rows stay (share null): every measure and gender keeps its facet cell.
    data = _every_cell(_flag_hidden(df, "share"), "measure", "gender_label")
    base = alt.Chart(data)
    y = alt.Y("pupil_group:N", title=None, axis=alt.Axis(labels=False, ticks=False))
    context = [
        alt.Tooltip("measure:N", title="Mått"),
        alt.Tooltip("gender_label:N", title="Kön"),
        alt.Tooltip("pupil_group:N", title="Grupp"),
    ]
    tooltip = [
        *context,
        alt.Tooltip("share:Q", title="Andel", format=PCT1),
        *_interval("lo:Q", "hi:Q", PCT1),
        alt.Tooltip("n:Q", title="Elever", format=COUNT),
    ]
    color = alt.Color("pupil_group:N", title=None, scale=GROUP_COLORS, legend=alt.Legend(orient="bottom"))
    x = alt.X(
        "share:Q",
        title="Andel behöriga",
        scale=alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format=PCT, values=SHARE_TICKS),
    )
    points = (
        base.transform_filter(_valid("share"))
        .mark_point(filled=True, size=70)
        .encode(y=y, x=x, color=color, tooltip=tooltip)
    )
    errors = (
        base.transform_filter(_valid("lo", "hi"))
        .mark_errorbar(ticks=True)
        .encode(y=y, x=alt.X("lo:Q", title="Andel behöriga"), x2="hi:Q", color=color, tooltip=tooltip)
    )
    # The words in the hidden group's own row of its cell, from the left edge.
    hidden = _hidden_layer(base, HIDDEN, context, align="left", y=y, x=alt.value(4))
    return _named(
        (errors + points + hidden)
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
                title,
                anchor="start",
                subtitle=[
                    "Inskrivna elever och övriga elever i samma skolor, med 95 % konfidensintervall.",
                    hidden_note(min_cell),
                ],
            )
        ),
        title,
    )


def love_plot(bal: pl.DataFrame) -> alt.Chart | NoData:
    """Baseline differences before and after weighting, per outcome's analytic sample, with
    the WWC limits 0.05 and 0.25 (rows hidden by disclosure control are left out)."""
    index = "label" if "label" in bal.columns else "covariate"
    data = (
        bal.select(pl.col(index).alias("covariate"), "before", "after")
        .unpivot(index="covariate", on=["before", "after"], variable_name="when", value_name="d")
        .drop_nulls("d")
        .with_columns(pl.col("when").replace_strict({"before": "Före vägning", "after": "Efter vägning"}))
    )
    title = "Skillnader före inskrivning (baslinjen)"
    if data.is_empty():
        return no_data(title, bal, 0) if bal.is_empty() else NoData(title, "Skillnaderna döljs av röjandekontrollen.")
    base = alt.Chart(
        data,
        title=alt.Title(
            title,
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
        alt.Chart(
            pl.DataFrame(
                {
                    "x": [-WWC_ADJUSTABLE, -WWC_EQUIVALENT, WWC_EQUIVALENT, WWC_ADJUSTABLE],
                    "note": [
                        f"Gräns ±{fmt_num(WWC_ADJUSTABLE, 2)}: likvärdiga efter statistisk justering",
                        f"Gräns ±{fmt_num(WWC_EQUIVALENT, 2)}: likvärdiga grupper",
                    ]
                    * 2,
                }
            )
        )
        .mark_rule(strokeDash=[3, 3], color="#999")
        .encode(x="x:Q", tooltip=alt.Tooltip("note:N", title="Gräns"))
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
        tooltip=[
            alt.Tooltip("covariate:N", title="Mått"),
            alt.Tooltip("when:N", title="När"),
            alt.Tooltip("d:Q", title="Skillnad", format="+.2f"),
        ],
    )
    return _named((limits + points).properties(width=480, height=140), title)


def effect_event_curve(df: pl.DataFrame, min_cell: int) -> alt.Chart | NoData:
    """The chart of `evaluation.event_curve`: the effect on absence per month from enrolment."""
    title = "Frånvaro: effekt jämfört med vägd jämförelsegrupp"
    if _shown(df, "att").is_empty():
        return no_data(title, df, min_cell)
    # Hidden months stay (null): the line and the band break there (see attendance_event_time).
    data = (
        _flag_hidden(df, "att")
        .sort("event_month")
        .with_columns((pl.col(c) * 100).alias(f"{c}_pp") for c in ("att", "lo", "hi"))
    )
    base = _base(
        data,
        title,
        [
            "Förändring i inskrivnas frånvaro minus förändring hos jämförelseeleverna, per månad från inskrivning,",
            "med 95 % konfidensintervall (klustrade på skola). Månad −14 till −9 är ett test:",
            "där ska skillnaden vara nära noll.",
            hidden_note(min_cell),
            *_break_line(data),
        ],
    )
    x = alt.X("event_month:Q", title="Månader från inskrivning", scale=alt.Scale(domain=[-14, 12]))
    band = base.mark_area(opacity=0.25, color="#c0392b", invalid=BREAK_AT_NULLS).encode(
        x=x,
        y=alt.Y("lo_pp:Q", title="Skillnad i frånvaro (procentenheter)", axis=alt.Axis(**PP_AXIS)),
        y2="hi_pp:Q",
        tooltip=_note(f"Skuggat: {INTERVAL}"),
    )
    line = base.mark_line(color="#c0392b", invalid=BREAK_AT_NULLS).encode(x=x, y="att_pp:Q")  # tooltips on the points
    points = (
        base.transform_filter(_valid("att_pp"))
        .mark_point(filled=True, color="#c0392b")
        .encode(
            x=x,
            y="att_pp:Q",
            tooltip=[
                alt.Tooltip("event_month:Q", title="Månad"),
                alt.Tooltip("att_pp:Q", title="Effekt (procentenheter)", format="+.1f"),
                *_interval("lo_pp:Q", "hi_pp:Q", "+.1f"),
                alt.Tooltip("n_treated:Q", title="Inskrivna", format=COUNT),
            ],
        )
    )
    zero = (
        alt.Chart(pl.DataFrame({"y": [0.0]}))
        .mark_rule(color="black")
        .encode(y="y:Q", tooltip=_note("Noll: ingen skillnad"))
    )
    start = (
        alt.Chart(pl.DataFrame({"x": [0]}))
        .mark_rule(strokeDash=[2, 2], color="black")
        .encode(x="x:Q", tooltip=_note("Månad 0: inskrivning"))
    )
    return _named((band + line + points + zero + start).properties(width=560, height=260), title)
