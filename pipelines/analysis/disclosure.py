"""Disclosure control for everything the report publishes: one layer, proven by an audit.

Every published figure is registered here as a polars frame of aggregates. Its count
columns become *cells*, each named by a key that says which population it counts
(`key("enrolled", district="Farsta", year=2015)`); the same key in two tables is the same
cell. Linkages between cells are linear relations: a margin equals the sum of its parts,
a numerator is at most its denominator, a step of attrition at most the one before.

`Publication.protect()` then
1. hides every count with 0 < n < min_cell (primary suppression; the domain rules'
   Skolverket `..`), and every cell a previous publication of the same year hid;
2. chooses further cells to hide (secondary suppression) over all tables together with a
   mixed-integer program (scipy's HiGHS `milp`): the smallest total of hidden counts such
   that no relation has exactly one unknown cell, in the spirit of tau-ARGUS / sdcTable;
3. audits the result as an attacker would: for every hidden cell an integer program finds
   the smallest and largest value consistent with everything published. A range narrower
   than min_cell adds a constraint to step 2 and the loop runs again; if nothing more can
   be hidden, `DisclosureError` refuses to publish.

Derived figures (shares, means, intervals, effects) rest on count cells and are hidden
with them, so a hidden count can never be read back from a share. Zero counts are shown
(Skolverket shows 0) and never chosen as secondary cells, so the audit bounds hidden
published cells below by 1.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from pipelines.analysis.suppress import PATTERN_FILE, SUPPRESSED, check_min_cell

ALL = "*"  # a margin: every category of the dimension
Key = tuple  # (population, (dim, value), ...): hashable and JSON-friendly
KeyFn = Callable[[dict], Key | None]
HIDDEN_SUFFIX = "__hidden"


class DisclosureError(RuntimeError):
    """The report cannot be published without revealing a hidden cell."""


def key(population: str, **dims: Any) -> Key:
    """A cell's name: the population it counts and its value of each dimension."""
    return (population, *sorted((k, _plain(v)) for k, v in dims.items()))


def keyed(population: str, *columns: str, **fixed: Any) -> KeyFn:
    """Key function for table rows: dimensions from the row's `columns`, plus constants.
    A column may be renamed as `"dim=column"`."""
    pairs = [c.split("=", 1) if "=" in c else (c, c) for c in columns]

    def fn(row: dict) -> Key:
        return key(population, **fixed, **{dim: row[col] for dim, col in pairs})

    fn.columns = [col for _, col in pairs]  # type: ignore[attr-defined]
    return fn


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _tuple(obj: Any) -> Any:
    return tuple(_tuple(o) for o in obj) if isinstance(obj, list) else obj


def describe_key(k: Any) -> str:
    """`population(dim=value, ...)`; derived cells name the cells they come from."""
    if not isinstance(k, tuple) or not k:
        return str(k)
    if k[0] == "not":
        return f"pupils without {describe_key(k[1])}"
    if k[0] == "rest":
        return f"pupils of {describe_key(k[1])} in no published part"
    if all(isinstance(x, tuple) and len(x) == 2 for x in k[1:]):
        return f"{k[0]}(" + ", ".join(f"{d}={v}" for d, v in k[1:]) + ")"
    return str(k)


@dataclass
class Cell:
    key: Key
    value: int | None  # None: hidden in a previous publication, value unknown here
    internal: bool = False  # never published itself, but follows from published cells
    weight: float = 1.0  # how much hiding this cell costs, relative to its value (see prefer_shown)
    prior: str | None = None  # "published" or "hidden" in a previous publication


@dataclass
class Relation:
    """sum(coef * cell) == 0 (`eq`) or <= 0."""

    terms: list[tuple[int, Key]]
    eq: bool = True


@dataclass
class Table:
    name: str
    frame: pl.DataFrame
    counts: dict[str, KeyFn]
    rests_on: dict[str, list[str]]
    keys: list[Key]  # extra cells every figure of the table rests on (e.g. its sample)
    caption: str
    row_keys: list[dict[str, Key | None]] = field(default_factory=list)


class Publication:
    """The report's figures and their linkages, protected together by `protect()`."""

    def __init__(self, min_cell: int, prior: Path | Sequence[Path] | None = None) -> None:
        self.min_cell = check_min_cell(min_cell)
        self.cells: dict[Key, Cell] = {}
        self.relations: list[Relation] = []
        self.tables: dict[str, Table] = {}
        self.sums: list[tuple[str, str, Any, list[Any] | None]] = []
        self.pending: list[tuple[Key, list[Key], bool]] = []
        for path in [prior] if isinstance(prior, (str, Path)) else prior or []:
            self._load_prior(Path(path))

    # --- registration ---------------------------------------------------------------------
    def count(self, k: Key, value: int, internal: bool = False) -> Key:
        """Register a count cell; the same key registered twice must hold the same value."""
        value = int(value)
        cell = self.cells.get(k)
        if cell is None:
            self.cells[k] = Cell(k, value, internal)
            return k
        cell.internal = cell.internal and internal
        if cell.value is None:  # hidden earlier: the value is known again here
            cell.value = value
        elif cell.value != value and cell.prior:
            raise DisclosureError(
                f"{describe_key(k)} was published as {cell.value} by an earlier report and is {value} now: the data "
                "changed since then, and the two reports together would give the difference away; write the "
                "earlier report again (or remove it) first"
            )
        elif cell.value != value:
            raise ValueError(
                f"{describe_key(k)} is registered as {cell.value} and as {value}: two tables call different "
                "populations by the same name (or the earlier publication used other data)"
            )
        return k

    def equal_sum(self, total: Key, parts: Sequence[Key], gap: bool = True) -> None:
        """total = sum(parts). With `gap`, what the parts leave of the total (pupils in no
        published part) becomes an internal cell, protected like any count."""
        self.pending.append((total, list(parts), gap))

    def prefer_shown(self, k: Key, weight: float = 100.0) -> None:
        """Make hiding a registered cell `weight` times as costly when secondary cells are
        chosen: a count that headline figures rest on gives way to its neighbours."""
        self.cells[k].weight = weight

    def at_most(self, smaller: Key, larger: Key) -> None:
        self.relations.append(Relation([(1, smaller), (-1, larger)], eq=False))

    def share(self, part: Key, whole: Key, complement: bool = True) -> None:
        """`part` counts pupils of `whole` with a property. The complement (pupils without
        it) follows from the two and is protected like any count."""
        if complement and part in self.cells and whole in self.cells:
            rest = ("not", part)
            v_part, v_whole = self.cells[part].value, self.cells[whole].value
            if v_part is not None and v_whole is not None:
                self.count(rest, v_whole - v_part, internal=True)
                self.equal_sum(whole, [part, rest])
                return
        self.at_most(part, whole)

    def sum_over(self, population: str, dim: str, total: Any = ALL, members: Iterable[Any] | None = None) -> None:
        """Every registered cell of `population` whose `dim` is `total` equals the sum of the
        cells that differ only in `dim` (its `members`, default every value registered).
        Resolved at protect time, after all tables are in; a gap becomes an internal cell."""
        self.sums.append((population, dim, total, None if members is None else list(members)))

    def table(
        self,
        name: str,
        frame: pl.DataFrame,
        counts: dict[str, KeyFn],
        rests_on: dict[str, list[str]] | None = None,
        keys: Sequence[Key] = (),
        labels: Sequence[str] = (),
        caption: str = "",
    ) -> None:
        """Register a published frame. `counts`: column -> key of the count it shows (None
        for a row without that count). `rests_on`: figure column -> the count columns it is
        computed from; a figure not named rests on every count of its row. Columns in
        `labels`, string columns and key columns are labels and never hidden."""
        if name in self.tables:
            raise ValueError(f"table {name} is registered twice")
        row_keys = []
        for row in frame.iter_rows(named=True):
            ks: dict[str, Key | None] = {}
            for col, fn in counts.items():
                k = fn(row)
                if k is not None and row[col] is not None and not _nan(row[col]):
                    self.count(k, row[col])
                else:
                    k = None
                ks[col] = k
            row_keys.append(ks)
        for k in keys:
            if k not in self.cells:
                raise ValueError(f"table {name} rests on {describe_key(k)}, which no table registers")
        label_cols = set(labels) | {c for c, t in frame.schema.items() if t in (pl.String, pl.Boolean, pl.Date)}
        for fn in counts.values():
            label_cols |= set(getattr(fn, "columns", []))
        label_cols -= set(counts)
        figures = [c for c in frame.columns if c not in label_cols and c not in counts and c != "suppressed"]
        for c, on in (rests_on or {}).items():
            if c in counts or c not in frame.columns or any(x not in counts for x in on):
                raise ValueError(f"table {name}: {c} must be a figure column resting on count columns (got {on})")
        rests = {c: list(counts) for c in figures} | (rests_on or {})
        self.tables[name] = Table(
            name, frame.drop("suppressed", strict=False), counts, rests, list(keys), caption, row_keys
        )

    # --- protection -----------------------------------------------------------------------
    def _resolve_sums(self) -> None:
        by_pop: dict[str, list[Key]] = defaultdict(list)
        for k in self.cells:
            by_pop[k[0]].append(k)
        for population, dim, total, members in self.sums:
            groups: dict[tuple, dict[Any, Key]] = defaultdict(dict)
            for k in by_pop.get(population, []):
                dims = dict(k[1:])
                if dim in dims:
                    rest = tuple(sorted((d, v) for d, v in dims.items() if d != dim))
                    groups[rest][dims[dim]] = k
            for cells in groups.values():
                if total in cells:
                    wanted = [v for v in cells if v != total] if members is None else members
                    self.pending.append((cells[total], [cells[v] for v in wanted if v in cells], True))
        for total, parts, gap in self.pending:
            parts = [p for p in parts if p != total]  # a total over one member is that member
            if total not in self.cells or not parts or any(p not in self.cells for p in parts):
                continue
            tot = self.cells[total]
            known = [self.cells[p].value for p in parts]
            if gap and (tot.value is None or None in known):
                # Only cells of an earlier publication, hidden there, are unknown here. Whether
                # the parts here cover the total cannot be told, and that publication's own
                # relations (loaded with it, gaps included) already link these cells.
                continue
            if gap:
                rest = tot.value - sum(known)
                if rest < 0:
                    raise ValueError(f"{describe_key(total)} is smaller than the sum of its parts")
                if rest:  # pupils in no published part: an unknown cell
                    parts = [*parts, self.count(("rest", total, tuple(parts)), rest, internal=True)]
            self.relations.append(Relation([(1, total), *((-1, p) for p in parts)]))
        self.pending, self.sums = [], []

    def protect(self, max_rounds: int = 90) -> Protected:
        self._resolve_sums()
        shown = _published_keys(self)
        for k, c in self.cells.items():  # a count in no table is not published: a reader does not know it
            if k not in shown and c.prior is None:
                c.internal = True
        relations = [r for r in self.relations if all(k in self.cells for _, k in r.terms)]
        for r in relations:  # a wrong linkage would make the audit meaningless
            values = [c * self.cells[k].value for c, k in r.terms if self.cells[k].value is not None]
            if len(values) == len(r.terms) and (sum(values) != 0 if r.eq else sum(values) > 0):
                raise ValueError("a registered relation does not hold: " + _describe_relation(r))
        keys = list(self.cells)
        index = {k: i for i, k in enumerate(keys)}
        cells = [self.cells[k] for k in keys]
        m = self.min_cell
        primary = {
            i
            for i, c in enumerate(cells)
            if c.prior != "published" and (c.prior == "hidden" or (c.value is not None and 0 < c.value < m))
        }
        # Internal cells are unknown to a reader, except zeros: conservatively, a reader may
        # know that no pupil is left over (everyone has a gender, say).
        internal = {i for i, c in enumerate(cells) if c.internal and c.value != 0}
        # Cells that stay known: published before, or zero (zeros are shown, never hidden).
        fixed_shown = {i for i, c in enumerate(cells) if c.prior == "published" or c.value == 0}
        rels = [[(coef, index[k]) for coef, k in r.terms] for r in relations]
        eq_rels = [r for r, rel in zip(rels, relations, strict=True) if rel.eq]
        ineq_rels = [r for r, rel in zip(rels, relations, strict=True) if not rel.eq]
        # What earlier publications already give away cannot be protected here, and showing
        # it again reveals nothing new: only the rest needs protecting.
        exposed: set[int] = set()
        if any(c.prior == "published" for c in cells):
            unknown = set(range(len(cells))) - fixed_shown
            exposed = set(_audit(cells, unknown, internal, eq_rels, ineq_rels, m, stop_early=False))
        cuts: list[set[int]] = []
        kept: set[int] = set()
        # A component of hidden cells that recurs from one round to the next is the same
        # integer program: its audit is solved once (see _audit).
        solved: dict[tuple[tuple[int, ...], bool], tuple[dict, dict]] = {}
        for round_no in range(max_rounds):
            hidden = _choose_hidden(cells, primary | kept, internal, fixed_shown, eq_rels, cuts, m, exposed)
            if round_no >= max_rounds // 3:  # slow to settle: from now on only add cells
                kept = hidden - internal
            failures = _audit(
                cells, hidden, internal, eq_rels, ineq_rels, m, stop_early=True, exposed=exposed, solved=solved
            )
            if not failures:
                break
            if os.environ.get("PPSS_DISCLOSURE_DEBUG"):
                print(len(hidden), [describe_key(keys[i]) for i in failures])
            for i, sides in failures.items():
                # One more hidden cell behind a bound that pins the range (either side that can
                # move: widening one is enough, and the cheaper one wins, so a count the
                # headline rests on gives way), else anywhere next to the cell's hidden group.
                union = set().union(*sides) - hidden - fixed_shown - internal
                side_cuts = [union] if union else []
                if not side_cuts:
                    cut = _neighbours(i, internal, rels) - hidden - fixed_shown - internal
                    cut = cut or _neighbours(i, hidden, rels) - hidden - fixed_shown - internal
                    if not cut:
                        raise DisclosureError(
                            f"{describe_key(keys[i])} could be worked out from the published figures and no "
                            "further figure can be hidden to prevent it; the report is not written"
                        )
                    side_cuts = [cut]
                cuts.extend(side_cuts)
        else:
            raise DisclosureError(f"no safe suppression pattern found in {max_rounds} rounds")
        ranges = _audit(
            cells, hidden, internal, eq_rels, ineq_rels, m, False, ranges=True, exposed=exposed, solved=solved
        )
        return Protected(self, keys, hidden, primary - internal, internal, ranges)

    def _load_prior(self, path: Path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for c in data["cells"]:
            k = _tuple(c["key"])
            if k in self.cells:  # in two earlier reports: what either published or hid stands
                known = self.cells[k]
                if known.prior != "published" and c["value"] is not None and not c["internal"]:
                    known.value, known.prior, known.internal = c["value"], "published", False
                elif c["value"] is None and not c["internal"] and known.prior is None:
                    known.prior, known.internal = "hidden", False
                continue
            if c["internal"]:  # never published: an unknown (or a known zero) to later reports too
                self.cells[k] = Cell(k, c["value"], internal=True)
            else:
                self.cells[k] = Cell(k, c["value"], prior="published" if c["value"] is not None else "hidden")
        for r in data["relations"]:
            self.relations.append(Relation([(coef, _tuple(k)) for coef, k in r["terms"]], r["eq"]))


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _describe_relation(r: Relation) -> str:
    lhs = " ".join(f"{'+' if c > 0 else '-'} {describe_key(k)}" for c, k in r.terms)
    return f"{lhs} {'=' if r.eq else '<='} 0"


def _choose_hidden(
    cells: list[Cell],
    primary: set[int],
    internal: set[int],
    fixed_shown: set[int],
    eq_rels: list[list[tuple[int, int]]],
    cuts: list[set[int]],
    min_cell: int,
    exposed: set[int],
) -> set[int]:
    """Secondary suppression as a MILP: binary s_i (1 = hidden), minimise the hidden total.

    In every equation, a hidden cell that needs protection is never the only unknown one:
    sum_{j != i} s_j >= s_i. Cuts from failed audits ask for one more hidden cell among a
    failing cell's neighbours.
    """
    n = len(cells)
    must = primary | internal
    protect = [i for i in range(n) if i not in exposed and (i not in internal or 0 < (cells[i].value or 0) < min_cell)]
    lb, ub = np.zeros(n), np.ones(n)
    lb[list(must)] = 1
    ub[list(fixed_shown - must)] = 0
    # Information loss: the hidden total, plus one per cell so that fewer cells win a tie.
    cost = np.array([0.0 if i in must else (1.0 + (c.value or 0)) * c.weight for i, c in enumerate(cells)])
    rows, cols, vals, lo = [], [], [], []
    r = 0
    protect_set = set(protect)
    for rel in eq_rels:
        members = [i for _, i in rel]
        for i in members:
            if i not in protect_set:
                continue
            for j in members:
                rows.append(r)
                cols.append(j)
                vals.append(-1.0 if j == i else 1.0)
            lo.append(0.0)
            r += 1
    for cut in cuts:
        for j in cut:
            rows.append(r)
            cols.append(j)
            vals.append(1.0)
        lo.append(1.0)
        r += 1
    constraints = []
    if r:
        a = coo_matrix((vals, (rows, cols)), shape=(r, n)).tocsr()
        constraints = [LinearConstraint(a, np.array(lo), np.inf)]
    res = milp(cost, integrality=np.ones(n), bounds=Bounds(lb, ub), constraints=constraints)
    if res.x is None:
        # Infeasible: some hidden cell's relation has nothing left that may be hidden.
        alone = [
            i
            for rel in eq_rels
            for _, i in rel
            if i in must and i in protect_set and all(j == i or ub[j] == 0 for _, j in rel)
        ]
        what = describe_key(cells[alone[0]].key) if alone else "a hidden figure"
        raise DisclosureError(
            f"{what} could be worked out from the published figures (including earlier publications of the "
            "year) and no further figure can be hidden to prevent it; the report is not written"
        )
    return {i for i in range(n) if res.x[i] > 0.5}


def _components(hidden: set[int], rels: list[list[tuple[int, int]]]) -> dict[int, int]:
    """Hidden cells joined by relations: each component is audited on its own."""
    parent = {i: i for i in hidden}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for rel in rels:
        members = [i for _, i in rel if i in hidden]
        for a, b in itertools.pairwise(members):
            parent[find(a)] = find(b)
    return {i: find(i) for i in hidden}


def _audit(
    cells: list[Cell],
    hidden: set[int],
    internal: set[int],
    eq_rels: list[list[tuple[int, int]]],
    ineq_rels: list[list[tuple[int, int]]],
    min_cell: int,
    stop_early: bool,
    ranges: bool = False,
    exposed: set[int] = frozenset(),  # type: ignore[assignment]
    solved: dict[tuple[tuple[int, ...], bool], tuple[dict, dict]] | None = None,
) -> Any:
    """The attacker's integer program: the range of each hidden cell given every published
    value and relation. Returns failing cells, or (with `ranges`) cell -> (min, max).

    A component's program depends only on its hidden cells (everything else is fixed within
    one `protect`), so `solved` keeps each component's answer, by its members and
    `stop_early`, for the next call of the same `protect` (same cells, relations, `exposed`).
    A component that passed with `stop_early` was audited in full and serves either mode."""
    comp = _components(hidden, eq_rels + ineq_rels)
    by_comp: dict[int, list[int]] = defaultdict(list)
    for i, c in comp.items():
        by_comp[c].append(i)
    out: dict[int, tuple[float, float]] = {}
    failures: dict[int, set[int]] = {}
    rels = [(r, True) for r in eq_rels] + [(r, False) for r in ineq_rels]
    touching: dict[int, list[int]] = defaultdict(list)  # cell -> the relations it is in, in order
    for n, (rel, _) in enumerate(rels):
        for i in dict.fromkeys(i for _, i in rel):
            touching[i].append(n)
    for members in by_comp.values():
        ident = tuple(sorted(members))
        if solved is not None:
            hit = solved.get((ident, stop_early))
            if hit is None and not stop_early and (early := solved.get((ident, True))) is not None and not early[1]:
                hit = early
            if hit is not None:
                out.update(hit[0])
                failures.update(hit[1])
                continue
        comp_out: dict[int, tuple[float, float]] = {}
        comp_failures: dict[int, Any] = {}
        var = {i: j for j, i in enumerate(ident)}
        a_rows, lo, hi, used = [], [], [], []
        for n in sorted({n for i in var for n in touching.get(i, ())}):
            rel, eq = rels[n]
            used.append((rel, eq))
            row = np.zeros(len(var))
            const = 0.0
            for coef, i in rel:
                if i in var:
                    row[var[i]] += coef
                else:
                    const += coef * cells[i].value
            a_rows.append(row)
            lo.append(-const if eq else -np.inf)
            hi.append(-const)
        # Hidden published cells are never zero (zeros are shown); internal ones may be.
        lb = np.array([0.0 if i in internal else 1.0 for i in var])
        bounds = Bounds(lb, np.full(len(var), np.inf))
        cons = [LinearConstraint(np.array(a_rows), lo, hi)] if a_rows else []
        needs = [i for i in var if i not in exposed and (i not in internal or 0 < (cells[i].value or 0) < min_cell)]
        for i in needs:
            c = np.zeros(len(var))
            c[var[i]] = 1.0
            low = milp(c, integrality=np.ones(len(var)), bounds=bounds, constraints=cons)
            high = milp(-c, integrality=np.ones(len(var)), bounds=bounds, constraints=cons)
            if low.status == 2 or high.status == 2:
                raise DisclosureError("the published figures contradict each other (infeasible audit)")
            lo_v = low.fun if low.status == 0 else -np.inf
            hi_v = -high.fun if high.status == 0 else np.inf  # status 3: unbounded, nothing to learn
            comp_out[i] = (lo_v, hi_v)
            if hi_v - lo_v < min_cell - 1e-6:
                # Only a side that can move is worth widening: a minimum at 1 (or 0) stays.
                sides = (-1.0,) if lo_v <= lb[var[i]] + 1e-9 else (1.0, -1.0)
                comp_failures[i] = [_binding(c, np.array(a_rows), np.array(hi), lb, used, var, (s,)) for s in sides]
                if stop_early:  # one failure per component is enough to add a constraint
                    break
        if solved is not None:
            solved[(ident, stop_early)] = (comp_out, comp_failures)
        out.update(comp_out)
        failures.update(comp_failures)
    return out if ranges else failures


def _binding(
    c: np.ndarray,
    a: np.ndarray,
    hi: np.ndarray,
    lb: np.ndarray,
    used: list[tuple[list[tuple[int, int]], bool]],
    var: dict[int, int],
    sides: tuple[float, ...],
) -> set[int]:
    """Published cells of the relations that pin a cell's range (non-zero duals of the LP
    relaxation; `sides` 1 for the minimum, -1 for the maximum): hiding one of them is what
    can widen it."""
    eq = np.array([e for _, e in used])
    out: set[int] = set()
    for sign in sides:
        res = linprog(
            sign * c,
            A_ub=a[~eq] if (~eq).any() else None,
            b_ub=hi[~eq] if (~eq).any() else None,
            A_eq=a[eq] if eq.any() else None,
            b_eq=hi[eq] if eq.any() else None,
            bounds=list(zip(lb, [None] * len(lb), strict=True)),
            method="highs",
        )
        if res.status != 0:
            continue
        duals = np.zeros(len(used))
        if eq.any():
            duals[eq] = res.eqlin.marginals
        if (~eq).any():
            duals[~eq] = res.ineqlin.marginals
        for (rel, _), d in zip(used, duals, strict=True):
            if abs(d) > 1e-9:
                out |= {i for _, i in rel if i not in var}
    return out


def _neighbours(i: int, through: set[int], rels: list[list[tuple[int, int]]]) -> set[int]:
    """Cells sharing a relation with `i` or with the cells of `through` joined to it: hiding
    one of them widens `i`'s range. Called first with the internal cells (the relations `i`
    is directly pinned by), then with every hidden cell."""
    comp = _components(through | {i}, rels)
    mine = {j for j, c in comp.items() if c == comp[i]}
    return {j for rel in rels if any(x in mine for _, x in rel) for _, j in rel}


# --- the protected report ----------------------------------------------------------------
class Protected:
    """Protected frames (hidden values null, `<col>__hidden` flags, row `suppressed`), the
    audit's result, and the files behind the report."""

    def __init__(
        self,
        pub: Publication,
        keys: list[Key],
        hidden: set[int],
        primary: set[int],
        internal: set[int],
        ranges: dict[int, tuple[float, float]],
    ) -> None:
        self.pub, self.min_cell = pub, pub.min_cell
        self.hidden_keys = {keys[i] for i in hidden}
        shown_hidden = {keys[i] for i in hidden - internal}
        published = _published_keys(pub)
        self.n_primary = len({keys[i] for i in primary} & published & shown_hidden)
        self.n_secondary = len(published & shown_hidden) - self.n_primary
        self.ranges = {keys[i]: r for i, r in ranges.items()}
        self.audit_passed = all(hi - lo >= self.min_cell for lo, hi in self.ranges.values())

    def is_hidden(self, k: Key | None) -> bool:
        return k is not None and k in self.hidden_keys

    def frame(self, name: str) -> pl.DataFrame:
        t = self.pub.tables[name]
        table_hidden = any(self.is_hidden(k) for k in t.keys)
        flags: dict[str, list[bool]] = {c: [] for c in [*t.counts, *t.rests_on]}
        for ks in t.row_keys:
            for c in t.counts:
                flags[c].append(table_hidden or self.is_hidden(ks[c]))
            for c, on in t.rests_on.items():
                flags[c].append(table_hidden or any(self.is_hidden(ks.get(x)) for x in on))
        out = t.frame
        for c, f in flags.items():
            mask = pl.Series(f"{c}{HIDDEN_SUFFIX}", f, dtype=pl.Boolean)
            out = out.with_columns(mask, pl.when(mask).then(None).otherwise(pl.col(c)).alias(c))
        any_hidden = pl.any_horizontal(pl.col(f"{c}{HIDDEN_SUFFIX}") for c in flags) if flags else pl.lit(table_hidden)
        return out.with_columns(any_hidden.fill_null(False).alias("suppressed"))

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frame(name)

    def row(self, name: str) -> dict:
        """A one-row table (numbers for a sentence) as a dict of protected values."""
        return self.frame(name).row(0, named=True)

    def pattern(self) -> dict:
        """What the report publishes, for later publications of the same year: every cell
        with its value, None where hidden (never a hidden value), unpublished cells as
        unknowns (zeros as known zeros), and every relation."""
        cells = []
        for k, c in sorted(self.pub.cells.items(), key=lambda kc: repr(kc[0])):
            internal = c.internal and c.prior != "published"
            value = None if k in self.hidden_keys or (internal and c.value != 0) else c.value
            cells.append({"key": k, "value": value, "internal": internal})
        relations = [
            {"terms": r.terms, "eq": r.eq} for r in self.pub.relations if all(k in self.pub.cells for _, k in r.terms)
        ]
        return {"min_cell": self.min_cell, "cells": cells, "relations": relations}

    def write_pattern(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / PATTERN_FILE
        path.write_text(json.dumps(self.pattern(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    def methods_text(self) -> str:
        """Swedish paragraph for the methods appendix."""
        state = (
            "Granskningen godkände mönstret: för varje dold uppgift är spannet av värden som stämmer med allt "
            f"som publiceras minst {self.min_cell} brett."
            if self.audit_passed
            else "Granskningen underkände mönstret."
        )
        return (
            f"**Röjandekontroll.** Uppgifter som vilar på färre än {self.min_cell} elever visas som `..` "
            f"(primär sekretess, {self.n_primary} celler). Eftersom tabellerna hänger ihop (summor, fördelningar "
            "på kön, stadsdel, år, urvalsgrund och insats, samma antal i flera tabeller, täljare bakom andelar) "
            f"har ytterligare {self.n_secondary} celler dolts (sekundär sekretess), valda med heltalsprogrammering "
            "över alla tabeller samtidigt så att så lite som möjligt döljs. Innan rapporten skrevs beräknades för "
            "varje dold uppgift det minsta och största värde som är förenligt med allt som publiceras (heltals"
            f"programmering). {state} Samma mönster gäller rapportens tabeller i `tables/`."
        )

    def export(self, name: str, html: str, folder: Path | None) -> str:
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


def _published_keys(pub: Publication) -> set[Key]:
    out: set[Key] = set()
    for t in pub.tables.values():
        for ks in t.row_keys:
            out |= {k for k in ks.values() if k is not None}
    return out


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


__all__ = [
    "ALL",
    "SUPPRESSED",
    "DisclosureError",
    "Protected",
    "Publication",
    "key",
    "keyed",
    "read_table_csv",
]
