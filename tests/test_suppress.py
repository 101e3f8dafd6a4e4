"""Small-cell suppression (domain rules: Skolverket's `..`), on tables built to leak."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.suppress import fmt_ci, fmt_int, fmt_num, fmt_pct, suppress
from pipelines.tables import enrolled_table


def test_primary_suppression_below_min_cell() -> None:
    df = suppress(pl.DataFrame({"g": ["a", "b", "c"], "n": [9, 10, 0]}), "n", 10)
    assert df["suppressed"].to_list() == [True, False, False]


def test_min_cell_never_below_five() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        suppress(pl.DataFrame({"n": [1]}), "n", 4)


def test_lone_suppressed_cell_beside_a_total_gets_a_partner() -> None:
    # total 2015 = 3 + 40 + 12 would give away the 3: the smallest other cell (12) goes too
    df = pl.DataFrame({"year": [2015, 2015, 2015, 2016, 2016], "district": list("abcab"), "n": [3, 40, 12, 30, 25]})
    out = suppress(df, "n", 10, by=["year"], has_total=True)
    assert out.filter(pl.col("year") == 2015)["suppressed"].to_list() == [True, False, True]
    assert not out.filter(pl.col("year") == 2016)["suppressed"].any()


def test_two_suppressed_cells_need_no_third() -> None:
    df = pl.DataFrame({"year": [1, 1, 1], "n": [3, 4, 50]})
    assert suppress(df, "n", 10, by=["year"], has_total=True)["suppressed"].to_list() == [True, True, False]


def test_published_enrolment_table_cannot_be_solved_for_a_suppressed_cell() -> None:
    df = pl.DataFrame({"district": ["Farsta", "Älvsjö", "Skarpnäck"], "year": [2015] * 3, "n_pupils": [4, 25, 11]})
    html = enrolled_table(suppress(df, "n_pupils", 10, by=["year"], has_total=True))
    assert html.count('<td class="num">..</td>') == 2  # 4 and its partner 11
    assert ">40<" in html  # the total is published
    assert ">4<" not in html and ">11<" not in html


def test_swedish_number_format() -> None:
    assert fmt_int(12345) == "12\u00a0345"
    assert fmt_num(3.14159, 2) == "3,14"
    assert fmt_pct(0.256) == "26\u00a0%"
    assert fmt_pct(None) == "."
    assert fmt_ci(0.1, 0.25) == "10\u00a0%–25\u00a0%"
