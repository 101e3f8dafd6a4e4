"""The report's tables as CSV files, cell for cell as the page shows them (`..` where hidden).

The tables are rendered from protected frames (`pipelines.analysis.disclosure`); this
module only copies what the page shows, so a file can never hold more than the page.
"""

from __future__ import annotations

import csv
from html.parser import HTMLParser
from pathlib import Path


def export(name: str, html: str, folder: Path | None) -> str:
    """Write the tables of `html` (as rendered) to `<folder>/<name>.csv`: the same cells,
    `..` where hidden, the caption as a first comment line. Returns `html`."""
    if folder is None:
        return html
    folder.mkdir(parents=True, exist_ok=True)
    parsed = _parse_tables(html)
    for n, (caption, rows) in enumerate(parsed, start=1):
        stem = name if len(parsed) == 1 else f"{name}_{n}"
        with (folder / f"{stem}.csv").open("w", encoding="utf-8", newline="") as fh:
            fh.write(f"# {caption}\n")
            csv.writer(fh).writerows(rows)
    return html


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._span = 1
        self._caption: list[str] | None = None
        self._group_rows: set[tuple[int, int]] = set()  # (table, row) of grouped-header rows

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append(("", []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
            self._span = int(dict(attrs).get("colspan") or 1)
            if self._span > 1:
                self._group_rows.add((len(self.tables) - 1, len(self.tables[-1][1]) - 1))
        elif tag == "caption":
            self._caption = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].extend(["".join(self._cell).strip()] * self._span)
            self._cell = None
        elif tag == "caption" and self._caption is not None:
            self.tables[-1] = ("".join(self._caption).strip(), self.tables[-1][1])
            self._caption = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._caption is not None:
            self._caption.append(data)


def _parse_tables(html: str) -> list[tuple[str, list[list[str]]]]:
    """Each table's caption and rows, the header first; a grouped header row above the
    column headers is folded into them ("Elever: Jämförelse")."""
    p = _TableParser()
    p.feed(html)
    tables = []
    for t, (caption, rows) in enumerate(p.tables):
        folded = []
        for r, row in enumerate(rows):
            if (t, r) in p._group_rows and r + 1 < len(rows) and len(rows[r + 1]) == len(row):
                continue
            if (t, r - 1) in p._group_rows and len(rows[r - 1]) == len(row):
                row = [f"{g}: {h}" if g else h for g, h in zip(rows[r - 1], row, strict=True)]
            folded.append(row)
        tables.append((caption, folded))
    return tables


def read_table_csv(path: Path) -> tuple[str, list[list[str]]]:
    """A published table back from its CSV: (caption, rows with the header first)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    caption = lines[0][2:] if lines and lines[0].startswith("# ") else ""
    return caption, list(csv.reader(lines[1:] if caption else lines))
