"""The first page: title, what the year covers, a summary (Sammanfattning) of the year's
findings, each with its uncertainty and verdict, written from protected figures only, and
the table of contents."""

from __future__ import annotations

import polars as pl

from pipelines.analysis import evaluation as ev
from pipelines.analysis import followup as fu
from pipelines.labels import ALL, ENROLLED, MEASURES
from pipelines.report import provenance
from pipelines.report.sections.base import Context, markdown

TITLE = ""  # the title block and summary write their own headings
NUMBERED = False


def register(pub, ctx: Context) -> None:
    """Nothing of its own: every number here is another section's protected figure."""


def findings(prot, ctx: Context) -> list[str]:
    """One line per finding, from protected frames (a hidden figure says so)."""
    lines = []
    enrolled = prot["attrition"].filter(pl.col("step_no") == 0)
    if enrolled.height and enrolled["n"][0] is not None:
        lines.append(f"**{enrolled['n'][0]} elever** hade skrivits in i PPSS till och med {ctx.year}.")
    effects = prot["effects"]
    pretrend = prot.row("pretrend")
    for r in effects.iter_rows(named=True):  # the sentence names its measure once, as the line's lead
        lead = f"**{r['measure']}**, effekt jämfört med liknande elever"
        lines.append(ev.text_effect(r | {"measure": lead}, pretrend.get("p_value")))
    elig = prot["grade9_eligibility"].filter(
        (pl.col("measure") == MEASURES["eligible_vocational"]) & (pl.col("gender_label") == ALL)
    )
    enrolled_row = elig.filter(pl.col("pupil_group") == ENROLLED)
    if enrolled_row.height:
        r = enrolled_row.row(0, named=True)
        lead = f"**Behöriga till yrkesprogram** efter årskurs 9 våren {ctx.year}, bland de inskrivna: "
        if r["share"] is None:
            lines.append(lead + "andelen döljs av röjandekontrollen.")
        else:
            lines.append(
                lead + fu.describe_share(r["share"], r["lo"], r["hi"], r["n"]) + " (en beskrivning, ingen effekt)."
            )
    return lines


def toc() -> str:
    from pipelines.report.sections import SECTIONS
    from pipelines.report.sections.base import heading

    items = []
    for module in SECTIONS.values():
        if module is not SECTIONS["summary"]:
            text = heading(module).lstrip("# ")
            items.append(f"- [{text}](#{text.replace(' ', '-')})")
    numbered = len([m for m in SECTIONS.values() if getattr(m, "NUMBERED", True)])
    for text in (f"{numbered + 1}. Metodbilaga", "Bilaga: dataunderlag och kontrollsummor"):
        items.append(f"- [{text}](#{text.replace(' ', '-')})")
    return "**Innehåll**\n\n" + "\n".join(items)


def show(prot, ctx: Context) -> None:
    info = fu.store_info(ctx.con)
    coverage = provenance.store_coverage(ctx.con)
    markdown(fu.title_block(ctx.year, info, ctx.min_cell, ctx.districts, provenance.absence_terms(coverage, ctx.year)))
    if banner := provenance.banner(coverage, ctx.year):
        markdown(banner)
    markdown("## Sammanfattning\n\n" + "\n".join(f"- {line}" for line in findings(prot, ctx)))
    markdown(toc())
