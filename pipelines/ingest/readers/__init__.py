"""One reader per input kind (data contract section 1), and the toolkit they share.

Each reader module (persons, organisations, grades, attendance, register) defines its kinds
(`InputKind`) and turns one raw file into an `Extract`: a frame with one row per unit to
validate, free of names, identity numbers and platform ids (those become keyed hashes and
check results here, at the edge), plus the counts the load log reconciles. A file that cannot
be read as what it claims to be raises `FileRejected`. The toolkit:

- `kind`: InputKind, Extract, ReadContext, FileRejected and the rules readers find (READER_RULES);
- `decoding`: what a file looks like, its encoding, SS 12000 JSON pages;
- `tables`: hand-kept CSV and Excel tables with the locations a person finds rows at;
- `workbook`: Excel's own row numbers, hidden rows and error cells;
- `values`: shared checks on dates, JSON shapes and personal data in free text.
"""

from __future__ import annotations

from pipelines.ingest.readers.decoding import bom_encoding, decode_text, load_json_page, sniff
from pipelines.ingest.readers.kind import (
    EARLIEST,
    FUTURE_HORIZON,
    READER_RULES,
    STRUCTURAL_RULES,
    Extract,
    FileRejected,
    GradeExport,
    InputKind,
    ReadContext,
    TableRows,
    rule_message,
)
from pipelines.ingest.readers.tables import blank_rows, read_table, sheet_label
from pipelines.ingest.readers.values import (
    Shape,
    add_problem,
    as_date,
    normalise_date,
    record,
    with_date_checks,
    with_future_checks,
    with_personal_data_checks,
)

__all__ = [
    "EARLIEST",
    "FUTURE_HORIZON",
    "READER_RULES",
    "STRUCTURAL_RULES",
    "Extract",
    "FileRejected",
    "GradeExport",
    "InputKind",
    "ReadContext",
    "Shape",
    "TableRows",
    "add_problem",
    "as_date",
    "blank_rows",
    "bom_encoding",
    "decode_text",
    "load_json_page",
    "normalise_date",
    "read_table",
    "record",
    "rule_message",
    "sheet_label",
    "sniff",
    "with_date_checks",
    "with_future_checks",
    "with_personal_data_checks",
]
