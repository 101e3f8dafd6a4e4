"""Checks on single values that readers share: dates in their written forms, dates beyond any
school year, values in the wrong JSON shape, personal data in free text. Each marks a row's
`row_problem` with "rule:column" (see READER_RULES), never repeating the value."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import polars as pl

from pipelines.codes import normalise_code
from pipelines.ingest.readers.kind import EARLIEST, FUTURE_HORIZON
from pipelines.rules.identity import PERSONAL_TEXT

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
