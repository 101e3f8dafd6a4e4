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
