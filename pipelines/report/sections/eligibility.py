"""6. Eligibility for gymnasiet after årskurs 9, beside Stockholm and the country."""

from __future__ import annotations

from pipelines.analysis import followup as fu
from pipelines.analysis.figures import scoped
from pipelines.labels import MEASURES, THIS_FOLLOWUP
from pipelines.report import charts, tables
from pipelines.report.sections.base import Context, chart, markdown, table

TITLE = "Behörighet efter årskurs 9"
INTRO = (
    "Behörighet räknas enligt gymnasieförordningen: godkänt i svenska eller svenska som andraspråk, engelska och "
    "matematik samt i minst fem andra ämnen (yrkesprogram) eller nio andra ämnen (högskoleförberedande program, "
    "med krav på vissa ämnen för EK, HU, SA respektive NA, TE). Jämförelsegruppen är övriga elever i årskurs 9 i "
    "de skolor där programmet har haft elever."
)
CONTEXT = (
    "### Jämfört med Stockholm och riket\n\n"
    "Skolverkets officiella statistik för elever som lämnade årskurs 9 samma vår, eller närmaste år som finns "
    "publicerat, högst ett år ifrån (året anges). Programmets elever valdes ut för att de hade det svårt i "
    "skolan, så skillnaden mot staden och riket beskriver utgångsläget lika mycket som programmet."
)


def register(pub, ctx: Context) -> None:
    K, KD = scoped(ctx.year, ctx.districts)
    elig = fu.grade9_eligibility(ctx.con, ctx.year, ctx.districts)
    pub.table(
        "grade9_eligibility",
        elig,
        counts={
            "n": KD("grade9_pupils", "pupil_group", "gender_label"),
            "k": KD("eligible", "measure", "pupil_group", "gender_label"),
        },
    )
    own = lambda fn: lambda r: fn(r) if r["source"] == THIS_FOLLOWUP else None  # noqa: E731
    pub.table(
        "context",
        fu.context_comparison(ctx.con, ctx.year, ctx.districts),
        counts={
            "n": own(lambda r: K("grade9_pupils", pupil_group=r["label"], gender_label=fu.ALL)),
            "k_vocational": own(
                lambda r: K(
                    "eligible", measure=MEASURES["eligible_vocational"], pupil_group=r["label"], gender_label=fu.ALL
                )
            ),
            "k_all_passed": own(lambda r: K("all_passed", pupil_group=r["label"])),
        },
        rests_on={
            "share_eligible_vocational": ["n", "k_vocational"],
            "share_all_subjects_passed": ["n", "k_all_passed"],
            "mean_merit_value_17": ["n"],
        },
        labels=["spring_year"],
    )


def show(prot, ctx: Context) -> None:
    eligibility = prot["grade9_eligibility"]
    chart(charts.grade9_eligibility(eligibility, ctx.min_cell))
    table(ctx, "grade9_eligibility", tables.eligibility_table(eligibility), {"grade9_eligibility": eligibility})
    markdown(CONTEXT)
    table(ctx, "context", tables.context_table(prot["context"]), {"context": prot["context"]})
