"""9. The city's autumn 2015 follow-up, recomputed from the store."""

from __future__ import annotations

from pipelines.analysis import evaluation as ev
from pipelines.analysis.figures import scoped
from pipelines.report import tables
from pipelines.report.sections.base import Context, table

TITLE = "Stadens uppföljning hösten 2015, återskapad"
INTRO = (
    "Uppföljningen 2015 jämförde elevernas andel godkända ämnen termin för termin och fann att fler elever "
    "förbättrade sig på individnivå än vad som syntes på gruppnivå, samt vissa förbättringar bland pojkar. Samma "
    "statistik beräknad ur databasen, för samma tre terminer:"
)


def register(pub, ctx: Context) -> None:
    _, KD = scoped(ctx.year, ctx.districts)
    individual, boys = ev.followup_2015(ctx.con, ctx.min_cell, ctx.districts)
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


def show(prot, ctx: Context) -> None:
    individual, boys = prot["followup_2015_individual"], prot["followup_2015_boys"]
    html = tables.followup_2015_tables(individual, boys)
    table(ctx, "followup_2015", html, {"followup_2015_individual": individual, "followup_2015_boys": boys})
