"""10-11 and the appendix: how to read the results, the methods (design, cross-check,
disclosure control) and the data's provenance with checksums."""

from __future__ import annotations

from pipelines.analysis import crosscheck
from pipelines.analysis import evaluation as ev
from pipelines.report import provenance
from pipelines.report.sections.base import Context, markdown
from pipelines.report.sections.evaluation import SENSITIVITY

TITLE = "Så ska resultaten läsas"
INTRO = """\
- Eleverna skrevs in för att de hade hög frånvaro, låga resultat eller sociala problem. Jämförelsen med övriga elever \
i samma skolor visar hur stor skillnaden är, inte vad programmet har åstadkommit.
- Förändringar före och efter inskrivning kan bero på återgång mot medelvärdet: elever skrivs in när problemen är som \
störst.
- Konfidensintervallen (95 %) visar slumpens betydelse för så här många elever; de tar inte hänsyn till att eleverna \
valts ut.
- Uppgifter om elever med skyddad identitet ingår bara i summor.
- Definitioner: meritvärde och behörighet enligt Skolverket; terminer HT = 1 juli–31 december och VT = 1 januari–30 \
juni; frånvaro som sträcker sig över en terminsgräns delas efter antal skoldagar."""


def register(pub, ctx: Context) -> None:
    """Nothing of its own: the appendix describes the other sections' figures."""


def show(prot, ctx: Context) -> None:
    n = len([m for m in _numbered()]) + 1
    markdown(f"## {n}. Metodbilaga")
    markdown(ev.text_methods(prot["effects"], prot["comparison_levels"]))
    markdown(crosscheck.text_crosscheck(prot.row("crosscheck"), prot.row("effects")))
    markdown(SENSITIVITY)
    markdown(ev.text_sensitivity(prot["effects"]))
    markdown(prot.methods_text())
    markdown("## Bilaga: dataunderlag och kontrollsummor")
    markdown(provenance.provenance(ctx.con))


def _numbered() -> list:
    from pipelines.report.sections import SECTIONS

    return [m for m in SECTIONS.values() if getattr(m, "NUMBERED", True)]
