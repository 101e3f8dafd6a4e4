"""The evaluation's sentences, written from protected numbers only (never from raw
estimates), and the design and methods appendix filled from the constants they state and,
where given, from what this report's tests showed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines import labels as lb
from pipelines.analysis import estimands as est
from pipelines.analysis import evidence as evd
from pipelines.analysis.estimator import CLAIM_LIMIT, SHORT_LABELS, Estimate, estimates_frame
from pipelines.analysis.followup import describe_interval
from pipelines.analysis.inference import MIN_SCHOOLS
from pipelines.analysis.suppress import fmt_num, fmt_pct


def _pp(v: float) -> str:
    return fmt_num(100 * v, 1)


def text_effect(row: dict, pretrend_p: float | None = None) -> str:
    """The sentence of one headline row, following its verdict (evidence.py): an effect is
    stated only where no test of trends before enrolment failed and the robust interval
    excludes zero too; a hidden estimate is too small to report. `pretrend_p` stands in for
    a row without its own (older frames)."""
    label = row["measure"]
    if row.get("difference") is None or row.get("n_treated") is None:
        return (
            f"{label}: skattningen döljs av röjandekontrollen (för få elever, eller för att den skulle ge "
            "bort en annan dold uppgift)."
        )
    who = f"Skattningen gäller {row['n_treated']} inskrivna elever"
    if row.get("n_eligible"):
        who += (
            f" av de {row['n_eligible']} med uppgifter före och under uppföljningstiden "
            f"({fmt_pct(row['n_treated'] / row['n_eligible'])})"
        )
    who += ", jämförda med liknande elever som ännu inte skrivits in."
    if row.get("lo") is None:
        return (
            f"{label}: grupperna skilde sig för mycket redan före inskrivningen "
            f"(mer än {fmt_num(CLAIM_LIMIT, 2)} standardavvikelser), så ingen effekt kan anges. {who}"
        )
    p = row.get("pretrend_p", pretrend_p)
    verdict = row.get("verdict") or evd.judge(
        row["difference"],
        row["lo"],
        row["hi"],
        claimable=True,
        n_schools=row.get("n_schools") or MIN_SCHOOLS,
        pretrend_p=float("nan") if p is None else p,
        robust_lo=float("nan"),
        robust_hi=float("nan"),
    )
    interval = f"95 % konfidensintervall {_pp(row['lo'])} till {_pp(row['hi'])}"
    numbers = f"{_pp(row['difference'])} procentenheter ({interval})"
    if verdict == evd.FEW_SCHOOLS:
        return (
            f"{label}: {numbers}. De inskrivna eleverna kommer från {row['n_schools']} skolor, färre än "
            f"{MIN_SCHOOLS}; med så få skolor är intervallet inte tillförlitligt och ingen slutsats dras. {who}"
        )
    if verdict == evd.TREND:
        if p is not None and np.isfinite(p) and p < evd.ALPHA:
            why = (
                "de inskrivna skilde sig från jämförelseeleverna redan före inskrivningen, i hur "
                f"{'frånvaron' if row['outcome'] == 'absence_rate' else 'frånvaron eller betygen'} utvecklades "
                f"(test av tiden före inskrivningen: p = {fmt_num(p, 2)})"
            )
        elif row.get("robust_lo") is not None and row["robust_lo"] <= 0 <= row["robust_hi"]:
            why = (
                "om utvecklingen före inskrivningen fortsatte lika starkt efteråt omfattar intervallet noll "
                f"({_pp(row['robust_lo'])} till {_pp(row['robust_hi'])} procentenheter)"
            )
        else:  # a grade outcome held to its pupils' attendance (evaluation.headline)
            why = (
                "samma elevers frånvaro utvecklades före inskrivningen på ett sätt som designen inte kan skilja "
                "från programmet, och en sådan utveckling kan ligga bakom betygen också"
            )
        covers = row["lo"] <= 0 <= row["hi"]
        chance = (
            ": intervallet omfattar noll, så data visar ingen säker förändring. Dessutom kan designen"
            if covers
            else ". Designen kan"
        )
        return (
            f"{label}: {numbers}{chance} inte skilja programmet från en trend som fanns före "
            f"inskrivningen: {why}. Ingen effekt anges. {who}"
        )
    text = f"{label}: {describe_interval(row['difference'], row['lo'], row['hi'])} {who}"
    if verdict == evd.EFFECT and row.get("robust_lo") is not None:
        text += (
            " Även om utvecklingen före inskrivningen fortsatte lika starkt efteråt ligger intervallet på samma "
            f"sida om noll ({_pp(row['robust_lo'])} till {_pp(row['robust_hi'])} procentenheter)."
        )
    return text


def text_estimate(e: Estimate, pretrend_p: float | None = None) -> str:
    """The sentence for an estimate outside a report (tests, the methods harness)."""
    return text_effect(estimates_frame({e.outcome: e}).row(0, named=True), pretrend_p)


def text_headlines(effects: pl.DataFrame, pretrend: dict | None) -> str:
    """Every headline sentence; each row carries its own pre-trend test (`pretrend`, the
    attendance test, is read only by a frame without one)."""
    p = pretrend.get("p_value") if pretrend else None
    return "\n\n".join(
        f"- {text_effect(r, p if r['outcome'] == 'absence_rate' else None)}" for r in effects.iter_rows(named=True)
    )


def text_left_out(left: pl.DataFrame, min_cell: int) -> str:
    """Whom the estimates leave out, from the protected left-out frame."""
    parts = []
    for r in left.iter_rows(named=True):
        label = r["measure"]
        if r["n"] == 0:
            parts.append(f"{label}: alla inskrivna med uppgifter ingår.")
        elif r["n"] is None or r["absence"] is None:
            parts.append(f"{label}: antalet döljs (röjandekontroll).")
        else:
            parts.append(
                f"{label}: {r['n']} inskrivna saknade jämförbara elever; de hade i genomsnitt "
                f"{fmt_pct(r['absence'])} frånvaro och {fmt_pct(r['share_passed'])} godkända ämnen före inskrivningen."
            )
    return "**Elever som inte ingår i skattningarna.** " + " ".join(parts)


def text_sensitivity(effects: pl.DataFrame) -> str:
    lines = []
    for r in effects.iter_rows(named=True):
        if r["evalue"] is None or r["difference"] is None:
            continue
        if r["evalue_ci"] is None or r["evalue_ci"] <= 1.0:
            lines.append(
                f"- {r['measure']}: intervallet omfattar redan ingen effekt, så det behövs ingen okänd "
                "faktor för att förklara bort resultatet."
            )
        else:
            lines.append(
                f"- {r['measure']}: en okänd faktor som förklarar bort skattningen måste göra inskrivning och utfall "
                f"{fmt_num(r['evalue'])} gånger så sannolika (E-värde); för att flytta intervallet till noll räcker "
                f"{fmt_num(r['evalue_ci'])} gånger."
            )
    return "\n".join(lines) or "- Ingen skattning att pröva."


# --- the design in words, filled from the constants it states ------------------------------
NUMBER_WORDS = {1: "en", 2: "två", 3: "tre", 4: "fyra", 5: "fem", 6: "sex", 7: "sju", 8: "åtta", 9: "nio", 10: "tio"}


def _word(n: int) -> str:
    return NUMBER_WORDS.get(n, str(n))


def text_design() -> str:
    """Section 7's introduction: who is compared with whom (estimands.py, sample.py)."""
    return (
        "Varje inskriven elev jämförs med elever som ännu inte hade skrivits in samma kalendermånad, i samma "
        "årskurs, och som före inskrivningen liknade de inskrivna: samma frånvaro månad för månad under de "
        f"{_word(est.PRE_MONTHS)} månaderna före, samma andel godkända ämnen och samma meritvärde de två senaste "
        "terminerna, samma andel pojkar. En elev som skrivs in senare används som jämförelse fram till "
        f"{_word(est.ANTICIPATION_MONTHS)} månader före sin egen inskrivning. Rapporten för ett år använder inga "
        "uppgifter efter årets slut. Först redovisas vilka elever skattningarna gäller (bortfall), sedan hur lika "
        "grupperna var före inskrivningen, och först därefter effekterna."
    )


def _text_trend_results(effects: pl.DataFrame | None) -> str:
    """This report's pre-trend tests and verdicts, from the protected headline frame."""
    if effects is None or "pretrend_p" not in effects.columns:
        return ""
    parts = []
    for r in effects.iter_rows(named=True):
        if r.get("difference") is None or r.get("pretrend_p") is None:
            continue
        verdict = lb.VERDICT.get(r.get("verdict") or "", "").lower()
        parts.append(f"{SHORT_LABELS[r['outcome']].lower()} p = {fmt_num(r['pretrend_p'], 2)} ({verdict})")
    return (" I år: " + "; ".join(parts) + ".") if parts else ""


def text_reference(levels: pl.DataFrame | None) -> str:
    """How many enrolled pupils' absence was measured against their own school, the
    district's or the city's pupils (the protected reference_levels frame)."""
    if levels is None or levels.is_empty():
        return ""
    total = levels["n_total"][0]
    parts = [f"{r['label']} för {r['n']} elever" for r in levels.iter_rows(named=True) if r["n"]]
    if total is None or not parts or any(r["n"] is None for r in levels.iter_rows(named=True)):
        return " Hur många som jämfördes på varje nivå döljs av röjandekontrollen."
    return f" Av de {total} inskrivna i frånvaroskattningen jämfördes frånvaron med " + ", ".join(parts) + "."


def text_methods(effects: pl.DataFrame | None = None, levels: pl.DataFrame | None = None) -> str:
    """The methods appendix (section 11), with every window and limit from the constants, and
    what this report's tests showed from `effects` (the protected headline frame), if given."""
    pre, anticipation = est.PRE_MONTHS, est.ANTICIPATION_MONTHS
    window = f"{est.OUTCOME_FIRST}–{est.OUTCOME_LAST}"
    placebo = f"{-est.PLACEBO_LAST}–{-est.PLACEBO_FIRST}"
    n_placebo = est.PLACEBO_LAST - est.PLACEBO_FIRST + 1
    eq, adj = fmt_num(est.WWC_EQUIVALENT, 2), fmt_num(est.WWC_ADJUSTABLE, 2)
    return "\n\n".join(
        [
            "**Definitioner.** Andel godkända ämnen: ämnen med betyg A–E delat med ämnen med betyg (F och streck "
            "räknas som ej godkända). Behörighet och meritvärde enligt Skolverket och gymnasieförordningen. "
            "Frånvaro: giltig och ogiltig frånvaro delad med erbjuden tid; månader utan rapportering räknas som "
            "saknade.",
            "**Vilka effekterna gäller (estimand).** Den genomsnittliga effekten för de inskrivna eleverna, till och "
            "med årets slut, som har uppgifter före inskrivningen och under uppföljningstiden: för frånvaro minst "
            f"{_word(est.MIN_PRE_MONTHS)} rapporterade månader av de {_word(pre)} före inskrivningen och minst en "
            f"månad {window} månader efter; för betyg betyg terminen före inskrivningsterminen och terminen efter "
            "den (förändring i andel godkända ämnen) respektive slutbetyg i årskurs 9. Skattningen bygger på de av "
            "dem som fick jämförelseelever; bortfallstabellen visar hur många, och texten beskriver dem som föll bort.",
            "**Jämförelsegrupp.** Elever som ännu inte skrivits in samma kalendermånad och i samma årskurs (så att "
            "årstid och läsår tar ut varandra). Frånvaron mäts i förhållande till elevens skola samma månad: "
            "elevens frånvaro minus genomsnittet för skolans övriga elever som inte är inskrivna (stadsdelens om "
            f"skolan har färre än {_word(est.MIN_REFERENCE)} sådana elever den månaden, annars hela stadens), så att "
            "en svängning som gäller hela skolan, en influensavinter eller ett nytt sätt att registrera, tar ut sig "
            "själv. Vikterna beräknas för alla inskrivna i staden; en rapport om några stadsdelar använder samma "
            "vikter, så att samma elever får samma skattning i båda."
            + text_reference(levels)
            + " En elev som skrivs in senare används som "
            "jämförelse fram till "
            f"{_word(anticipation)} månader före sin egen inskrivning, eftersom elever ofta skrivs in just när "
            "frånvaron toppar. Rapporten för ett år använder inga uppgifter efter årets slut, och elever som skrivs "
            "in senare än så räknas som ännu inte inskrivna.",
            "**Jämförelsegruppens vikter (entropy balancing).** Inom varje kombination av kalendermånad och årskurs "
            "vägs de elever som ännu inte skrivits in så att deras genomsnitt blir desamma som de inskrivnas "
            "(Hainmueller 2012; beräknat med Googles paket `empirical_calibration`): frånvaron månad för månad före "
            f"inskrivningen (senaste månaden, månaden före, månad 3–4 och 5–{pre} före), andel godkända ämnen och "
            "meritvärde de två senaste terminerna och andelen pojkar. Vikterna ligger så nära lika vikter som "
            "möjligt. Går det inte inom årskursen prövas alla årskurser samma månad, och sist bara den senaste "
            f"frånvaron och andelen godkända (med högst {adj} standardavvikelsers skillnad, det som What Works "
            "Clearinghouse godtar med statistisk justering). Inskrivna som ingen vägning når, för att ingen annan "
            "elev liknade dem, ingår inte; bortfallet redovisas. Att jämföra på förloppet, inte bara en termins nivå, "
            "gör att jämförelseeleverna också hade en topp och återgår mot sitt medelvärde på samma sätt.",
            "**Skattning.** För varje inskriven elev: utfallet minus jämförelsegruppens vägda genomsnitt, justerat "
            "med en regression på samma variabler från jämförelsegruppens genomsnitt till elevens egna värden "
            "(Abadie och Imbens 2011). Det är den statistiska justering som What Works Clearinghouse kräver när "
            f"skillnaden vid baslinjen är mellan {eq} och {adj}; över {adj} anges ingen effekt. För frånvaro är "
            "utfallet förändringen från elevens egna månader före inskrivningen (skillnad i skillnader). "
            "Effektstorlekar: Hedges g med utfallets standardavvikelse, Cox index för behörighet (WWC Procedures and "
            "Standards Handbook v5.0).",
            f"**Test av trender före inskrivningen.** Månaderna {placebo} före inskrivningen används aldrig i "
            "vägningen; för frånvaro prövas om grupperna ändå skiljer sig där (ett gemensamt Wald-test av de "
            f"{_word(n_placebo)} månaderna, med samma klustrade standardfel, CR2, och Bell och McCaffreys "
            "frihetsgrader som intervallen). För betyg prövas på samma sätt förändringen i andel godkända ämnen "
            "från tre terminer före inskrivningsterminen till terminen före, en termin som inte heller används i "
            "vägningen; betygsutfallen prövas också mot frånvarons test, eftersom det är samma elever som valts ut. "
            "Ett robust intervall visar vad som händer om en trend före inskrivningen fortsätter lika starkt "
            "efteråt (i andan av Rambachan och Roth 2023, förenklat: trendens lutning före inskrivningen förlängd "
            "till uppföljningstiden läggs till på båda sidor av intervallet). Trenden tas vid sin övre "
            "konfidensgräns, inte vid sin punktskattning: ett test utan styrka får inte räknas som belägg för att "
            "det inte fanns någon trend. För behörighet räknas betygstrenden om till behörighet med hur behörigheten "
            "hänger samman med andelen godkända ämnen bland jämförelseeleverna. En effekt anges bara när testet "
            "inte visar någon skillnad (p ≥ 0,05) och både konfidensintervallet och det robusta intervallet "
            "utesluter noll, och för betygen bara när frånvaron för samma elever inte har fått utlåtandet trend; "
            "annars säger texten att designen inte kan skilja programmet från trenden." + _text_trend_results(effects),
            "**Osäkerhet.** 95 % konfidensintervall med standardfel som tar hänsyn till att elever i samma skola "
            "liknar varandra (klustrade på skola, med Bell och McCaffreys småstickprovskorrigering CR2, och en "
            "t-fördelning med Bell och McCaffreys frihetsgrader, som räknar de skolor de inskrivna eleverna kommer "
            "från och blir färre ju ojämnare eleverna är fördelade på dem). "
            f"Kommer eleverna från färre än {_word(MIN_SCHOOLS)} skolor anses "
            "intervallet inte tillförlitligt och ingen slutsats dras. Wilsonintervall för andelar och t-intervall "
            "för medelvärden. Undergruppernas p-värden justeras med Benjamini och Hochbergs metod, och en "
            "undergrupps effekt anges bara när q-värdet är under 0,05.",
            "**Prövat på simulerade data.** Metoden prövas på demodata där den sanna effekten är känd: världar "
            "utan effekt och med effekt, med samma urval och samma slumptal, och världar där elever väljs ut på "
            "en dold försämring som fortsätter, under en kris som går över, där hela skolors frånvaro svänger och "
            "där skolor börjar vid olika tidpunkter. En skattning där designen inte kan skilja programmet från "
            "en sådan utveckling redovisas utan slutsats.",
            "**Känslighet.** E-värden (VanderWeele och Ding 2017): hur stark en okänd faktor måste vara, som "
            "riskkvot med både inskrivning och utfall, för att förklara bort skattningen respektive flytta "
            "intervallet till noll.",
            "**Vad designen inte kan utesluta.** Eleverna valdes ut av skola och socialtjänst, av skäl som inte syns "
            "i data (till exempel en kris i familjen). Om sådana skäl också påverkar utfallet kan skillnaden bero på "
            "dem och inte på programmet; E-värdet visar hur starka de skulle behöva vara. Elever utan "
            "jämförelseelever, och de som flyttat eller saknar betyg, ingår inte.",
        ]
    )
