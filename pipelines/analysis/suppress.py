"""The suppression threshold and Swedish number formatting for published tables.

Skolverket shows `..` where a figure rests on fewer than 10 pupils and `.` where it does
not exist (domain rules). The threshold is a parameter, never below 5. Which cells are
hidden is decided in one place, `pipelines.analysis.disclosure`, over all tables together.
"""

from __future__ import annotations

import math

MIN_CELL_FLOOR = 5
DEFAULT_MIN_CELL = 10  # domain rules: figures resting on fewer than 10 pupils are not shown
SUPPRESSED, MISSING = "..", "."
MINUS = "\u2212"  # the typographic minus sign, as Swedish print uses


def check_min_cell(min_cell: int) -> int:
    if min_cell < MIN_CELL_FLOOR:
        raise ValueError(f"min_cell must be at least {MIN_CELL_FLOOR} (got {min_cell})")
    return min_cell


def fmt_int(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{round(value):,}".replace(",", "\u00a0")


def fmt_num(value: float | None, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    text = f"{value:,.{decimals}f}".replace(",", "\u00a0").replace(".", ",")
    return text.replace("-", MINUS) if text.startswith("-") and text.strip("-0,\u00a0") else text.lstrip("-")


def fmt_pct(value: float | None, decimals: int = 0) -> str:
    """0.256 -> '26 %' (Swedish style: comma decimals, space before %)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return fmt_num(100 * value, decimals) + "\u00a0%"


def fmt_ci(lo: float | None, hi: float | None, decimals: int = 0) -> str:
    if lo is None or hi is None:
        return MISSING
    return f"{fmt_pct(lo, decimals)}–{fmt_pct(hi, decimals)}"
