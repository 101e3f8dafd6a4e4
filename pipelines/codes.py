"""The codes the store, the SQL and the Python share. Codes are stable keys; the Swedish
words a reader sees come from `pipelines.labels`, never from a code's spelling."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


def normalise_code(text: str) -> str:
    """A code as compared: Unicode NFC (some systems export å, ä, ö decomposed, NFD) and every run
    of whitespace (non-breaking spaces included) as one space, trimmed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


# SS 12000 code lists the readers compare with, in one place. Source: SIS, SS 12000:2020
# "Informationsutbyte mellan verksamhetssystem inom skolväsendet", API version 2.1 (OpenAPI
# enum SchoolTypesEnum, Person.securityMarking). KOMVUX is the school type some platforms
# export for kommunal vuxenutbildning as a whole (issue 22); it is listed so it is named.
SCHOOL_TYPES = (
    "FS",  # förskola
    "FKLASS",  # förskoleklass
    "FTH",  # fritidshem
    "OPPFTH",  # öppen fritidsverksamhet
    "GR",  # grundskola
    "GRS",  # grundsärskola (anpassad grundskola)
    "TR",  # träningsskolan
    "SP",  # specialskola
    "SAM",  # sameskola
    "GY",  # gymnasieskola
    "GYS",  # gymnasiesärskola
    "VUX",  # kommunal vuxenutbildning
    "VUXSFI",
    "VUXGR",
    "VUXGY",
    "VUXSARGR",
    "VUXSARTR",
    "VUXSARGY",
    "SFI",
    "SARVUX",
    "SARVUXGR",
    "SARVUXGY",
    "KU",  # kulturskola
    "YH",  # yrkeshögskola
    "FHS",  # folkhögskola
    "STF",  # studieförbund
    "KKU",  # konst- och kulturutbildning
    "HS",  # högskola
    "ABU",  # arbetsmarknadsutbildning
    "AU",  # annan undervisning
    "KOMVUX",
)
SECURITY_MARKINGS = ("Ingen", "Sekretessmarkering", "Skyddad folkbokföring")


class Programme(StrEnum):
    """`programme_enrolments.programme`: the register's `Program` column (data contract 1.5)."""

    PPSS = "PPSS"
    SKOLFAM = "SkolFam"


class LoadStatus(StrEnum):
    """`load_log.status` (data contract 4)."""

    LOADED = "loaded"
    REJECTED = "rejected"  # the whole file failed
    SUPERSEDED = "superseded"  # a later version of the file replaced it
    REMOVED = "removed"  # the file has left the delivery folder; its rows are no longer current


# The file versions a load stands on: the current ones, loaded or rejected.
CURRENT_STATUSES = (LoadStatus.LOADED, LoadStatus.REJECTED)


def sql_in(codes: tuple[StrEnum, ...]) -> str:
    """Codes as an SQL list, for `where status in (...)`."""
    return "(" + ", ".join(f"'{c.value}'" for c in codes) + ")"


CURRENT = sql_in(CURRENT_STATUSES)  # "('loaded', 'rejected')"


class Scope(StrEnum):
    """What a failed expectation quarantines (`meta.scope` in expectations/*.json)."""

    ROW = "row"
    ENROLMENT = "enrolment"  # one enrolment of a person, the person row stays


class Quarantine(StrEnum):
    """Why a row is in `quarantine`: it broke a rule of its own file, or contradicts another
    file (held, and checked again on every ingest)."""

    INVALID = "invalid"
    HELD = "held"


class PupilGroup(StrEnum):
    """The groups the report's comparisons put pupils in (report queries' `pupil_group`)."""

    ENROLLED = "enrolled"  # PPSS pupils
    OTHERS = "others"  # pupils of the same schools never in any programme


class Gender(StrEnum):
    """`pupil_term_outcomes.gender`, and the margin over both."""

    ALL = "all"
    GIRLS = "F"
    BOYS = "M"


class Source(StrEnum):
    """The school data sources a PPSS pupil is looked for in (report query `coverage`)."""

    ENROLMENT = "enrolment"
    GRADES = "grades"
    ATTENDANCE = "attendance"


class Direction(StrEnum):
    """A pupil's share of passed subjects from one term to the next."""

    DECREASED = "decreased"
    UNCHANGED = "unchanged"
    INCREASED = "increased"
