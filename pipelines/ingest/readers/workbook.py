"""Excel workbooks as a data steward sees them: where each sheet's cells really are, which rows
are hidden, and which cells show an Excel error instead of a value.

calamine (through fastexcel) returns a sheet from its first used cell, so a sheet whose table
starts on row 3 or in column B would be numbered from there; the steward corrects the row Excel
shows. The true origin is read from the sheet's own XML, streamed and hardened like the grade
exports (no entities, no network), since the workbook is a zip of XML parts.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import polars as pl
from lxml import etree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"

# calamine's names of Excel's error values, and how Excel shows them.
EXCEL_ERRORS = {
    "NA": "#N/A",
    "Value": "#VALUE!",
    "Ref": "#REF!",
    "Div0": "#DIV/0!",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "GettingData": "#GETTING_DATA",
}


@dataclass
class SheetOrigin:
    """Where a sheet's used range starts (0-based row and column, as Excel counts them) and its hidden rows."""

    row: int = 0
    col: int = 0
    hidden: set[int] = field(default_factory=set)  # 0-based Excel rows
    known: bool = False  # False: the sheet's XML could not be read, numbers count from its first used row


@dataclass
class Sheet:
    name: str
    cells: pl.DataFrame  # every cell as text, columns in sheet order, row 0 = the origin's row
    origin: SheetOrigin
    errors: dict[tuple[int, int], str]  # (frame row, frame column) -> Excel's error text, e.g. "#N/A"


def column_letter(index: int) -> str:
    """Excel's column name of a 0-based column index (0 -> A, 26 -> AA)."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _cell_ref(ref: str | None) -> tuple[int, int] | None:
    m = re.fullmatch(r"\$?([A-Za-z]{1,3})\$?(\d+)", ref or "")
    if not m:
        return None
    col = 0
    for ch in m[1].upper():
        col = col * 26 + ord(ch) - 64
    return int(m[2]) - 1, col - 1


def _parser_args() -> dict:
    return {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


def _sheet_parts(book: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> path of its XML part, from workbook.xml and its relationships."""
    rels = etree.fromstring(book.read("xl/_rels/workbook.xml.rels"), etree.XMLParser(**_parser_args()))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{_PKG_REL}Relationship")}
    wb = etree.fromstring(book.read("xl/workbook.xml"), etree.XMLParser(**_parser_args()))
    parts = {}
    for s in wb.iter(f"{_MAIN}sheet"):
        target = targets.get(s.get(f"{_REL}id"), "")
        path = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        parts[s.get("name", "")] = path
    return parts


def _origin(book: zipfile.ZipFile, part: str) -> SheetOrigin:
    """The first row and the first column holding a value (calamine's range start), and hidden rows."""
    origin = SheetOrigin(row=-1, col=-1, known=True)
    row_no, first_row, first_col = -1, None, None
    with book.open(part) as fh:
        for _, el in etree.iterparse(fh, events=("end",), tag=(f"{_MAIN}row", f"{_MAIN}c"), **_parser_args()):
            if el.tag == f"{_MAIN}row":
                r = el.get("r")
                row_no = int(r) - 1 if r and r.isdigit() else row_no + 1
                if el.get("hidden") in ("1", "true"):
                    origin.hidden.add(row_no)
                el.clear()
                continue
            has_value = el.find(f"{_MAIN}v") is not None or el.find(f"{_MAIN}is") is not None
            if has_value:
                pos = _cell_ref(el.get("r"))
                row, col = pos if pos else (row_no + 1, None)  # cells end before their row element
                first_row = row if first_row is None else min(first_row, row)
                if col is not None:
                    first_col = col if first_col is None else min(first_col, col)
    origin.row, origin.col = first_row or 0, first_col or 0
    return origin


def origins(path: Path) -> dict[str, SheetOrigin]:
    """Each sheet's origin by name; an empty dict when the workbook's parts cannot be read (then
    row numbers count from each sheet's first used row, and the load log says so)."""
    try:
        with zipfile.ZipFile(path) as book:
            return {name: _origin(book, part) for name, part in _sheet_parts(book).items()}
    except Exception:  # any damage to the zip or its XML: calamine has read the cells already
        return {}


def read_sheets(path: Path) -> list[Sheet]:
    """Every sheet of the workbook with all its cells as text (no header assumed), Excel error
    cells located, and the sheet's origin. Raises what fastexcel raises for a broken workbook."""
    import fastexcel

    reader = fastexcel.read_excel(path)
    found = origins(path)
    sheets = []
    for idx, name in enumerate(reader.sheet_names):
        sheet = reader.load_sheet(idx, header_row=None, dtypes="string")
        batch, problems = sheet.to_arrow_with_errors()
        cells = pl.from_arrow(batch)
        assert isinstance(cells, pl.DataFrame)
        cells.columns = [str(i) for i in range(cells.width)]
        errors = {}
        for e in problems.errors if problems is not None else []:
            m = re.search(r"Error\((\w+)\)", e.detail)
            if m:
                errors[tuple(e.position)] = EXCEL_ERRORS.get(m[1], f"#{m[1].upper()}")
        sheets.append(Sheet(name, cells, found.get(name, SheetOrigin()), errors))
    return sheets
