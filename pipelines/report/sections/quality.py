"""1. Data and data quality: the files behind the report and the coverage of each source."""

from __future__ import annotations

from pipelines.analysis import followup as fu
from pipelines.analysis.disclosure import key
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
    # About files and rows, not pupils, but the register has a row for each of its pupils: its
    # loaded rows bound every count of them (its rows read too, being more).
    files, rules = fu.data_quality(ctx.con)
    figures = [c for c in files.columns if c not in ("kind", "rows_loaded") and not c.endswith("__members")]
    pub.table(
        "quality",
        files,
        counts={},
        bounds={"rows_loaded": lambda r: key("register_rows") if r["kind"] == "register" else None},
        rests_on={c: ["rows_loaded"] if c == "rows_read" else [] for c in figures},
        measures={"rows_read": None},
    )
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
