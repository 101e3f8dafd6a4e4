"""5. Share of passed subjects, term by term: the before/after change of the enrolled pupils
(not an effect: no comparison pupils; section 7 compares)."""

from __future__ import annotations

from pipelines.analysis import followup as fu
from pipelines.analysis.figures import scoped
from pipelines.report import charts
from pipelines.report.sections.base import Context, chart, markdown

TITLE = "Andel godkända ämnen termin för termin"
INTRO = (
    "Som i stadens uppföljning hösten 2015 jämförs varje elevs andel godkända ämnen (A–E) terminen eleven skrevs "
    "in (termin 1) med terminen efter (termin 2), dels elev för elev, dels som gruppens genomsnitt. Det är en "
    "**förändring före och efter** för de inskrivna eleverna själva, utan jämförelseelever; avsnitt 7 skattar i "
    "stället **effekten**, förändringen jämfört med liknande elever som inte skrevs in. De två kan skilja sig åt."
)


def register(pub, ctx: Context) -> None:
    _, KD = scoped(ctx.year, ctx.districts)
    indiv, group = fu.pass_change(ctx.con, ctx.year, ctx.districts)
    n_fn = KD("pass_change_pupils", "gender_label")
    pub.table("pass_change_individual", indiv, counts={"k": KD("pass_change", "gender_label", "direction"), "n": n_fn})
    pub.table("pass_change_group", group, counts={"n": n_fn})


def show(prot, ctx: Context) -> None:
    indiv, group = prot["pass_change_individual"], prot["pass_change_group"]
    chart(charts.pass_change_individual(indiv, ctx.min_cell), ctx, {"pass_change_individual": indiv})
    chart(charts.pass_change_group(group, ctx.min_cell), ctx, {"pass_change_group": group})
    markdown(fu.text_pass_change(indiv, group))
