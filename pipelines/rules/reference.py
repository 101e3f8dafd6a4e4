"""Documented figures of the programme, from the city's own documents (domain rules)."""

from __future__ import annotations

import polars as pl

# (period label, first day, last day, documented number of enrolled pupils, source)
ENROLMENT_TARGETS = [
    (
        "Till och med hösten 2015",
        "2013-01-01",
        "2015-10-31",
        150,
        "Stadens uppföljning hösten 2015: cirka 150 inskrivna",
    ),
    ("Under 2015", "2015-01-01", "2015-12-31", 80, "Stadens redovisning: cirka 80 inskrivna under 2015"),
    ("Januari–juli 2016", "2016-01-01", "2016-07-31", 127, "Stadens redovisning: 127 inskrivna januari–juli 2016"),
]
# The autumn 2015 follow-up: from term 1 to term 2, this share of pupils increased their
# share of passed grades at individual level (domain rules, "The programme").
FOLLOWUP_2015_SHARE_INCREASED = 0.56
PROGRAMME_DISTRICTS = [
    "Enskede-Årsta-Vantör",
    "Farsta",
    "Hässelby-Vällingby",
    "Rinkeby-Kista",
    "Skarpnäck",
    "Skärholmen",
    "Spånga-Tensta",
    "Älvsjö",
]


def enrolment_targets() -> pl.DataFrame:
    return pl.DataFrame(
        ENROLMENT_TARGETS, schema=["period", "first_day", "last_day", "documented", "source"], orient="row"
    ).with_columns(pl.col("first_day", "last_day").str.to_date())


def targets_sentence(year: int | None = None) -> str:
    """The report's sentence on the city's documented enrolments, from ENROLMENT_TARGETS: the
    periods that end within `year` (a report never quotes what came after it)."""
    parts = [
        f"{_approx(source)}{documented} inskrivna elever {period[0].lower() + period[1:]}"
        for period, _, last, documented, source in ENROLMENT_TARGETS
        if year is None or int(last[:4]) <= year
    ]
    if not parts:
        return f"Stadens dokument anger inga antal inskrivna för perioder som slutar senast {year}."
    if len(parts) == 1:
        return f"Stadens egna dokument anger {parts[0]}."
    return "Stadens egna dokument anger " + ", ".join(parts[:-1]) + " och " + parts[-1] + "."


def _approx(source: str) -> str:
    return "ungefär " if "cirka" in source else ""
