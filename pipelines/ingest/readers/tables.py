"""Hand-kept tables: a `;` CSV or every sheet of an Excel workbook with the contract's header row,
read as text with the locations a person finds the row at (`read_table`)."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipelines.ingest.readers.decoding import decode_text, sniff
from pipelines.ingest.readers.kind import FileRejected
from pipelines.rules.identity import looks_personal


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
        if head is None:  # a sheet of notes (a lone "Program" in it is no header row): named, not read
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
