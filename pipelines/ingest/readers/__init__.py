"""One reader per input kind (data contract section 1).

Each reader turns one raw file into an `Extract`: a frame with one row per unit to
validate, free of names, identity numbers and platform ids (those become keyed hashes
and check results here, at the edge), plus the counts the load log reconciles.
A file that cannot be read as what it claims to be raises `FileRejected`.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from pipelines.codes import normalise_code
from pipelines.config import VALIDATION_BATCH_ROWS
from pipelines.rules.identity import PERSONAL_TEXT, looks_personal


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
    check_unit: str = "en rad per post"  # Swedish: what one validated row is (Data Docs' rows checked)

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


_BOMS = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
]


def bom_encoding(raw: bytes) -> str | None:
    return next((enc for bom, enc in _BOMS if raw.startswith(bom)), None)


def sniff(raw: bytes) -> str:
    """A short description of what a file looks like, for messages about the wrong format."""
    enc = bom_encoding(raw)
    if enc and enc != "utf-8-sig":  # UTF-16/32 text: look at it decoded
        head_text = raw[:1024].decode(enc, errors="ignore").lstrip("\ufeff \t\r\n").lower()
        head = head_text[:512].encode("utf-8", errors="ignore")
    else:
        head = raw[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty file"
    if raw.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file (unpack it, e.g. with gunzip or 7-Zip, and put the unpacked file in the folder)"
    if head.startswith(b"pk\x03\x04"):
        return "a zip container (an Excel workbook, or a zip archive to unpack first?)"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page (often an error page saved by a failed download)"
    if head.startswith(b"<"):
        return "an XML document"
    if head.startswith((b"{", b"[")):
        return "JSON"
    if b"\x00" in head:
        return "a binary file"
    return "text that is neither JSON nor XML"


def _line_no(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def decode_text(raw: bytes) -> tuple[str, str]:
    """Text of a file in the one encoding it is written in: UTF-8 (with or without BOM), UTF-16
    with BOM, or Windows-1252 as older Excel saves CSV. Detected per file: a file that mixes
    UTF-8 and Windows-1252 lines (rows pasted from two sources) is rejected, since decoding it
    either way would garble some of its rows."""
    enc = bom_encoding(raw)
    if enc:
        try:
            return raw.decode(enc).removeprefix("\ufeff"), enc
        except UnicodeDecodeError as e:
            raise FileRejected(
                "encoding",
                f"the file starts with a {enc.upper()} byte-order mark but is not valid {enc.upper()} "
                f"(near line {_line_no(raw, e.start)}); save it again in one encoding (CSV UTF-8) and load again",
            ) from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        first_bad = _line_no(raw, e.start)
    utf8_lines = sum(1 for line in raw.splitlines() if not line.isascii() and _decodes(line, "utf-8"))
    if utf8_lines:
        raise FileRejected(
            "encoding_mixed",
            f"the file mixes encodings: {utf8_lines} line(s) with å, ä or ö are UTF-8 but line {first_bad} "
            "(and maybe others) is not (Windows-1252?), so some rows would be garbled whichever is chosen; "
            "open it in Excel, correct the garbled letters and save the whole file again as 'CSV UTF-8', "
            "then run ppss ingest again",
        )
    return raw.decode("cp1252", errors="replace"), "windows-1252"


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


# JSON integers longer than this stay text: Python refuses int() on thousands of digits, and
# no count in these exports comes near; validation then quarantines the value, not the file.
_MAX_INT_DIGITS = 30


def _int_or_text(text: str) -> int | str:
    return int(text) if len(text) <= _MAX_INT_DIGITS else text


def load_json_page(path: Path, what: str) -> list[Any]:
    """The `data` array of an SS 12000 page, or FileRejected saying what the file is instead."""
    raw = path.read_bytes()
    kind = sniff(raw)
    if kind != "JSON":
        raise FileRejected("file_format", f"this is {kind}, not SS 12000 {what} JSON")
    try:  # orjson where it reads the page (UTF-8, no BOM, 64-bit numbers): the same values, faster
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = _load_json_text(raw, what)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise FileRejected(
            "file_shape", f"JSON, but not an SS 12000 page: expected an object with a 'data' list of {what}"
        )
    return doc["data"]


def _load_json_text(raw: bytes, what: str) -> Any:
    """The page in whatever encoding it is written in, with the parser's position for a clear message."""
    text = decode_text(raw)[0]
    try:
        return json.loads(text, parse_int=_int_or_text)
    except RecursionError:
        raise FileRejected(
            "file_shape",
            "JSON nested deeper than any SS 12000 page could be (thousands of levels), so it is not an export "
            f"of {what}: ask where the file comes from and for the export again",
        ) from None
    except json.JSONDecodeError as e:
        raise FileRejected("file_format", _json_error(e, text)) from None


def _json_error(e: json.JSONDecodeError, text: str) -> str:
    where = f"line {e.lineno}, column {e.colno}"
    if e.msg == "Extra data":
        return (
            f"more than one JSON document in the file (a second one starts at {where}; JSON Lines, one record "
            "per line?), not one SS 12000 page: export the page as a single JSON object and load again"
        )
    # The parser stopped at the very end (or in a string running to the end): the rest is missing.
    if e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string"):
        return f"the JSON breaks off before its end ({where}); a cut-off transfer looks like this: fetch the page again"
    return (
        f"not valid JSON at {where} ({e.msg}); the file was changed or damaged after export: "
        "fetch the page again, and do not edit it by hand"
    )


def _clean_header(name: object) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(name)).replace("\ufeff", "")).strip().lower()


def _split_lines(text: str) -> list[str]:
    lines = re.split(r"\r\n|\r|\n", text)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


# A hand-kept cell is short, but a long one is no reason to reject a row.
csv.field_size_limit(1 << 26)

# The header row is looked for this far down: sheets often carry a title, a date or a blank row
# above it. It is the first row naming at least two columns of the contract.
HEADER_SEARCH_ROWS = 30


def _header_index(rows: list[list[str | None]], required: list[str]) -> int | None:
    names = {c.lower() for c in required}
    need = min(2, len(names))
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if sum(1 for c in row if c is not None and _clean_header(c) in names) >= need:
            return i
    return None


def _cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=";", strict=True), [])
    except csv.Error:
        return line.split(";")


def _csv_frame(
    text: str, list_column: str | None, required: list[str], canon: dict[str, str]
) -> tuple[pl.DataFrame, list[str], list[int]]:
    """A `;` CSV read line by line with Python's csv module, so one stray '"' spoils its own row
    only (a whole-file parser would run the quoted cell on to the end of the file).

    Returns the frame (with `_line`, the 1-based line of the file each row is on), the header
    cells, and the lines above the header (Excel's `sep=;` hint, a title) that are not data.
    A row with more cells than the header: the surplus joins the last column when that column
    holds a list (`Insatser` written `Kurator;SIP`), otherwise the row is quarantined.
    """
    lines = _split_lines(text)
    if not lines:
        return pl.DataFrame(), [], []
    first = 0
    m = re.fullmatch(r"\s*sep\s*=\s*(.?)\s*", lines[0], flags=re.I)
    if m:  # Excel writes this hint line when asked to; it names the separator, it is no data
        if m[1] != ";":
            raise FileRejected(
                "csv_separator",
                f"line 1 of the file is Excel's separator hint 'sep={m[1]}': the cells are separated by "
                f"'{m[1] or 'nothing'}', not ';'. Open the file in Excel and save it as 'CSV (semikolonavgränsad)', "
                "or change that line to sep=; if the cells really are ';'-separated, then run ppss ingest again",
            )
        first = 1
    found = _header_index([_cells(line) for line in lines[first:]], required)
    head = first + (found or 0)
    header = [h if h.strip() else "" for h in _cells(lines[head])]
    width = len(header)
    last_is_list = list_column is not None and canon.get(_clean_header(header[-1])) == list_column
    rows, problems = [], []
    for line in lines[head + 1 :]:
        problem = None
        try:
            cells = next(csv.reader([line], delimiter=";", strict=True), [])
        except csv.Error:
            cells, problem = [], "csv_quote"
        if "\x00" in line:
            cells, problem = [], "csv_control"
        if len(cells) > width:
            extra = [c for c in cells[width:] if c.strip()]
            cells = cells[:width]
            if extra and last_is_list:
                cells[-1] = ";".join([cells[-1], *extra]) if cells[-1].strip() else ";".join(extra)
            elif extra:
                problem = "csv_fields"
        cells = cells + [""] * (width - len(cells))
        rows.append(cells)
        problems.append(f"{problem}:row" if problem else None)
    data = {str(i): [r[i] for r in rows] for i in range(width)}
    df = pl.DataFrame(data, schema={k: pl.String for k in data})
    df = df.with_columns(
        pl.Series("row_problem", problems, dtype=pl.String),
        pl.Series("_line", range(head + 2, head + 2 + len(rows)), dtype=pl.Int64),
    )
    return df, header, list(range(1, head + 1))


def _header_problem(columns: list[str], required: list[str], missing: list[str], where: str) -> FileRejected:
    named = sum(1 for c in columns if _clean_header(c) in {r.lower() for r in required})
    looks_like_data = any(re.search(r"\d{4}", str(c)) for c in columns)
    other_separator = (
        sum(
            1
            for c in columns
            for part in re.split(r"[,\t]", str(c))
            if _clean_header(part) in {r.lower() for r in required}
        )
        >= 2
        and named < 2
    )
    hint = (
        " The first row holds numbers where column names belong: the header row is probably missing."
        if looks_like_data
        else " The column names are separated by ',' or a tab, not ';': save the file as ';'-separated CSV."
        if other_separator
        else ""
    )
    return FileRejected(
        "required_columns",
        f"{where}missing column(s) {', '.join(missing)}: the header row has {len(columns)} cell(s), "
        f"{named} of them named as a column of the contract.{hint} Fix the header row (case and spaces "
        f"do not matter; expected: {', '.join(required)}) and load again",
    )


def _contract_columns(
    header: list[str | None],
    cells: pl.DataFrame,
    required: list[str],
    canon: dict[str, str],
    where: str,
    name_of: Callable[[int], str],
) -> tuple[dict[int, str], list[str]]:
    """Frame position -> contract column, checked so that no column is lost without a word:
    two columns headed alike (or a header merged over two columns, which leaves the second
    unnamed) are a rejection naming the columns; other columns are named in the notes."""
    taken: dict[str, int] = {}
    chosen: dict[int, str] = {}
    notes: list[str] = []
    for i, raw in enumerate(header):
        key = _clean_header(raw) if raw is not None else ""
        if key in canon:
            name = canon[key]
            if name in taken:
                raise FileRejected(
                    "header_duplicate",
                    f"{where}columns {name_of(taken[name])} and {name_of(i)} are both headed {name}, so it is "
                    "unclear which one holds the register's values (and one would be lost). Keep one column "
                    f"{name} (move lists into it, separated by ','), then run ppss ingest again",
                )
            taken[name] = i
            chosen[i] = name
        elif not key:
            filled = cells.get_column(str(i)).str.strip_chars().replace("", None).drop_nulls().len()
            if filled:
                named = (canon[_clean_header(h)] for h in reversed(header[:i]) if h and _clean_header(h) in canon)
                left = next(named, None)
                merged = f" (is the header {left} merged over two columns?)" if left else ""
                raise FileRejected(
                    "header_missing",
                    f"{where}column {name_of(i)} has values in {filled} row(s) but no name in the header row"
                    f"{merged}, so they would be lost. Unmerge the header cell and move the values into the "
                    "named column (lists separated by ','), or name the column, then run ppss ingest again",
                )
        else:
            shown = "a column" if looks_personal(str(raw)) else str(raw).strip()
            notes.append(f"{where}column {name_of(i)} ({shown}) is not a column of the contract and is not read")
    missing = [c for c in required if c not in taken]
    if missing:
        raise _header_problem([h or "" for h in header], required, missing, where)
    return chosen, notes


def _ranges(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> "1–3, 7" (row numbers for the load log)."""
    parts: list[str] = []
    for n in sorted(numbers):
        if parts and parts[-1][1] == n - 1:
            parts[-1] = (parts[-1][0], n)
        else:
            parts.append((n, n))
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts)


def _excel_frame(path: Path, required: list[str], canon: dict[str, str], notes: list[str]) -> pl.DataFrame:
    """Every sheet with the register's header row (found below any title rows), with Excel's
    own row numbers and the sheet's name in `_loc`, and Excel error cells as `excel_error`."""
    from pipelines.ingest.readers.workbook import column_letter, read_sheets

    try:
        sheets = read_sheets(path)
    except Exception as e:  # fastexcel raises its own types for every kind of broken workbook
        raise FileRejected(
            "file_format",
            f"not a readable Excel workbook ({sniff(path.read_bytes()[:1024])}, {type(e).__name__}): "
            "open it in Excel and save it again as .xlsx, then load again",
        ) from None
    parts, skipped = [], []
    for sheet in sheets:
        label = sheet_label(sheet.name)
        where = f"{label}: "
        grid = sheet.cells.head(HEADER_SEARCH_ROWS).rows()
        head = _header_index([list(r) for r in grid], required)
        if head is None:
            if any(_clean_header(c) in canon for r in grid for c in r if c is not None):
                header = [c for c in grid[0]]  # some contract names but fewer than two per row
                raise _header_problem([h or "" for h in header], required, [c for c in required], where)
            skipped.append(label)
            continue
        header = list(grid[head])
        body = sheet.cells.slice(head + 1)

        def letter(i: int, col0: int = sheet.origin.col) -> str:
            return column_letter(col0 + i)

        chosen, more = _contract_columns(header, body, required, canon, where, letter)
        notes.extend(more)
        first_row = sheet.origin.row + head + 2  # Excel's row number of the first data row
        if head:
            notes.append(
                f"{where}row(s) {_ranges([sheet.origin.row + i + 1 for i in range(head)])} above the "
                f"header row {first_row - 1} (a title?) are not data"
            )
        problems: list[str | None] = [None] * body.height
        for r, c in sorted(sheet.errors):
            i = r - head - 1
            if 0 <= i < body.height and c in chosen and problems[i] is None:
                problems[i] = f"excel_error:{chosen[c]}"
        frame = body.select([pl.col(str(i)).alias(name) for i, name in chosen.items()]).with_columns(
            pl.Series("row_problem", problems, dtype=pl.String),
            (pl.lit(f"{label} row ") + (pl.int_range(pl.len()) + first_row).cast(pl.String)).alias("_loc"),
        )
        hidden = [r + 1 for r in sheet.origin.hidden if r + 1 >= first_row and r + 1 < first_row + body.height]
        if hidden:
            notes.append(
                f"{where}row(s) {_ranges(hidden)} are hidden in Excel and were read as data (unhide them to see them)"
            )
        if not sheet.origin.known:
            notes.append(f"{where}the sheet's layout could not be read: row numbers count from its first used row")
        parts.append(frame)
    if not parts:
        raise FileRejected(
            "required_columns",
            f"no sheet of the workbook ({len(sheets)} sheet(s)) has a header row with the columns "
            f"{', '.join(required)} in its first {HEADER_SEARCH_ROWS} rows: put the header row on the sheet "
            "that holds the register, and load again",
        )
    if skipped:
        notes.append(
            f"{', '.join(skipped)} of the workbook not read: no header row of the contract in their first "
            f"{HEADER_SEARCH_ROWS} rows (move rows that belong to the register onto a sheet with its header row)"
        )
    return pl.concat(parts, how="diagonal_relaxed")


def sheet_label(name: str) -> str:
    """How locations name a sheet: by the name on its tab (an identity number there is masked)."""
    return "sheet 'a sheet'" if looks_personal(name) else f"sheet '{name}'"


def read_table(
    path: Path, required: list[str], optional: list[str] = (), list_column: str | None = None
) -> tuple[pl.DataFrame, str, list[str]]:
    """A `;` CSV, or every sheet of an Excel workbook that has the columns, as strings, columns
    renamed to their contract spelling; with the encoding and notes for the load log.

    Header case and surrounding spaces are forgiven, and the header row may sit below a title.
    Rows get `_row` (0-based data row) and `_loc`, the place a person finds the row: Excel's own
    row number with the sheet's name (`sheet 'Inskrivna' row 6`), or the line of a CSV file
    counting the header and every line above it (`row 3`). `row_problem` marks rows the reader
    could not split into cells, and Excel error cells (see READER_RULES).
    """
    canon = {c.lower(): c for c in [*required, *optional]}
    notes: list[str] = []
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        encoding = "xlsx"
        df = _excel_frame(path, required, canon, notes)
    else:
        raw = path.read_bytes()
        kind = sniff(raw)
        if not kind.startswith("text"):
            raise FileRejected("file_format", f"this is {kind}, not a ';'-separated CSV file")
        text, encoding = decode_text(raw)
        cells, header, above = _csv_frame(text, list_column, required, canon)
        if not header:
            raise _header_problem([], required, list(required), "")
        chosen, more = _contract_columns(header, cells, required, canon, "", lambda i: f"{i + 1} (from the left)")
        notes.extend(more)
        if above:
            notes.append(f"line(s) {_ranges(above)} above the header row (Excel's sep=; hint, a title) are not data")
        df = cells.select(
            [pl.col(str(i)).alias(name) for i, name in chosen.items()]
            + ["row_problem", ("row " + pl.col("_line").cast(pl.String)).alias("_loc")]
        )
    for c in optional:
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c))
    contract = [c for c in df.columns if c not in ("row_problem", "_loc")]
    # Codes are compared after NFC and whitespace normalisation (a decomposed å, a non-breaking space).
    df = df.with_columns(
        pl.col(c).str.normalize("NFC").str.replace_all(r"\s+", " ").str.strip_chars().replace("", None)
        for c in contract
    )
    df = df.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    return df, encoding, notes


def blank_rows(df: pl.DataFrame) -> pl.Expr:
    """Rows with every contract column empty: hand-kept sheets end with many."""
    cols = [c for c in df.columns if not c.startswith("_")]
    return pl.all_horizontal(pl.col(c).is_null() for c in cols)


_EXCEL_EPOCH = date(1899, 12, 30)


def normalise_date(value: str | None) -> str | None:
    """ISO 8601 in either form (2016-06-30, 20160630, with or without a time of day), an Excel
    serial day number or an Excel datetime text, as YYYY-MM-DD.

    Anything else is returned unchanged, for validation to flag.
    """
    if value is None:
        return None
    s = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        return s
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)", s)
    if m:
        return m.group(1)
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T\d{2}(?:\d{2}(?:\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?)?", s)
    if m:
        return f"{m[1]}-{m[2]}-{m[3]}"
    if re.fullmatch(r"\d{5}(\.0+)?", s):  # Excel serial date, e.g. 42065 = 2015-03-02
        return (_EXCEL_EPOCH + timedelta(days=int(float(s)))).isoformat()
    return s


def with_date_checks(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Add `<column>_ok`: empty, or a real calendar date written YYYY-MM-DD.

    Checked here in polars because GX's strftime expectation calls strptime per value,
    which dominates validation time on grade exports; the suites check `<column>_ok`.
    """
    return df.with_columns(
        (pl.col(c).is_null() | pl.col(c).str.to_date("%Y-%m-%d", strict=False).is_not_null()).alias(f"{c}_ok")
        for c in columns
    )


def as_date(column: str) -> pl.Expr:
    return pl.col(column).str.to_date("%Y-%m-%d", strict=False)


def add_problem(df: pl.DataFrame, condition: pl.Expr, value: str, column: str = "row_problem") -> pl.DataFrame:
    """Mark rows meeting `condition` with "rule:column" in `column`, keeping a problem found earlier."""
    if column not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias(column))
    return df.with_columns(
        pl.when(pl.col(column).is_null() & condition.fill_null(False))
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )


def with_future_checks(
    df: pl.DataFrame, columns: dict[str, str], on: date, column: str = "row_problem"
) -> pl.DataFrame:
    """Quarantine dates more than FUTURE_HORIZON after the load (placeholders such as 9999-12-31)
    or before EARLIEST: they would spread a record over terms up to that year. `columns` maps
    frame column -> raw name."""
    limit = on + FUTURE_HORIZON
    for col, raw_name in columns.items():
        outside = (as_date(col) > pl.lit(limit)) | (as_date(col) < pl.lit(EARLIEST))
        df = add_problem(df, outside, f"date_implausible:{raw_name}", column)
    return df


class Shape:
    """Reads fields of a JSON record, noting the first one present in the wrong shape (an object
    or list where a single value belongs, or the reverse) so the row is quarantined for that,
    not reported as missing."""

    def __init__(self) -> None:
        self.problem: str | None = None

    def _bad(self, name: str) -> None:
        if self.problem is None:
            self.problem = f"value_shape:{name}"

    def value(self, obj: dict, key: str, name: str) -> Any:
        v = obj.get(key)
        if isinstance(v, dict | list):
            self._bad(name)
            return None
        return v

    def text(self, obj: dict, key: str, name: str) -> str | None:
        v = self.value(obj, key, name)
        return (normalise_code(str(v)) or None) if v is not None else None

    def object(self, obj: dict, key: str, name: str) -> dict:
        v = obj.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            self._bad(name)
            return {}
        return v

    def items(self, obj: dict, key: str, name: str) -> list:
        v = obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self._bad(name)
            return []
        return v

    def flag(self, obj: dict, key: str, name: str) -> bool:
        v = obj.get(key)
        if v is None or isinstance(v, bool):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        self._bad(name)
        return False


def record(value: object) -> tuple[dict, str | None]:
    """A JSON array element as an object, or {} and the shape problem when it is not one."""
    return (value, None) if isinstance(value, dict) else ({}, "value_shape:record")


def with_personal_data_checks(df: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Free-text columns that are stored as they are (names of schools and districts): a
    personnummer or guid typed there is quarantined rather than kept. `columns`: frame -> raw name."""
    for col, raw_name in columns.items():
        df = add_problem(df, pl.col(col).str.contains(PERSONAL_TEXT), f"personal_data:{raw_name}")
    return df
