"""Small-cell suppression and Swedish number formatting for published tables.

Skolverket shows `..` where a figure rests on fewer than 10 pupils and `.` where it does
not exist (domain rules). The threshold is a parameter, never below 5. Where a table
publishes a total, one suppressed cell could be recovered as total minus the rest, so a
second cell (the smallest other one) is suppressed too.
"""

from __future__ import annotations

import math

import polars as pl

MIN_CELL_FLOOR = 5
SUPPRESSED, MISSING = "..", "."


def check_min_cell(min_cell: int) -> int:
    if min_cell < MIN_CELL_FLOOR:
        raise ValueError(f"min_cell must be at least {MIN_CELL_FLOOR} (got {min_cell})")
    return min_cell


def suppress(
    df: pl.DataFrame, n_col: str, min_cell: int, by: list[str] | None = None, has_total: bool = False
) -> pl.DataFrame:
    """Add boolean `suppressed`: primary where 0 < n < min_cell (a share: its denominator).

    With `has_total`, within each `by` group with exactly one suppressed row, the smallest
    other row is suppressed too, so the total cannot reveal it.
    """
    check_min_cell(min_cell)
    out = df.with_columns(((pl.col(n_col) > 0) & (pl.col(n_col) < min_cell)).alias("suppressed"))
    if not has_total:
        return out
    keys = by or []
    out = out.with_row_index("_r")
    primary = out.group_by(keys or pl.lit(1)).agg(pl.col("suppressed").sum().alias("_n_sup")) if keys else None
    if keys:
        out = out.join(primary, on=keys, how="left")
    else:
        out = out.with_columns(pl.col("suppressed").sum().alias("_n_sup"))
    candidates = out.filter((pl.col("_n_sup") == 1) & ~pl.col("suppressed") & (pl.col(n_col) > 0))
    second = (
        candidates.sort(n_col).group_by(keys, maintain_order=True).first() if keys else candidates.sort(n_col).head(1)
    )
    return out.with_columns(pl.col("suppressed") | pl.col("_r").is_in(second.get_column("_r").to_list())).drop(
        "_r", "_n_sup"
    )


def fmt_int(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{round(value):,}".replace(",", "\u00a0")


def fmt_num(value: float | None, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,.{decimals}f}".replace(",", "\u00a0").replace(".", ",")


def fmt_pct(value: float | None, decimals: int = 0) -> str:
    """0.256 -> '26 %' (Swedish style: comma decimals, space before %)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return fmt_num(100 * value, decimals) + "\u00a0%"


def fmt_ci(lo: float | None, hi: float | None, decimals: int = 0) -> str:
    if lo is None or hi is None:
        return MISSING
    return f"{fmt_pct(lo, decimals)}–{fmt_pct(hi, decimals)}"
