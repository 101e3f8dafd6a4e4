"""The threshold rule and Swedish number format of published tables (domain rules)."""

from __future__ import annotations

import pytest

from pipelines.analysis.suppress import check_min_cell, fmt_ci, fmt_int, fmt_num, fmt_pct


def test_min_cell_never_below_five() -> None:
    assert check_min_cell(5) == 5
    with pytest.raises(ValueError, match="at least 5"):
        check_min_cell(4)


def test_swedish_number_format() -> None:
    assert fmt_int(12345) == "12\u00a0345"
    assert fmt_num(3.14159, 2) == "3,14"
    assert fmt_pct(0.256) == "26\u00a0%"
    assert fmt_pct(None) == "."
    assert fmt_ci(0.1, 0.25) == "10\u00a0%–25\u00a0%"
