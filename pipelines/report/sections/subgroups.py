"""8. The pilot study's questions: the attendance effect by selection reason, intervention,
district and gender; and the machine-readable estimates (effects.csv)."""

from __future__ import annotations

from pipelines.analysis import evaluation as ev
from pipelines.analysis.figures import scoped
from pipelines.report import tables
from pipelines.report.sections.base import Context, table

TITLE = "Förstudiens frågor: urval, insatser, stadsdel och kön"
INTRO = (
    "Förstudien frågade om skolorna skiljer sig i hur de väljer ut elever och hur de arbetar. Tabellen visar "
    "effekten på frånvaro för varje urvalsgrund, insats, stadsdel och kön, där varje grupps inskrivna jämförs med "
    "sina egna jämförelseelever. **Analysen är utforskande**: en elev kan ha flera urvalsgrunder och insatser, "
    "stadsdelarna valde ut olika elever, och när många grupper prövas blir några skillnader stora av en slump "
    "(q-värdet justerar för det enligt Benjamini och Hochberg). Skillnader mellan grupperna visar därför inte vilket "
    "arbetssätt som fungerar bäst. q-värdet justeras över de grupper som prövas i just den här rapporten: en rapport "
    "om andra stadsdelar prövar andra grupper, så samma grupp kan där få ett annat q-värde, med samma effekt, "
    "intervall och p-värde."
)


def register(pub, ctx: Context) -> None:
    _, KD = scoped(ctx.year, ctx.districts)
    sub = ev.subgroups(ctx.state["sample"])
    # the p- and q-values are figures of the group's estimate: hidden with its count
    pub.table(
        "subgroups",
        sub,
        counts={"n": KD("subgroup", "dimension", "group")},
        rests_on={c: ["n"] for c in ("change", "lo", "hi", "p_value", "q_value", "n_schools", "verdict")},
        measures={
            c: ((lambda r, m=m: f"effekt.{m}:absence_rate"), ["n"])
            for c, m in (("change", "estimate"), ("lo", "lo"), ("hi", "hi"))
        }
        | {"q_value": None},  # adjusted over this report's groups: another report tests others
    )


def show(prot, ctx: Context) -> None:
    groups = prot["subgroups"]
    table(ctx, "subgroups", tables.groups_table(groups), {"subgroups": groups})
    if ctx.out_dir is not None:  # the published estimates, machine-readable (hidden numbers empty)
        ev.write_effects(ev.effects_frame(prot["effects"], groups), ctx.out_dir / "effects.csv")
