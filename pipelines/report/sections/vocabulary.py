"""3. Selection reasons and interventions per district, as the social services register them."""

from __future__ import annotations

from pipelines.analysis import followup as fu
from pipelines.analysis.figures import scoped
from pipelines.report import charts
from pipelines.report.sections.base import Context, chart

TITLE = "Urvalsgrunder och insatser per stadsdel"
INTRO = (
    "Förstudien frågade om skolorna skiljer sig i hur de väljer ut elever och hur de arbetar. Figurerna visar "
    "andelen av stadsdelens inskrivna elever med varje urvalsgrund och insats enligt socialtjänstens register "
    "(en elev kan ha flera)."
)
COLUMNS = {"selection_reasons": "Urvalsgrunder per stadsdel", "interventions": "Insatser per stadsdel"}


def register(pub, ctx: Context) -> None:
    _, KD = scoped(ctx.year, ctx.districts)
    for column in COLUMNS:
        voc = fu.vocabulary_by_district(ctx.con, ctx.year, column, ctx.districts)
        pub.table(
            column,
            voc,
            counts={"n_pupils": KD(column, "district", "term_value"), "n_district": KD("district_pupils", "district")},
            rests_on={"share": ["n_pupils", "n_district"]},
        )


def show(prot, ctx: Context) -> None:
    for column, title in COLUMNS.items():
        chart(charts.vocabulary_heatmap(prot[column], title, ctx.min_cell), ctx, {column: prot[column]})
