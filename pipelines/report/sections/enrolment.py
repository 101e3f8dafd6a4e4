"""2. Enrolled pupils: per district and year, against the city's documented numbers, and
the register's other programmes shown apart."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.analysis import followup as fu
from pipelines.analysis.figures import TOTAL, _total_or, scoped, subset_marker
from pipelines.report import charts, tables
from pipelines.report.sections.base import Context, chart, markdown, table
from pipelines.rules import reference

TITLE = "Inskrivna elever"
INTRO = (
    "Rapportens siffror gäller PPSS. Eleverna räknas en gång, det år och i den stadsdel där de skrevs in i PPSS "
    "första gången. Elever i andra program i socialtjänstens register (SkolFam) räknas inte som PPSS-elever; de "
    "redovisas för sig i tabellen nedan, och en elev som varit i båda programmen räknas i PPSS."
)


def register(pub, ctx: Context) -> None:
    K, KD = scoped(ctx.year, ctx.districts)
    marker = subset_marker(ctx.districts)
    enrolled = fu.enrolled_by_district(ctx.con, ctx.year, ctx.districts)
    pub.table(
        "enrolled",
        enrolled,
        counts={"n_pupils": lambda r: K("enrolled", district=_total_or(r["district"], marker), year=r["year"])},
        labels=["year"],
    )
    # The years' totals are the report's enrolment figures: when a count beside them must
    # give way (the city's own periods, a district's year), it is not a total that goes.
    for y in enrolled.filter(pl.col("district") == TOTAL)["year"].unique().to_list():
        pub.prefer_shown(K("enrolled", district=marker, year=y))
    apart = fu.programmes_apart(ctx.con, ctx.year, ctx.districts)  # other programmes: not PPSS, shown apart
    pub.table(
        "other_programmes",
        apart,
        counts={"n_pupils": KD("other_programme", "programme"), "n_also_ppss": KD("other_programme_ppss", "programme")},
    )
    # Only periods that end within the year: a report never shows what came after it.
    targets = fu.enrolled_vs_targets(ctx.con, ctx.districts).filter(pl.col("last_day") <= dt.date(ctx.year, 12, 31))
    pub.table("targets", targets, counts={"registered": KD("first_enrolled", "period")}, labels=["documented"])


def show(prot, ctx: Context) -> None:
    markdown(reference.targets_sentence(ctx.year))
    chart(charts.enrolled_by_district(prot["enrolled"], ctx.min_cell))
    table(ctx, "enrolled", tables.enrolled_table(prot["enrolled"]), {"enrolled": prot["enrolled"]})
    table(ctx, "targets", tables.targets_table(prot["targets"], ctx.districts), {"targets": prot["targets"]})
    apart = prot["other_programmes"]
    table(ctx, "other_programmes", tables.other_programmes_table(apart), {"other_programmes": apart})
