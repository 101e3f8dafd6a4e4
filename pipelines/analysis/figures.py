"""Labels for the report's cells: which population a count names, scoped to the report's
year and districts. Labels name cells in messages and lookups (`prefer_shown`, a table's
`keys`); they never link cells: the disclosure layer relates cells by their pupils. The
sections that register figures are `pipelines.report.sections`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.analysis.disclosure import ALL, Key, KeyFn, key, keyed
from pipelines.labels import TOTAL

# Populations whose cells name their district (a district's own, or the subset's marker as
# the total): a subset report's cell of one of them is the full report's cell of the same
# pupils, so the full report's pattern applies to it. Every other population of a subset
# report is a different one (the subset's pupils, comparison schools and matches) and its
# cells carry `subset=<marker>`.
DISTRICT_NAMED = {"enrolled", "district_pupils", "selection_reasons", "interventions", "pupils", "eval_eligible"}


def scoped(year: int, districts: list[str] | None = None) -> tuple[Callable[..., Key], Callable[..., KeyFn]]:
    """Key makers for the populations of the `year` report (on `districts` only, if given).
    Most figures count pupils "up to the end of `year`", so their cells carry `through=year`
    and another year's report names different cells; enrolments per calendar year are the
    same cells in every report."""
    subset = {"subset": subset_marker(districts)} if districts else {}

    def own(population: str) -> dict:
        return {} if population in DISTRICT_NAMED else subset

    def k(population: str, **dims: Any) -> Key:
        if population == "enrolled":  # all years up to `year`: a margin of its own
            return key(population, **(dims | ({"year": through(year)} if dims.get("year") == ALL else {})))
        return key(population, through=year, **dims, **own(population))

    def kd(population: str, *columns: str, **fixed: Any) -> KeyFn:
        return keyed(population, *columns, through=year, **fixed, **own(population))

    return k, kd


def through(year: int) -> str:
    return f"t.o.m. {year}"


def _total_or(value: str, total_key: str) -> str:
    return total_key if value == TOTAL else value


def subset_marker(districts: list[str] | None) -> str:
    """The dimension value of a total over some districts only (a subset report's `Totalt`)."""
    return ALL if not districts else "+".join(sorted(districts))
