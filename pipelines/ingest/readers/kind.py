"""What an input kind is and what its reader hands to the load: `InputKind`, `Extract`,
`ReadContext`, `FileRejected`, and the rules a reader finds while reading (`READER_RULES`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from pipelines.config import VALIDATION_BATCH_ROWS


class FileRejected(Exception):
    """The whole file fails a structural rule; the message says what the file is instead."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class GradeExport:
    """What a grade export says of itself: its period and which pupils it holds (their grades
    supersede older exports' grades). Old exports have no from/tom."""

    export_from: str | None
    export_tom: str | None
    pupils: list[str] = field(default_factory=list)


@dataclass
class Extract:
    """A file's rows: `_row` (unit counted in the load log), `_loc` (where in the file), values.

    Small files come as one frame in `rows`; a large file streams its frames from `stream`,
    which fills in the counts as it goes, so memory stays bounded by the chunk size.
    """

    rows: pl.DataFrame | None
    rows_read: int = 0
    rows_unused: int = 0
    unused_note: str = ""
    notes: list[str] = field(default_factory=list)  # for the load log: what else a data steward should know
    encoding: str | None = None  # of a text table (CSV), as detected
    export: GradeExport | None = None  # grade exports only: filled in once the whole file is read
    stream: Callable[[], Iterator[pl.DataFrame]] | None = None

    def frames(self) -> Iterator[pl.DataFrame]:
        if self.stream is not None:
            yield from self.stream()
        elif self.rows is not None:
            yield self.rows


@dataclass(frozen=True)
class ReadContext:
    """What every reader may use besides the file: the pseudonymisation key, the day of the
    ingest (dates after it are in the future), the chunk size of streamed files, and the
    stadsdelar skolenheter.csv lists (None before any is loaded)."""

    key: bytes
    on: date
    chunk_rows: int = VALIDATION_BATCH_ROWS
    districts: frozenset[str] | None = None


# Rows of the store's src tables (without file_id) from one validated frame; `dropped` holds the
# frame positions (`_i`) of parts of a row quarantined apart (a person's single enrolment).
TableRows = Callable[[pl.DataFrame, set[int]], dict[str, pl.DataFrame]]


@dataclass(frozen=True)
class InputKind:
    """One input kind of the data contract: how its files are named, read, validated and stored.
    Each reader module defines its kinds; `pipelines.ingest.kinds` lists them in loading order."""

    name: str  # load_log.kind, and the name of its expectation suite in expectations/
    patterns: tuple[str, ...]  # file names (contract section 1), matched case-insensitively
    tables: tuple[str, ...]  # the src tables its rows go to
    label: str  # Swedish, as reports name it
    read: Callable[[Path, ReadContext], Extract]
    table_rows: TableRows
    file_rows: Callable[[Path, Extract], dict[str, pl.DataFrame]] | None = None  # once the file is read
    row_unit: str = "rader"  # Swedish: what load_log's counts count (a "row" of contract section 4)
    row_unit_en: str = "rows"  # the same in English, for `ppss status`
    check_unit: str = "en rad per post"  # Swedish: what one validated row is (Data Docs' rows checked)
    batched: bool = False  # small files of the kind are validated together (one GX run, fewer pages)
    reads_districts: bool = False  # read after this ingest's skolenheter.csv, with ReadContext.districts
    part_location: str | None = None  # frame column locating a part of a row quarantined apart (scope enrolment)

    @property
    def suite(self) -> str:
        return self.name


# Rules a reader finds while reading (a cell in the wrong shape, a date far in the future...).
# A reader writes "rule:column" into a row's `row_problem` (or `enrolment_problem`); the suites
# quarantine such rows and take the message from here. Messages never repeat the value.
READER_RULES = {
    "value_shape": "{column} is present but not a single value (an object or a list where text or a number "
    "belongs); ask for a corrected export, then run ppss ingest again",
    "security_marking_missing": "securityMarking is missing, so it is unknown whether the pupil has a protected "
    "identity; ask the platform's administrator for an export that states it (Ingen, Sekretessmarkering or "
    "Skyddad folkbokföring), then run ppss ingest again",
    "date_implausible": "{column} lies far in the future or the past, or is a placeholder (such as 9999-12-31 "
    "for an open end), beyond any real school year; ask for a corrected record with its real date, then run "
    "ppss ingest again",
    "date_in_future": "{column} lies after the day of this load: a grade cannot be decided in the future; "
    "ask for a corrected export, then run ppss ingest again",
    "minutes_implausible": "{column} is more minutes than the period has (or a number too large to store), "
    "beyond any real school year; ask for a corrected export, then run ppss ingest again",
    "personal_data": "{column} holds what looks like an identity number or a platform id, which this column "
    "never holds and the store must not keep; correct the cell, then run ppss ingest again",
    "municipality_code_format": "{column} is not a 4-digit kommunkod (such as 0180 for Stockholm); ask the "
    "platform's administrator for a corrected export, then run ppss ingest again",
    "unknown_district": "{column} is no stadsdel listed in skolenheter.csv (a note or a name in the wrong "
    "column?); districts are printed in reports, so the row is not loaded. Correct the cell (or leave it empty "
    "to take the school unit's stadsdel), save the register and run ppss ingest again",
    "csv_quote": "this row has a '\"' that opens a quoted cell but never closes it (or a line break inside a "
    "cell), so its cells cannot be told apart; remove the stray '\"' in a text editor, or save the sheet "
    "again as CSV from Excel, then run ppss ingest again",
    "csv_control": "this row holds NUL bytes, which no text cell holds: the file was damaged or is not a "
    "text export; save the sheet again as CSV from Excel, then run ppss ingest again",
    "excel_error": "{column} shows an Excel error value (#N/A, #VALUE!, #REF!, #DIV/0! ...) instead of a value: a "
    "formula that failed, such as a lookup that found nothing, so the cell's real value is unknown; type the value "
    "in (or correct the formula), save the workbook and run ppss ingest again",
    "csv_fields": "this row has more ';'-separated cells than the header row has columns (a ';' inside a "
    "cell?); write lists with ',' or quote the cell, then run ppss ingest again",
}

# Rules that leave a row's cells unknown: other rules on the same row would only repeat them.
STRUCTURAL_RULES = {"csv_quote", "csv_control", "csv_fields", "value_shape"}

# Dates more than this after the day of the load, or before EARLIEST, are not real: a
# placeholder or a typo. Either would spread records over terms far beyond the data's years.
FUTURE_HORIZON = timedelta(days=366)
EARLIEST = date(1990, 1, 1)


def rule_message(value: str) -> tuple[str, str, str] | None:
    """("rule", "column", message) for a `row_problem` value written by a reader."""
    rule, _, column = value.partition(":")
    if rule not in READER_RULES:
        return None
    return rule, column, READER_RULES[rule].format(column=column or "a value")
