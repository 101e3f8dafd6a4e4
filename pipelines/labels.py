"""Swedish words for codes: the one place a code becomes what a reader sees.

Each mapping is written once, in the order the report shows it; tables, charts, sentences
and the disclosure keys all take their labels (and orders) from here.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from pipelines.codes import Direction, Gender, Programme, PupilGroup, Source

GENDER = {Gender.ALL: "Samtliga", Gender.GIRLS: "Flickor", Gender.BOYS: "Pojkar"}
ALL, GIRLS, BOYS = GENDER.values()
GENDER_ORDER = [ALL, GIRLS, BOYS]  # the report's order of gender rows and columns
GENDERS = [GIRLS, BOYS]  # the members of `Samtliga`
PUPIL_GENDER = {Gender.GIRLS: GIRLS, Gender.BOYS: BOYS}  # pupil_term_outcomes.gender, without the margin

PUPIL_GROUP = {PupilGroup.ENROLLED: "Inskrivna i PPSS", PupilGroup.OTHERS: "Övriga elever i samma skolor"}
ENROLLED, OTHERS = PUPIL_GROUP.values()

DIRECTION = {Direction.DECREASED: "Minskat", Direction.UNCHANGED: "Oförändrat", Direction.INCREASED: "Ökat"}
DIRECTIONS = tuple(DIRECTION.values())

SOURCE = {
    Source.ENROLMENT: "Skolinskrivning (SS 12000)",
    Source.GRADES: "Betyg (Skolplattformen)",
    Source.ATTENDANCE: "Närvaro (SS 12000)",
}

PROGRAMME = {Programme.PPSS: "PPSS", Programme.SKOLFAM: "SkolFam"}

MEASURES = {  # eligibility columns of pupil_term_outcomes
    "eligible_vocational": "Behörig till yrkesprogram",
    "eligible_hp_es": "Behörig till ES",
    "eligible_hp_ek_hu_sa": "Behörig till EK, HU, SA",
    "eligible_hp_na_te": "Behörig till NA, TE",
}

# The dimensions the evaluation's subgroup and attrition tables split by (column -> label)
DIMENSION = {
    "selection_reasons": "Urvalsgrund",
    "interventions": "Insats",
    "district": "Stadsdel",
    "gender": "Kön",
}

TOTAL = "Totalt"  # the row over the districts shown
THIS_FOLLOWUP = "Den här uppföljningen"


def label(column: str, mapping: Mapping[str, str], alias: str | None = None) -> pl.Expr:
    """`column`'s codes as their labels; a code without a label is an error, not a blank."""
    return pl.col(column).replace_strict(dict(mapping), return_dtype=pl.String).alias(alias or column)


def order(column: str, labels: list[str]) -> pl.Expr:
    """A sort key putting `column`'s labels in the given order."""
    return pl.col(column).replace_strict({v: i for i, v in enumerate(labels)}, return_dtype=pl.Int64)


def report_title(year: int, districts: list[str] | None = None) -> str:
    """The report's title (page, PDF footer, index page)."""
    if not districts:
        return f"Uppföljning av PPSS {year}"
    names = sorted(districts)
    which = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " och " + names[-1]
    return f"Uppföljning av PPSS {year}: {which}"


# what the report concludes from an estimate (evidence.py's verdict codes)
VERDICT = {
    "effect": "Effekt",
    "no_change": "Ingen säker förändring",
    "trend": "Kan inte skiljas från trend före inskrivning",
    "few_schools": "För få skolor för slutsats",
    "not_claimable": "Grupperna för olika före",
    "none": "",
}

# what an enrolled pupil's absence is measured against (evaluation_months.sql)
REFERENCE = {"school": "den egna skolan", "district": "stadsdelens skolor", "city": "hela staden"}
