"""An outside attack on a report's published tables (`reports/<year>/tables/*.csv`).

Written from what the tables say, not from `pipelines.analysis.disclosure`: an evaluator who gets
the CSV files knows that district rows add up to the year's total, that the districts of
the attrition table are the same pupils as the enrolment table, that gender rows and
district rows add up to the overall attrition figures, and that Samtliga = Flickor +
Pojkar. For every `..` cell, an integer program finds the smallest and largest value
consistent with all of that; zeros are hidden too, so a hidden count may be 0.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

HIDDEN = ".."


def read(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return list(csv.reader(line for line in lines if not line.startswith("# ")))[1:]


def band(text: str) -> tuple[float, float] | None:
    """ "285–330" or "≥ 136" (an interval the report shows for a hidden count)."""
    t = text.replace("\u00a0", "").replace(" ", "")
    if m := re.fullmatch(r"(\d+)–(\d+)", t):
        return float(m.group(1)), float(m.group(2))
    if m := re.fullmatch(r"≥(\d+)", t):
        return float(m.group(1)), np.inf
    return None


def number(text: str) -> int | None:
    text = text.replace("\u00a0", "").replace(" ", "")
    return int(text) if text.lstrip("-").isdigit() else None


class Attack:
    def __init__(self) -> None:
        self.known: dict[tuple, int] = {}
        self.hidden: set[tuple] = set()
        self.eqs: list[tuple[list[tuple], list[tuple], bool]] = []  # plus, minus, equality (else plus <= minus)
        self.bounds: list[tuple[tuple, float, float]] = []  # a cell shown as an interval

    def cell(self, name: tuple, text: str) -> tuple | None:
        if (b := band(text)) is not None:  # a hidden count shown as the interval its neighbours give
            lo, hi = b
            self.cell(name, HIDDEN)
            self.bounds.append((name, lo, hi))
            return name
        if text == HIDDEN:
            if name in self.known:
                raise AssertionError(f"{name} is shown in one table and hidden in another")
            self.hidden.add(name)
            return name
        value = number(text)
        if value is None:
            return None
        if name in self.known and self.known[name] != value:
            raise AssertionError(f"{name} is {self.known[name]} in one table and {value} in another")
        self.hidden.discard(name)
        self.known[name] = value
        return name

    def eq(self, total: tuple, parts: list[tuple]) -> None:
        self.eqs.append(([total], parts, True))

    def le(self, small: tuple, large: tuple) -> None:
        self.eqs.append(([small], [large], False))

    def ranges(self) -> dict[tuple, tuple[float, float]]:
        cells = sorted(self.hidden, key=repr)
        var = {c: i for i, c in enumerate(cells)}
        rows, lo, hi = [], [], []
        for plus, minus, equal in self.eqs:
            if any(c not in var and c not in self.known for c in plus + minus):
                continue  # a cell no table shows: the relation says nothing here
            row, const = np.zeros(len(var)), 0.0
            for sign, group in ((1, plus), (-1, minus)):
                for c in group:
                    if c in var:
                        row[var[c]] += sign
                    else:
                        const += sign * self.known[c]
            if not row.any():
                continue
            rows.append(row)
            lo.append(-const if equal else -np.inf)
            hi.append(-const)
        for c, low_, high_ in self.bounds:
            row = np.zeros(len(var))
            row[var[c]] = 1
            rows.append(row)
            lo.append(low_)
            hi.append(high_)
        cons = [LinearConstraint(np.array(rows), lo, hi)] if rows else []
        out = {}
        for c, i in var.items():
            obj = np.zeros(len(var))
            obj[i] = 1
            low = milp(obj, integrality=np.ones(len(var)), bounds=Bounds(0, np.inf), constraints=cons)
            high = milp(-obj, integrality=np.ones(len(var)), bounds=Bounds(0, np.inf), constraints=cons)
            assert low.status != 2, "the published tables contradict the attacker's assumptions"
            out[c] = (low.fun if low.status == 0 else -np.inf, -high.fun if high.status == 0 else np.inf)
        return out


def attack_report(*folders: Path) -> dict[tuple, tuple[float, float]]:
    """Ranges of every hidden cell in the tables of one or more reports of the same year."""
    a = Attack()
    for folder in folders:
        _enrolled(a, folder)
        _attrition(a, folder)
        _eligibility(a, folder)
    return a.ranges()


def _subset(folder: Path) -> str | None:
    """The districts of a subset report's tables (`stadsdelar_<names>/tables`) joined by `+`, as
    its enrolment table names them; None for a full report. A subset report's tables describe
    only the subset's pupils: its totals, genders, grade 9 groups and matches are other cells
    than the full report's, while a district's own pupils are the same cells."""
    if not folder.parent.name.startswith("stadsdelar_"):
        return None
    path = folder / "enrolled.csv"
    rows = read(path) if path.exists() else []
    return "+".join(sorted(r[0] for r in rows if r[0] != "Totalt")) or folder.parent.name


def _enrolled(a: Attack, folder: Path) -> None:
    path = folder / "enrolled.csv"
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[1]]))
    years = header[1:]
    rows = read(path)
    districts = [r[0] for r in rows if r[0] != "Totalt"]
    scope = (
        "all"
        if folder.name == "tables" and not folder.parent.name.startswith("stadsdelar_")
        else "+".join(sorted(districts))
    )
    for r in rows:
        for y, text in zip(years, r[1:], strict=True):
            a.cell(("enrolled", scope if r[0] == "Totalt" else r[0], y), text)
    for y in years:
        a.eq(("enrolled", scope, y), [("enrolled", d, y) for d in districts])
    for d in districts:  # a district's enrolments over the years are its pupils in the attrition table
        a.eq(("pupils", d), [("enrolled", d, y) for y in years])
    # the report's pupils are its enrolments over the years (a subset's: its own cell, see _attrition)
    a.eq(("pupils", "all") if scope == "all" else ("pupils", scope, scope), [("enrolled", scope, y) for y in years])


def _attrition(a: Attack, folder: Path) -> None:
    subset = _subset(folder)
    scope = subset or "all"

    def own(name: tuple) -> tuple:  # a cell of the subset's own population
        return (*name, subset) if subset else name

    steps = folder / "attrition.csv"
    if steps.exists():
        rows = read(steps)
        for name, r in zip(("pupils", "full_term", "baseline", "matched", "complete"), rows, strict=False):
            a.cell(own((name, scope)), r[1])
        for earlier, later in (
            ("pupils", "full_term"),
            ("full_term", "baseline"),
            ("baseline", "matched"),
            ("matched", "complete"),
        ):
            a.le(own((later, scope)), own((earlier, scope)))
    groups = folder / "attrition_by_group.csv"
    if not groups.exists():
        return
    rows = read(groups)
    by_dim: dict[str, list[str]] = {}
    district_dim = "Stadsdel"
    for dim, group, n, matched, complete, _share in rows:
        by_dim.setdefault(dim, []).append(group)
        # a district's pupils (and those with data) are the same pupils in every report of the
        # year; its matches, and a gender's pupils over the subset's districts, are the subset's own
        shared = (lambda c: c) if dim == district_dim else own
        pupils, eligible, in_estimate = shared(("pupils", group)), shared(("matched", group)), own(("complete", group))
        for name, text in ((pupils, n), (eligible, matched), (in_estimate, complete)):
            a.cell(name, text)
        a.le(eligible, pupils)
        a.le(in_estimate, eligible)
    for dim, groups_of_dim in by_dim.items():
        for name in ("pupils", "matched", "complete"):
            shared = dim == district_dim and name != "complete"
            parts = [(name, g) if shared else own((name, g)) for g in groups_of_dim]
            a.eq(own((name, scope)), parts)


def _eligibility(a: Attack, folder: Path) -> None:
    path = folder / "grade9_eligibility.csv"
    if not path.exists():
        return
    scope = _subset(folder) or "all"
    for _measure, group, gender, n, *_ in read(path):
        a.cell(("grade9", scope, group, gender), n)
    for group in {r[1] for r in read(path)}:
        parts = [("grade9", scope, group, "Flickor"), ("grade9", scope, group, "Pojkar")]
        a.eq(("grade9", scope, group, "Samtliga"), parts)


def protected(lo: float, hi: float, min_cell: int) -> bool:
    """What the layer promises a reader's range for a hidden count: at least min_cell wide, or
    inside [0, min_cell), a hidden zero a reader can work out (the layer keeps every other hidden
    count at least min_cell wide from 0, so only a zero's range stays below min_cell)."""
    return hi - lo >= min_cell or (lo <= 0 and hi < min_cell)
