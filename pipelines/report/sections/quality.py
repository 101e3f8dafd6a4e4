"""1. Data and data quality: the files behind the report and the coverage of each source."""

from __future__ import annotations

from pipelines.analysis import followup as fu
from pipelines.analysis.figures import scoped, subset_marker
from pipelines.report import tables
from pipelines.report.sections.base import Context, table

TITLE = "Dataunderlag och datakvalitet"
INTRO = (
    "Varje indatafil valideras innan den laddas. Rader som bryter mot en regel sätts i karantän med fil, rad, "
    "kolumn och regel, så att inget försvinner i tysthet: för varje fil gäller att lästa rader = laddade + karantän "
    "+ rader som medvetet inte används (till exempel gymnasiebetyg)."
)


def register(pub, ctx: Context) -> None:
    K, KD = scoped(ctx.year, ctx.districts)
    files, rules = fu.data_quality(ctx.con)  # about files and rows, not pupils: shown as they are
    pub.table("quality", files, counts={})
    pub.table("quarantine_rules", rules, counts={})
    cov = fu.coverage(ctx.con, ctx.year, ctx.districts)
    marker = subset_marker(ctx.districts)
    pub.table("coverage", cov, counts={"k": KD("found_in", "source"), "n": lambda r: K("pupils", district=marker)})


def show(prot, ctx: Context) -> None:
    table(ctx, "quality", tables.quality_table(prot["quality"]), {"quality": prot["quality"]})
    table(
        ctx,
        "quarantine_rules",
        tables.rules_table(prot["quarantine_rules"]),
        {"quarantine_rules": prot["quarantine_rules"]},
    )
    table(ctx, "coverage", tables.coverage_table(prot["coverage"]), {"coverage": prot["coverage"]})
