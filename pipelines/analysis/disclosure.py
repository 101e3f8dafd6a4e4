"""Disclosure control for everything a store publishes: one layer, proven by an audit.

Every published count is registered together with the pupils it counts (`<col>__members`,
a list of pupil keys beside the count column). The pupils are the cell's identity: two
cells over the same pupils are one cell, whatever the table, chart or sentence, and no
relation between cells is ever declared by hand. The published sets of the report and of
every earlier publication of the store (`pipelines.analysis.ledger`) partition the pupils
into *atoms* (pupils in exactly the same published sets); each cell is the sum of its atoms.
That linear system is everything a reader can infer from nesting, overlap, margins,
differences and sibling reports, and more (it knows the true structure).

`Publication.protect()` then
1. hides every count below min_cell, zeros included (primary suppression, the domain
   rules' Skolverket `..`), and every cell an earlier publication of the store hid;
2. audits as an attacker would: for every hidden cell an integer program (scipy's HiGHS
   `milp`) finds the smallest and largest value consistent with everything ever published;
   for every *derived* count (the difference of two nested published sets, or what a
   published set holds beyond the published sets inside it) with 1 to min_cell - 1 pupils,
   the same. A hidden cell must keep a range at least min_cell wide; a derived count must
   keep one at least min_cell wide or one that reaches 0 (a reader cannot tell that anyone
   is there). See docs/domain-rules.md, "Röjandekontroll";
3. hides further cells (secondary suppression) where the audit fails: a MILP picks the
   cheapest set of published cells such that every failure so far has one more hidden cell
   among those that pin it (LP duals), and the audit runs again; if nothing more can be
   hidden, `DisclosureError` refuses to publish.

Figures (shares, means, intervals, effects) rest on count cells and are hidden with them.
Each figure is also recorded with the sets it rests on: two publications of one store that
give one population and measure two different values are refused (`DisclosureError`).
Zero counts are hidden like other small counts, so a hidden count may be 0: were zeros shown,
every hidden count would be known to be at least 1, and a later, finer report's hidden counts
would narrow an earlier report's (attack round 2, F3). A hidden zero needs no range of its own.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import math
import os
import sys
import time as _time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from pipelines.analysis.ledger import Ledger, Prior
from pipelines.analysis.suppress import SUPPRESSED, check_min_cell

ALL = "*"  # a margin: every category of the dimension
Key = tuple  # a cell's label: (population, (dim, value), ...), for messages and lookups
KeyFn = Callable[[dict], Key | None]
HIDDEN_SUFFIX = "__hidden"
MEMBERS_SUFFIX = "__members"
EMPTY = "empty"  # the identity of every count of no pupils
# Figures equal to this relative precision are one number (estimates pass through floats).
SAME_VALUE_RTOL = 1e-9


class DisclosureError(RuntimeError):
    """The report cannot be published without revealing a hidden cell."""


def members(column: str) -> str:
    """The column beside a count column that lists the pupils it counts."""
    return column + MEMBERS_SUFFIX


def key(population: str, **dims: Any) -> Key:
    """A cell's label: the population it counts and its value of each dimension."""
    return (population, *sorted((k, _plain(v)) for k, v in dims.items()))


def keyed(population: str, *columns: str, **fixed: Any) -> KeyFn:
    """Label function for table rows: dimensions from the row's `columns`, plus constants.
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


def describe_key(k: Any) -> str:
    """`population(dim=value, ...)`."""
    if isinstance(k, tuple) and k and all(isinstance(x, tuple) and len(x) == 2 for x in k[1:]):
        return f"{k[0]}(" + ", ".join(f"{d}={v}" for d, v in k[1:]) + ")"
    return str(k)


@dataclass
class Cell:
    id: str  # the identity of its pupils (set_id); atoms and derived counts: "atom:…", "diff:…"
    label: str
    value: int
    tokens: np.ndarray | None = None  # sorted pupil tokens (published and prior cells)
    internal: bool = False  # derived: never published itself, but follows from published cells
    weight: float = 1.0  # how much hiding this cell costs, relative to its value (see prefer_shown)
    prior: str | None = None  # "published" or "hidden" in an earlier publication of the store
    current: bool = False  # published (shown or hidden) by this publication
    families: set[str] = field(default_factory=set)  # the populations its labels name (margins and parts)
    # The width its range must keep: this publication's min_cell for its own new counts; for a
    # count earlier publications hid, the highest min_cell among them (their promise: a later
    # report cannot widen what they pinned); for a derived count, the highest of the cells it
    # is derived with (set by _System.build).
    need: int = 0


@dataclass
class Table:
    name: str
    frame: pl.DataFrame
    counts: list[str]
    rests_on: dict[str, list[str]]
    keys: list[str]  # cells every figure of the table rests on (e.g. its sample)
    caption: str
    row_ids: list[dict[str, str | None]] = field(default_factory=list)
    measures: dict[str, Callable[[dict], str]] = field(default_factory=dict)


def set_id(tokens: np.ndarray) -> str:
    if len(tokens) == 0:
        return EMPTY
    return hashlib.blake2b(np.ascontiguousarray(tokens, dtype=np.uint64).tobytes(), digest_size=12).hexdigest()


class Publication:
    """A publication's figures, protected together with every earlier one of the store."""

    def __init__(self, min_cell: int, ledger: Ledger | None = None, what: str = "publikation", **meta: Any) -> None:
        self.min_cell = check_min_cell(min_cell)
        self.ledger = ledger
        self.meta = {"what": what, "min_cell": self.min_cell, **meta}
        self._salt = ledger.salt if ledger is not None else b"ppss-no-ledger"
        self._tokens = pl.DataFrame(schema={"key": pl.String, "token": pl.UInt64})
        self.cells: dict[str, Cell] = {}
        self.labels: dict[Key, str] = {}  # label -> cell id
        self.tables: dict[str, Table] = {}

    # --- registration ---------------------------------------------------------------------
    def tokens(self, keys: Sequence[str]) -> np.ndarray:
        """Pupil keys as the ledger's tokens (a keyed hash), sorted and unique."""
        if not len(keys):
            return np.empty(0, dtype=np.uint64)
        wanted = pl.DataFrame({"key": pl.Series(keys, dtype=pl.String)}).unique()
        return np.sort(self._map(wanted)["token"].to_numpy())

    def _map(self, keys: pl.DataFrame) -> pl.DataFrame:
        """`keys` (a column `key`) joined with their tokens; each key is hashed once per
        publication (BLAKE2b with the ledger's salt), a whole column at a time."""
        new = keys.select("key").unique().join(self._tokens, on="key", how="anti")["key"].to_list()
        if new:
            salt = self._salt[:64]
            hashed = [
                int.from_bytes(hashlib.blake2b(k.encode("utf-8"), key=salt, digest_size=8).digest(), "little")
                for k in new
            ]
            added = pl.DataFrame({"key": new, "token": pl.Series(hashed, dtype=pl.UInt64)})
            self._tokens = pl.concat([self._tokens, added])
        return keys.join(self._tokens, on="key")

    def _row_tokens(self, frame: pl.DataFrame, col: str) -> list[np.ndarray]:
        """Each row's pupils of a count column as sorted unique tokens (one join per column)."""
        pupils = (
            frame.select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
                pl.col(members(col)).cast(pl.List(pl.String)).alias("key"),  # an all-empty column has no type
            )
            .explode("key")
            .drop_nulls("key")
        )
        grouped = self._map(pupils).group_by("_row").agg(pl.col("token").unique().sort())
        out = [np.empty(0, dtype=np.uint64)] * frame.height
        for r, toks in zip(grouped["_row"].to_list(), grouped["token"].to_list(), strict=True):
            out[r] = np.asarray(toks, dtype=np.uint64)
        return out

    def count(
        self, label: Key, pupils: Sequence[str], value: int | None = None, tokens: np.ndarray | None = None
    ) -> str:
        """Register a count of `pupils` (pupil keys, or their `tokens`); returns the cell's identity."""
        toks = tokens if tokens is not None else self.tokens(list(pupils))
        if value is not None and int(value) != len(toks):
            raise ValueError(f"{describe_key(label)} shows {value} but counts {len(toks)} distinct pupils")
        cid = set_id(toks)
        known = self.labels.get(label)
        if known is not None and known != cid:
            raise ValueError(
                f"{describe_key(label)} names two different groups of pupils: two tables call different "
                "populations by the same name"
            )
        self.labels[label] = cid
        if cid not in self.cells:
            self.cells[cid] = Cell(cid, describe_key(label), len(toks), toks, current=True)
        self.cells[cid].families |= _families(label)
        return cid

    def prefer_shown(self, label: Key, weight: float = 100.0) -> None:
        """Make hiding a registered cell `weight` times as costly when secondary cells are
        chosen: a count that headline figures rest on gives way to its neighbours."""
        self.cells[self.labels[label]].weight = weight

    def table(
        self,
        name: str,
        frame: pl.DataFrame,
        counts: dict[str, KeyFn],
        rests_on: dict[str, list[str]] | None = None,
        keys: Sequence[Key] = (),
        labels: Sequence[str] = (),
        caption: str = "",
        measures: dict[str, Callable[[dict], str] | tuple[Callable[[dict], str], list[str]] | None] | None = None,
    ) -> None:
        """Register a published frame. `counts`: count column -> label of the count it shows
        (None for a row without that count); each count column has its pupils beside it in
        `<col>__members`. `rests_on`: figure column -> the count columns it is computed
        from; a figure not named rests on every count of its row. Columns in `labels`,
        string, boolean and date columns and label columns are labels and never hidden.
        `measures`: figure column -> the name of what it measures for a row (default: the
        table, column and row labels), optionally with the count columns whose pupils it
        describes (default: those it rests on), so that the same measure of the same pupils
        in another table or publication must have the same value; None for a figure that is
        not a property of its pupils alone (a q-value depends on the other tests)."""
        if name in self.tables:
            raise ValueError(f"table {name} is registered twice")
        missing = [c for c in counts if members(c) not in frame.columns]
        if missing:
            raise ValueError(f"table {name}: count column(s) {missing} have no pupils beside them ({members('…')})")
        row_tokens = {col: self._row_tokens(frame, col) for col in counts}
        row_ids = []
        for n, row in enumerate(frame.drop([members(c) for c in counts]).iter_rows(named=True)):
            ids: dict[str, str | None] = {}
            for col, fn in counts.items():
                label = fn(row)
                value = row[col]
                if label is None or value is None or _nan(value):
                    ids[col] = None
                    continue
                ids[col] = self.count(label, (), value, tokens=row_tokens[col][n])
            row_ids.append(ids)
        key_ids = []
        for k in keys:
            if k not in self.labels:
                raise ValueError(f"table {name} rests on {describe_key(k)}, which no table registers")
            key_ids.append(self.labels[k])
        shown = frame.drop([members(c) for c in counts] + ["suppressed"], strict=False)
        label_cols = set(labels) | {c for c, t in shown.schema.items() if t in (pl.String, pl.Boolean, pl.Date)}
        for fn in counts.values():
            label_cols |= set(getattr(fn, "columns", []))
        label_cols -= set(counts)
        figures = [c for c in shown.columns if c not in label_cols and c not in counts]
        for c, on in (rests_on or {}).items():
            if c in counts or c not in shown.columns or any(x not in counts for x in on):
                raise ValueError(f"table {name}: {c} must be a figure column resting on count columns (got {on})")
        rests = {c: list(counts) for c in figures} | (rests_on or {})
        self.tables[name] = Table(name, shown, list(counts), rests, key_ids, caption, row_ids, measures or {})
        self._labels_of[name] = sorted((label_cols & set(shown.columns)) - set(rests))

    @property
    def _labels_of(self) -> dict[str, list[str]]:
        if not hasattr(self, "_label_cols"):
            self._label_cols: dict[str, list[str]] = {}
        return self._label_cols

    # --- measures: one number per population ----------------------------------------------
    def _measures(self) -> pl.DataFrame:
        """Every figure with the sets it rests on (hidden flags filled in by Protected)."""
        rows = []
        for t in self.tables.values():
            label_cols = self._labels_of.get(t.name, [])
            for row, ids in zip(t.frame.iter_rows(named=True), t.row_ids, strict=True):
                for col, on in t.rests_on.items():
                    value = row.get(col)
                    if value is None or not isinstance(value, (int, float)) or _nan(value):
                        continue
                    if col in t.measures and t.measures[col] is None:
                        continue  # not a property of the pupils alone (a q-value depends on the other tests)
                    spec = t.measures.get(col)
                    if isinstance(spec, tuple):  # (name, the counts that say whose measure it is)
                        spec, on = spec
                    sets = sorted({ids[c] for c in on if ids.get(c)} | set(t.keys))
                    if not sets:
                        continue
                    name = (
                        spec(row)
                        if spec is not None
                        else (f"{t.name}.{col}[" + ", ".join(f"{c}={row[c]}" for c in label_cols) + "]")
                    )
                    if self.meta.get("year") is not None:  # a later year's report follows longer
                        name += f" (uppföljningsår {self.meta['year']})"
                    rows.append(
                        {
                            "measure": name,
                            "sets": "+".join(sets),
                            "value": float(value),
                            "col": col,
                            "table": t.name,
                            "on": on,
                        }
                    )
        return pl.DataFrame(
            rows,
            schema={
                "measure": pl.String,
                "sets": pl.String,
                "value": pl.Float64,
                "col": pl.String,
                "table": pl.String,
                "on": pl.List(pl.String),
            },
        )

    def _check_measures(self, prior: Prior, mine: pl.DataFrame) -> None:
        both = mine.join(prior.measures.filter(~pl.col("hidden")), on=["measure", "sets"], suffix="_prior")
        for r in both.iter_rows(named=True):
            a, b = r["value"], r["value_prior"]
            if not math.isclose(a, b, rel_tol=SAME_VALUE_RTOL, abs_tol=1e-12):
                raise DisclosureError(
                    f"{r['measure']} of the same pupils was published as {b:.6g} by an earlier publication of "
                    f"this store and would be {a:.6g} now: one population, two numbers. The store's data "
                    "changed since then, or the figure is computed another way; publish it under another name "
                    "or remove the earlier publication from the ledger ("
                    + str(self.ledger.folder if self.ledger else "")
                    + ")"
                )

    # --- protection -----------------------------------------------------------------------
    def protect(self, max_rounds: int = 60) -> Protected:
        prior = self.ledger.prior() if self.ledger is not None else None
        measures = self._measures()
        if prior is not None:
            self._check_measures(prior, measures)
        cells = self._with_prior(prior)
        system = _System.build(cells, self.min_cell)
        hidden = system.solve(max_rounds)
        prot = Protected(self, system, hidden, measures)
        if self.ledger is not None:
            prot.record()
        return prot

    def _with_prior(self, prior: Prior | None) -> list[Cell]:
        cells = dict(self.cells)
        if prior is not None and prior.cells.height:
            grouped = prior.members.group_by("cell_id").agg(pl.col("token"))
            tokens = {
                r["cell_id"]: np.sort(np.asarray(r["token"], dtype=np.uint64)) for r in grouped.iter_rows(named=True)
            }
            for r in (
                prior.cells.group_by("cell_id")
                .agg(
                    pl.col("label").first(),
                    pl.col("hidden").all(),
                    pl.col("value").drop_nulls().first(),
                    pl.col("min_cell").max(),
                )
                .sort("cell_id")  # a fixed order: the searches' budgets break ties by position
                .iter_rows(named=True)
            ):
                cid = r["cell_id"]
                state = "hidden" if r["hidden"] else "published"  # published anywhere: public
                c = cells.get(cid)
                if c is None:
                    toks = tokens.get(cid, np.empty(0, dtype=np.uint64))
                    cells[cid] = Cell(
                        cid,
                        r["label"],
                        len(toks),
                        toks,
                        prior=state,
                        families={family_of(r["label"])},
                        need=int(r["min_cell"]),
                    )
                else:
                    # Hidden before: held to the promise of the reports that hid it (this one
                    # cannot widen what they pinned, and must not narrow it below their width).
                    c.prior = state
                    c.need = int(r["min_cell"])
        for c in cells.values():
            c.need = c.need or self.min_cell
        return list(cells.values())


def _families(label: Key) -> set[str]:
    """The populations a label names: its population, and its population split by the
    dimensions it fixes (gender rows and district rows of one population are two splits,
    each a margin of its own)."""
    if not (isinstance(label, tuple) and label):
        return {str(label)}
    fixed = [str(d) for d, v in label[1:] if v != ALL]
    return {str(label[0])} | ({f"{label[0]} efter {', '.join(fixed)}"} if fixed else set())


def family_of(label: str) -> str:
    """The population a described label names: `enrolled(district=…)` -> `enrolled`."""
    return label.split("(", 1)[0]


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


# --- the linear system ----------------------------------------------------------------------
@dataclass
class _System:
    """Published cells first, then derived counts, and the relations between them, all
    read off the cells' pupils: the same pupils are one cell (merged at registration);
    B inside A gives A = B + (A without B); published cells of one population that are
    disjoint and inside A give A = their sum + the rest (a margin and its parts); disjoint
    cells of any populations inside A that leave fewer than min_cell of its pupils give the
    same (a count through a year and the years' counts elsewhere); disjoint cells, some
    crossing B, that hold B and fewer than min_cell others give their sum = B + those
    (_crossings); two cells inside A meeting in a published cell give A = P + Q - R + the
    rest (_two_part_unions)."""

    cells: list[Cell]
    eq_rels: list[list[tuple[int, int]]]
    ineq_rels: list[list[tuple[int, int]]]
    n_published: int
    min_cell: int

    @classmethod
    def build(cls, published: list[Cell], min_cell: int) -> _System:
        cells = list(published)
        n_pub = len(cells)
        eq_rels: list[list[tuple[int, int]]] = []
        ineq_rels: list[list[tuple[int, int]]] = []
        nonempty = [i for i in range(n_pub) if cells[i].value > 0]
        if len(nonempty) < 2:
            return cls(cells, eq_rels, ineq_rels, n_pub, min_cell)
        # Pupils x cells, to find nesting and overlap of every pair at once.
        tokens = np.concatenate([cells[i].tokens for i in nonempty])  # type: ignore[misc]
        uniq, col = np.unique(tokens, return_inverse=True)
        rows = np.concatenate([np.full(cells[i].value, n, dtype=np.int64) for n, i in enumerate(nonempty)])
        inc = csr_matrix((np.ones(len(rows)), (rows, col)), shape=(len(nonempty), len(uniq)))
        overlap = (inc @ inc.T).toarray()
        size = np.array([cells[i].value for i in nonempty])
        by_id = {c.id: n for n, c in enumerate(cells)}

        def derived(members: np.ndarray, label: str) -> int:
            """The cell of a derived set (a published cell if it is one)."""
            cid = set_id(members)
            if cid in by_id:
                return by_id[cid]
            by_id[cid] = len(cells)
            cells.append(Cell(cid, label, len(members), members, internal=True))
            return by_id[cid]

        def sum_of_parts(a: int, chosen: list[int], rest_label: str) -> list[tuple[int, int]]:
            """A = its disjoint parts + what it holds beyond them (a derived count, if any)."""
            ai = nonempty[a]
            terms = [(1, ai), *((-1, nonempty[b]) for b in chosen)]
            if size[a] > sum(size[b] for b in chosen):
                covered = np.concatenate([cells[nonempty[b]].tokens for b in chosen])  # type: ignore[misc]
                rest = np.setdiff1d(cells[ai].tokens, covered)  # type: ignore[arg-type]
                terms.append((-1, derived(rest, f"{cells[ai].label} {rest_label}")))
            return terms

        families = [cells[i].families or {family_of(cells[i].label)} for i in nonempty]
        disjoint = overlap == 0
        showable = np.array(
            [cells[i].prior == "published" or (cells[i].prior is None and cells[i].value >= min_cell) for i in nonempty]
        )
        covers: list[tuple[int, int, list[int]]] = []  # (remainder, A, its parts)
        nested = (overlap == size[None, :]) & (size[None, :] < size[:, None])  # [a, b]: b strictly inside a
        # B <= A only where no published C lies between them: the rest follows (transitive).
        between = (nested.astype(np.int32) @ nested.astype(np.int32)) > 0
        # Small differences of nested cells: every covering pair (no published cell between),
        # and the other pairs smallest first up to DERIVED_BUDGET (a high min_cell on a small
        # store makes nearly every pair small; a longer chain's difference is the sum of its
        # covering ones, which are all audited).
        small_pairs = np.argwhere(nested & ((size[:, None] - size[None, :]) < min_cell))
        far = [(size[a] - size[b], a, b) for a, b in small_pairs if between[a, b]]
        kept_far = {(a, b) for _, a, b in sorted(far)[: max(0, DERIVED_BUDGET - (len(small_pairs) - len(far)))]}
        for a in range(len(nonempty)):
            inside = np.flatnonzero(nested[a])
            ai = nonempty[a]
            for b in inside:  # A = B + (A without B); a small difference is a count to protect
                diff = size[a] - size[b]
                if between[a, b] and (diff >= min_cell or (a, b) not in kept_far):
                    continue
                if diff < min_cell:
                    d = derived(
                        np.setdiff1d(cells[ai].tokens, cells[nonempty[b]].tokens, assume_unique=True),  # type: ignore[arg-type]
                        f"{cells[ai].label} utan {cells[nonempty[b]].label}",
                    )
                    eq_rels.append([(1, ai), (-1, nonempty[b]), (-1, d)])
                else:
                    ineq_rels.append([(1, nonempty[b]), (-1, ai)])
            # Two disjoint parts that make up A, whatever their labels: A = B + C.
            for b in inside:
                for c in inside[(size[inside] == size[a] - size[b]) & (inside > b)]:
                    if overlap[b, c] == 0:
                        eq_rels.append([(1, ai), (-1, nonempty[b]), (-1, nonempty[int(c)])])
            # The parts of a margin: cells of one population (any of their labels) inside A.
            groups: dict[str, list[int]] = defaultdict(list)
            for b in inside:
                for f in families[b]:
                    groups[f].append(int(b))
            starts: list[list[int]] = []
            for fam, members_ in groups.items():
                for chosen in _partitions(sorted(members_, key=lambda b: -size[b]), disjoint):
                    starts.append(chosen)
                    if len(chosen) < 2:
                        continue
                    eq_rels.append(sum_of_parts(a, chosen, f"utanför {fam}"))
            # Disjoint parts of any populations and publications (the years' enrolments in one
            # table, the count through the last year in another): a cover leaving fewer than
            # min_cell of A's pupils gives a small remainder.
            # Parts that will show: a small or earlier hidden one is hidden anyway, and the
            # remainder takes it in (without them, small cells would have covers by the hundred).
            parts = inside[showable[inside]]
            starts = [[b for b in s if showable[b]] for s in starts]
            for chosen in _covers(parts, size, disjoint, size[a], min_cell, [s for s in starts if s]):
                covers.append((size[a] - sum(int(size[b]) for b in chosen), a, chosen))
        current = np.array([cells[i].current for i in nonempty])  # cells of this publication
        # A large difference of nested cells that lies inside a third cell with few others: the
        # pupils enrolled in 2016 with a selection reason (through 2016 less through 2015) are 17
        # of the district's 21 enrolled in 2016, so the 4 without it follow.
        for _, a, b, e in _differences_inside(overlap, size, nested, between, min_cell, current):
            ai, bi, ei = nonempty[a], nonempty[b], nonempty[e]
            dt = np.setdiff1d(cells[ai].tokens, cells[bi].tokens, assume_unique=True)  # type: ignore[arg-type]
            d = derived(dt, f"{cells[ai].label} utan {cells[bi].label}")
            x = derived(
                np.setdiff1d(cells[ei].tokens, dt, assume_unique=True),  # type: ignore[arg-type]
                f"{cells[ei].label} utanför {cells[d].label}",
            )
            eq_rels.append([(1, ai), (-1, bi), (-1, d)])
            eq_rels.append([(1, ei), (-1, d), (-1, x)])
        # Smallest remainders first, up to COVER_BUDGET (each may add a derived count).
        for _, a, chosen in sorted(covers)[:COVER_BUDGET]:
            eq_rels.append(sum_of_parts(a, chosen, "utanför sina delar"))
        # B inside disjoint cells that hold few pupils besides, one or more of them crossing B:
        # their sum = B + the others (a small derived count).
        for b, chosen, _ in _crossings(overlap, size, nested, disjoint, min_cell, current):
            bi = nonempty[b]
            held = np.concatenate([cells[nonempty[p]].tokens for p in chosen])  # type: ignore[misc]
            d = derived(
                np.setdiff1d(held, cells[bi].tokens),  # type: ignore[arg-type]
                f"{' och '.join(cells[nonempty[p]].label for p in chosen[:3])} utanför {cells[bi].label}",
            )
            eq_rels.append([*((1, nonempty[p]) for p in chosen), (-1, bi), (-1, d)])
        # Two cells inside A that overlap in a published cell: A = P + Q - R + (A beyond both).
        for a, p, q, r in _two_part_unions(overlap, size, nested, min_cell, current, showable):
            ai, pi, qi, ri = nonempty[a], nonempty[p], nonempty[q], nonempty[r]
            both = np.union1d(cells[pi].tokens, cells[qi].tokens)  # type: ignore[arg-type]
            x = derived(
                np.setdiff1d(cells[ai].tokens, both, assume_unique=True),  # type: ignore[arg-type]
                f"{cells[ai].label} utanför {cells[pi].label} och {cells[qi].label}",
            )
            eq_rels.append([(1, ai), (-1, pi), (-1, qi), (1, ri), (-1, x)])
        ineq_rels += _derived_nesting(cells, nonempty, n_pub, min_cell)
        unique_rels = {tuple(sorted(r)): r for r in eq_rels}
        # A derived count keeps the widest promise of the published cells it is derived with:
        # one that rests only on earlier publications at min_cell 10 is held to 10 by a
        # publication at 37 (which cannot widen what they pinned), one beside a cell of this
        # publication to 37.
        for rel in unique_rels.values():
            top = max((cells[i].need for _, i in rel if i < n_pub), default=0)
            for _, i in rel:
                if i >= n_pub:
                    cells[i].need = max(cells[i].need, top)
        for c in cells[n_pub:]:
            c.need = c.need or min_cell
        return cls(cells, list(unique_rels.values()), ineq_rels, n_pub, min_cell)

    def solve(self, max_rounds: int) -> set[int]:
        cells = self.cells
        n_pub = self.n_published
        primary = {
            i
            for i in range(n_pub)
            if cells[i].prior != "published" and (cells[i].prior == "hidden" or cells[i].value < cells[i].need)
        }
        internal = {i for i in range(n_pub, len(cells)) if cells[i].value != 0}
        fixed_shown = {i for i in range(n_pub) if cells[i].prior == "published"}
        eq_rels, ineq_rels = self.eq_rels, self.ineq_rels
        # What earlier publications gave away cannot be protected here, and showing it again
        # reveals nothing new: a failure that only their cells pin joins `exposed` (below).
        exposed: set[int] = set()
        earlier = {i for i in range(n_pub) if cells[i].prior == "published"}
        # What earlier publications pin down is public already, however much is
        # hidden now: found to a fixed point, it is never asked to be hidden (pointless) nor
        # counted as protected.
        public = set(fixed_shown)
        given_away: set[int] = set()
        if earlier:
            while True:
                found = set()
                for rel in eq_rels:
                    unknown = [i for _, i in rel if i not in public]
                    if len(unknown) == 1 and any(i in earlier for _, i in rel):
                        found.add(unknown[0])
                if not found:
                    break
                public |= found
                given_away |= found
        exposed |= given_away
        derived = {i for i in internal if 0 < cells[i].value < cells[i].need}
        if os.environ.get("PPSS_DISCLOSURE_DEBUG"):
            base = primary | internal
            comp = _components(base, eq_rels + ineq_rels)
            sizes = sorted(collections.Counter(comp.values()).values())[-3:]
            print(
                f"cells {len(cells)} (published {n_pub}), derived {len(derived)}, exposed {len(exposed)}, "
                f"eq {len(eq_rels)}, ineq {len(ineq_rels)}, largest components {sizes}",
                flush=True,
            )
        # Every check is made once with only the primary cells hidden: what passes then passes
        # whatever else is hidden (hiding only widens what a reader can infer), so later rounds
        # audit only what failed here and the secondary cells they hide.
        cuts: list[set[int]] = []

        def add_cuts(failures: dict, hidden: set[int]) -> None:
            for i, sides in failures.items():
                union = set().union(*sides) - hidden - fixed_shown - internal - given_away
                if not union and set().union(*sides) & (earlier | given_away):
                    exposed.add(i)  # given away by an earlier publication
                    continue
                if not union:
                    raise DisclosureError(
                        f"{cells[i].label} could be worked out from the published figures (including earlier "
                        "publications of the store) and no further figure can be hidden to prevent it; "
                        "the report is not written"
                    )
                cuts.append(union)

        # A small derived count is pinned while every published cell of its relation shows:
        # one of them is hidden from the start (what the audit would ask for round after round).
        # (Only relations of published cells: one that holds another derived count is the
        # audit's to judge, as that count may rest on this publication's cells.)
        small = {i for i in internal if 0 < cells[i].value < cells[i].need}
        add_cuts(
            {
                i: [{j for _, j in rel if j != i}]
                for rel in eq_rels
                for _, i in rel
                if i in small and not any(j in internal and j != i for _, j in rel)
            },
            set(),
        )
        # Hidden cells only accumulate from round to round, so a check passed once stays passed
        # (hiding more only widens what a reader can infer): each is made until it passes.
        settled: dict[int, tuple[float, float]] = {}
        kept: set[int] = set()
        passed: set[int] = set()
        # Hidden zeros a reader can work out: every other hidden count keeps a range at least
        # min_cell wide from 0, so a hidden count whose range stays below min_cell is 0. The
        # audit then holds it at 0 (and checks again what passed with it free).
        known_zero: set[int] = set()
        for round_no in range(max_rounds):
            hidden = _choose_hidden(
                cells, primary | kept, internal, fixed_shown, eq_rels, cuts, exposed | passed | internal
            )
            kept = hidden - internal
            ranges: dict[int, tuple[float, float]] = {}
            audited = hidden - known_zero
            failures = _audit(
                cells,
                audited,
                internal,
                eq_rels,
                ineq_rels,
                stop_early=False,
                exposed=exposed | passed,
                ranges_out=ranges,
            )
            checked = {
                i
                for i in hidden
                if i not in exposed | passed
                and cells[i].value > 0
                and (i not in internal or cells[i].value < cells[i].need)
            }
            passed |= checked - set(failures)
            settled |= {i: r for i, r in ranges.items() if i not in failures}
            if os.environ.get("PPSS_DISCLOSURE_DEBUG"):
                print(round_no, len(hidden - internal), len(checked), len(failures), _time.time(), flush=True)
            if not failures:
                zeros = {i for i in audited if i < n_pub and cells[i].value == 0}
                if zeros:
                    zr = _audit(cells, audited, internal, eq_rels, ineq_rels, stop_early=False, ranges=True, only=zeros)
                    deduced = {i for i in zeros if zr.get(i, (0.0, np.inf))[1] < cells[i].need - 1e-6}
                    if deduced:
                        known_zero |= deduced
                        passed.clear()
                        continue
                break
            add_cuts(failures, hidden)
        else:
            raise DisclosureError(f"no safe suppression pattern found in {max_rounds} rounds")
        self.exposed = exposed
        self.ranges = {i: r for i, r in settled.items() if i in hidden}
        return hidden


def _choose_hidden(
    cells: list[Cell],
    primary: set[int],
    internal: set[int],
    fixed_shown: set[int],
    eq_rels: list[list[tuple[int, int]]],
    cuts: list[set[int]],
    exposed: set[int],
) -> set[int]:
    """Secondary suppression as a MILP: binary s_i (1 = hidden), minimise the hidden total.

    In every equation, a hidden cell that needs protection is never the only unknown one:
    sum_{j != i} s_j >= s_i. Cuts from failed audits ask for one more hidden cell among a
    failing cell's neighbours.
    """
    n = len(cells)
    must = primary | internal
    protect = [
        i
        for i in range(n)
        if i not in exposed and (cells[i].value or 0) > 0 and (i not in internal or cells[i].value < cells[i].need)
    ]
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
        if os.environ.get("PPSS_DISCLOSURE_DEBUG"):
            print("milp", res.status, res.message, int((lb > ub).sum()), flush=True)
        # Infeasible: some hidden cell's relation has nothing left that may be hidden.
        alone = [
            i
            for rel in eq_rels
            for _, i in rel
            if i in must and i in protect_set and all(j == i or ub[j] == 0 for _, j in rel)
        ]
        what = cells[alone[0]].label if alone else "a hidden figure"
        raise DisclosureError(
            f"{what} could be worked out from the published figures (including earlier publications of the "
            "year) and no further figure can be hidden to prevent it; the report is not written"
        )
    return {i for i in range(n) if res.x[i] > 0.5}


def _derived_nesting(cells: list[Cell], nonempty: list[int], n_pub: int, min_cell: int) -> list[list[tuple[int, int]]]:
    """B <= A for nested sets where one of them is a derived count: the part of Farsta +
    Älvsjö's eligible boys beyond Farsta's lies inside the same part of their boys with grades.
    Only covering pairs (no cell between them; the rest follows) that differ by fewer than
    min_cell pupils (a wider gap pins nothing), the closest NESTING_BUDGET: at min_cell 37 a
    district report beside the full one has thousands of derived counts, and every pair
    joined the audit's components into programs that ran for many minutes."""
    extra = [i for i in range(n_pub, len(cells)) if cells[i].value > 0]
    if not extra:
        return []
    every = nonempty + extra
    tokens = np.concatenate([cells[i].tokens for i in every])  # type: ignore[misc]
    _, col = np.unique(tokens, return_inverse=True)
    rows = np.concatenate([np.full(cells[i].value, n, dtype=np.int64) for n, i in enumerate(every)])
    inc = csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, col)), shape=(len(every), int(col.max()) + 1))
    overlap = (inc @ inc.T).tocoo()
    size = np.array([cells[i].value for i in every])
    a, b = overlap.row, overlap.col
    keep = (overlap.data == size[b]) & (size[b] < size[a])  # b strictly inside a
    if not keep.any():
        return []
    nested = csr_matrix((np.ones(int(keep.sum()), dtype=np.int32), (a[keep], b[keep])), shape=overlap.shape)
    xs, ys = a[keep], b[keep]
    direct = np.asarray((nested @ nested).tocsr()[xs, ys]).ravel() == 0
    idx = np.asarray(every)
    gap = size[xs] - size[ys]
    ok = direct & ((idx[xs] >= n_pub) | (idx[ys] >= n_pub)) & (gap < min_cell)
    order = np.argsort(gap[ok], kind="stable")[:NESTING_BUDGET]
    return [[(1, int(idx[y])), (-1, int(idx[x]))] for x, y in zip(xs[ok][order], ys[ok][order], strict=True)]


NESTING_BUDGET = 300


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
    stop_early: bool,
    ranges: bool = False,
    exposed: set[int] = frozenset(),  # type: ignore[assignment]
    solved: dict[tuple[tuple[int, ...], bool], tuple[dict, dict]] | None = None,
    only: set[int] | None = None,
    ranges_out: dict[int, tuple[float, float]] | None = None,
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
        # Any hidden count may be 0: zeros are hidden too.
        lb = np.zeros(len(var))
        eq_mask = np.array([e for _, e in used], dtype=bool)
        dense = np.array(a_rows) if a_rows else np.zeros((0, len(var)))
        a_eq = csr_matrix(dense[eq_mask]) if eq_mask.any() else None
        a_ub = csr_matrix(dense[~eq_mask]) if (~eq_mask).any() else None
        b_eq, b_ub = np.array(hi)[eq_mask], np.array(hi)[~eq_mask]
        needs = [
            i
            for i in var
            if (only is None or i in only)
            and i not in exposed
            and ((cells[i].value or 0) > 0 or only is not None)  # a zero only when asked (solve)
            and (i not in internal or cells[i].value < cells[i].need)
        ]
        # Points a reader cannot rule out, from a few programs with spread-out objectives: a
        # cell whose values over them already span its `need` (or reach 0, for a derived count)
        # is wide enough without a program of its own.
        prog = _Program(a_eq, b_eq, a_ub, b_ub, lb)
        seen = _explore(needs, var, internal, prog) if len(needs) > EXPLORE_FROM else None
        if seen is not None:
            _refine(seen, needs, var, internal, cells, prog)
        elif needs:
            seen = (np.full(len(var), np.inf), np.full(len(var), -np.inf))
        for i in needs:
            if seen is not None:
                lo_s, hi_s = seen[0][var[i]], seen[1][var[i]]
                if (i in internal and lo_s <= 1e-9) or hi_s - lo_s >= cells[i].need:
                    comp_out[i] = (lo_s, hi_s)
                    continue
            c = np.zeros(len(var))
            c[var[i]] = 1.0
            pinned = [
                rel
                for n in touching.get(i, ())
                if rels[n][1]
                for rel in [rels[n][0]]
                if all(j not in var or j == i for _, j in rel)
            ]
            if pinned:  # an equation whose other cells are all published: the value itself
                true = float(cells[i].value)
                comp_out[i] = (true, true)
                comp_failures[i] = [{j for _, j in rel if j != i} for rel in pinned]
                if stop_early and len(comp_failures) >= FAILURES_PER_ROUND:
                    break
                continue
            lo_v, lo_res = _extreme(c, prog, seen)
            if i in internal and lo_v <= 1e-9 and not ranges:
                continue  # a derived count that may be empty: a reader cannot tell anyone is there
            hi_v, hi_res = _extreme(-c, prog, seen)
            hi_v = -hi_v
            comp_out[i] = (lo_v, hi_v)
            if hi_v - lo_v < cells[i].need - 1e-6 and not (i in internal and lo_v <= 1e-9):
                # Only a side that can move is worth widening: a minimum at 1 (or 0) stays.
                sides = (-1.0,) if lo_v <= lb[var[i]] + 1e-9 else (1.0, -1.0)
                # The published cells of its own relations: hiding one of them widens it. Where
                # those are all fixed, the duals find what pins it further away.
                near = {j for n in touching.get(i, ()) for _, j in rels[n][0] if j not in var}
                if any(cells[j].prior != "published" and cells[j].value != 0 for j in near):
                    comp_failures[i] = [near]
                else:
                    optima = {1.0: lo_res, -1.0: hi_res}
                    comp_failures[i] = [_binding(optima[s], eq_mask, used, var) for s in sides]
                if stop_early and len(comp_failures) >= FAILURES_PER_ROUND:  # enough cuts for the next round
                    break
        if solved is not None:
            solved[(ident, stop_early)] = (comp_out, comp_failures)
        out.update(comp_out)
        if ranges_out is not None:
            ranges_out.update(comp_out)
        failures.update(comp_failures)
    return out if ranges else failures


EXPLORE_FROM = 16  # cells to check in one component before exploring first (see _explore)
EXPLORE_PROGRAMS = 24


class _Program:
    """One component's linear relaxation, kept in HiGHS between objectives: each new objective
    starts from the last optimal basis (a warm start), about nine times faster than solving
    each from scratch (a district report at min_cell 37: 1,113 programs of 1,300 cells).
    An objective HiGHS does not settle that way is solved again from scratch (scipy)."""

    def __init__(self, a_eq: Any, b_eq: np.ndarray, a_ub: Any, b_ub: np.ndarray, lb: np.ndarray) -> None:
        self.args = (a_eq, b_eq, a_ub, b_ub, lb)
        self.n = len(lb)
        self.n_eq = 0 if a_eq is None else a_eq.shape[0]
        parts = [m for m in (a_eq, a_ub) if m is not None]
        a = (vstack(parts) if parts else csr_matrix((0, self.n))).tocsc()
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n, a.shape[0]
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_ = np.asarray(lb, dtype=float)
        lp.col_upper_ = np.full(self.n, inf)
        n_ub = a.shape[0] - self.n_eq
        lp.row_lower_ = np.r_[np.asarray(b_eq, dtype=float)[: self.n_eq], np.full(n_ub, -inf)]
        lp.row_upper_ = np.r_[np.asarray(b_eq, dtype=float)[: self.n_eq], np.asarray(b_ub, dtype=float)[:n_ub]]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        self.highs = _highs()
        self.highs.passModel(lp)
        self.cols = np.arange(self.n, dtype=np.int32)

    def minimize(self, c: np.ndarray) -> tuple[str, float, np.ndarray | None, np.ndarray | None]:
        """("optimal", min c.x, x, the rows' duals: equations first), or ("infeasible" |
        "unbounded", ...)."""
        h = self.highs
        h.changeColsCost(self.n, self.cols, np.asarray(c, dtype=float))
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            sol = h.getSolution()
            return "optimal", h.getInfo().objective_function_value, np.array(sol.col_value), np.array(sol.row_dual)
        if status == highspy.HighsModelStatus.kInfeasible:
            return "infeasible", np.nan, None, None
        if status == highspy.HighsModelStatus.kUnbounded:
            return "unbounded", -np.inf, None, None
        a_eq, b_eq, a_ub, b_ub, lb = self.args  # anything else: from scratch, and the basis reset
        h.clearSolver()
        res = linprog(
            c,
            A_eq=a_eq,
            b_eq=b_eq if a_eq is not None else None,
            A_ub=a_ub,
            b_ub=b_ub if a_ub is not None else None,
            bounds=np.c_[lb, np.full(self.n, np.inf)],
            method="highs",
        )
        if res.status == 2:
            return "infeasible", np.nan, None, None
        if res.status == 3:
            return "unbounded", -np.inf, None, None
        duals = np.r_[
            res.eqlin.marginals if a_eq is not None else [],
            res.ineqlin.marginals if a_ub is not None else [],
        ]
        return "optimal", float(res.fun), res.x, duals


def _highs() -> highspy.Highs:
    """A silent HiGHS. Its banner goes to the C library's stdout when the process makes its
    first solver (in a report's kernel: into the notebook), so that moment has stdout closed."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    h.setOptionValue("output_flag", False)
    # Primal simplex: between objectives only the costs change, so the last optimal basis
    # stays primal feasible. Half the time of the default (dual) on the demo's ninth
    # publication (2013 beside eight others, 11,647 cells in one component: 107 s against
    # 210 s, the same cells hidden).
    h.setOptionValue("simplex_strategy", 4)
    return h


def _explore(
    needs: list[int], var: dict[int, int], internal: set[int], prog: _Program
) -> tuple[np.ndarray, np.ndarray]:
    """Each variable's smallest and largest value over the optima of a few linear programs:
    all cells pushed down, all up, the derived counts down, and random directions (seeded, so
    an audit is repeatable). Every point is feasible, so each span lies inside the reader's
    range: a span wide enough proves the range is."""
    n = len(var)
    rng = np.random.default_rng(2016)
    objectives = [np.ones(n), -np.ones(n)]
    derived = np.zeros(n)
    derived[[var[i] for i in needs if i in internal]] = 1.0
    if derived.any():
        objectives.append(derived)
    objectives += [rng.choice([-1.0, 1.0], size=n) * rng.random(n) for _ in range(EXPLORE_PROGRAMS)]
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    for c in objectives:
        status, _, x, _ = prog.minimize(c)
        if status == "optimal":
            low, high = np.minimum(low, x), np.maximum(high, x)
    return low, high


FAILURES_PER_ROUND = 12  # the audit of a round stops there: each failure adds a cut


REFINE_PROGRAMS = 8


def _differences_inside(
    overlap: np.ndarray,
    size: np.ndarray,
    nested: np.ndarray,
    between: np.ndarray,
    min_cell: int,
    current: np.ndarray,
) -> list[tuple[int, int, int, int]]:
    """(remainder, A, B, E): B inside A (a covering pair at least min_cell apart, whose difference
    is no cell of its own) and A without B inside E, which holds 1 to min_cell - 1 pupils more.
    Only relations with a cell of this publication (what earlier ones alone give was audited
    when they were made), smallest remainder first, up to INSIDE_BUDGET."""
    out = []
    for a, b in np.argwhere(nested & ~between):
        d = size[a] - size[b]
        if d < min_cell:
            continue  # a small difference is a derived count already
        inside = overlap[:, a] - overlap[:, b] == d
        rest = size - d
        mine = current if not (current[a] or current[b]) else np.ones_like(current)
        for e in np.flatnonzero(inside & (rest > 0) & (rest < min_cell) & mine):
            if e != a:
                out.append((int(rest[e]), int(a), int(b), int(e)))
    return sorted(out)[:INSIDE_BUDGET]


INSIDE_BUDGET = 1000  # differences inside a third cell audited at most (see _differences_inside)
DERIVED_BUDGET = 400  # differences of non-covering nested pairs audited at most (see _System.build)
COVER_SEEDS = 16  # largest cells inside A that start a greedy cover (see _covers)
COVER_BUDGET = 400  # covers across populations kept at most, smallest remainder first


PARTITIONS = 4  # greedy partitions per population inside one cell (genders, districts, ...)


def _partitions(members_: list[int], disjoint: np.ndarray) -> list[list[int]]:
    """Greedy sets of pairwise disjoint cells of one population inside a cell, largest first:
    the first from the largest, then one from each largest cell that no set holds yet (one
    population's cells may split it two ways: by gender and by district), at most PARTITIONS."""
    out: list[list[int]] = []
    used: set[int] = set()
    for start in members_:
        if start in used:
            continue
        chosen = [start]
        for b in members_:
            if b != start and all(disjoint[b, c] for c in chosen):
                chosen.append(b)
        out.append(chosen)
        used |= set(chosen)
        if len(out) >= PARTITIONS:
            break
    return out


CROSS_BUDGET = 200  # crossing covers audited at most, smallest excess first (see _crossings)
UNION_BUDGET = 2000  # two-part unions audited at most, smallest excess first (see _two_part_unions)


def _crossings(
    overlap: np.ndarray,
    size: np.ndarray,
    nested: np.ndarray,
    disjoint: np.ndarray,
    min_cell: int,
    current: np.ndarray,
) -> list[tuple[int, list[int], int]]:
    """(B, parts, excess): pairwise disjoint cells, at least one of them crossing B, that
    together hold all of B's pupils and 1 to min_cell - 1 others (the excess). A count
    through October beside the years' counts: the last year crosses it; two districts'
    Mentor pupils beside the Mentor pupils in the estimate: both districts cross it.
    Candidates are read off the overlap matrix at once (a part's pupils outside B must be
    few); only the greedy covers of each B, from each crossing cell and then the largest
    overlap first, are searched one by one (the first that covers B is kept).
    Smallest excess first, at most CROSS_BUDGET; only where B or a crossing cell is of this
    publication (`current`)."""
    outside = size[None, :] - overlap  # [b, p]: pupils of p outside b
    cand = (overlap > 0) & (outside < min_cell) & ~nested.T  # (a part never contains B)
    np.fill_diagonal(cand, False)
    crossing = cand & (outside > 0) & (current[:, None] | current[None, :])
    found: dict[tuple[int, tuple[int, ...]], int] = {}
    # First the exact pairs: what B holds outside a crossing cell H is one published cell P
    # (the pupils through 2016 with an intervention, outside the 2016 enrolments, are those
    # through 2015 with it): B + (H without B) = P + H.
    for b, h in np.argwhere(crossing):
        rest = size[b] - overlap[b, h]
        p = np.flatnonzero(nested[b] & disjoint[h] & (size == rest))
        if p.size:
            found[(int(b), tuple(sorted((int(p[0]), int(h)))))] = int(outside[b, h])
    for b in np.flatnonzero(crossing.any(axis=1)):
        parts = np.flatnonzero(cand[b])
        parts = parts[np.argsort(-overlap[b, parts], kind="stable")]
        seeds = np.flatnonzero(crossing[b])
        # Each crossing cell, fewest outside first, starts a cover (one greedy pass alone
        # is stopped by a large cell that crosses the others, such as a gender's count).
        for seed in seeds[np.argsort(outside[b, seeds], kind="stable")][:COVER_SEEDS]:
            chosen = [int(seed)]
            covered, excess = int(overlap[b, seed]), int(outside[b, seed])
            for p in parts:
                if covered == size[b]:
                    break
                if p == seed or excess + outside[b, p] >= min_cell or not all(disjoint[p, c] for c in chosen):
                    continue
                chosen.append(int(p))
                covered += int(overlap[b, p])
                excess += int(outside[b, p])
            if covered == size[b] and len(chosen) >= 2:
                found[(int(b), tuple(sorted(chosen)))] = excess
                break
    ranked = sorted((excess, b, list(chosen)) for (b, chosen), excess in found.items())
    return [(b, chosen, excess) for excess, b, chosen in ranked[:CROSS_BUDGET]]


def _two_part_unions(
    overlap: np.ndarray,
    size: np.ndarray,
    nested: np.ndarray,
    min_cell: int,
    current: np.ndarray,
    showable: np.ndarray,
) -> list[tuple[int, int, int, int]]:
    """(A, P, Q, R): two overlapping cells inside A whose intersection R is published, so that
    a reader knows their union (P + Q - R) and what A holds beyond it, 1 to min_cell - 1
    pupils (a difference of differences across sibling reports). Per A, every pair of the
    cells inside it at once; R is looked for in order of the excess, smallest first, until
    UNION_BUDGET are found. Only relations with a cell of this publication (`current`):
    what earlier publications alone give was audited when they were made; and only over
    cells that will show (`showable`): one hidden anyway leaves the excess unknown."""
    hits: list[tuple[int, int, int, int]] = []
    for a in np.flatnonzero((nested.sum(axis=1) >= 3) & showable):
        inside = np.flatnonzero(nested[a] & showable)
        ov = overlap[np.ix_(inside, inside)]
        excess = size[a] - size[inside][:, None] - size[inside][None, :] + ov
        sub = nested[np.ix_(inside, inside)]
        mine = current[a] | current[inside][:, None] | current[inside][None, :]
        hit = np.triu((ov > 0) & ~sub & ~sub.T & (excess > 0) & (excess < min_cell) & mine, 1)
        hits += [(int(excess[i, j]), int(a), int(inside[i]), int(inside[j])) for i, j in np.argwhere(hit)]
    found: list[tuple[int, int, int, int]] = []
    for _, a, p, q in sorted(hits):
        r = np.flatnonzero(nested[p] & nested[q] & (size == overlap[p, q]) & showable)
        if r.size:
            found.append((a, p, q, int(r[0])))
            if len(found) >= UNION_BUDGET:
                break
    return found


def _covers(
    inside: np.ndarray, size: np.ndarray, disjoint: np.ndarray, total: int, min_cell: int, starts: list[list[int]]
) -> list[list[int]]:
    """Pairwise disjoint cells inside a cell of `total` pupils that leave fewer than min_cell of
    them out, whatever their populations: from each start (a population's parts, or one of the
    COVER_SEEDS largest cells inside), the largest cells disjoint from all chosen so far. A
    larger cell across the parts (those with data, across the years) would stop a plain
    largest-first pass, so each seed starts one. Sorted and unique, at least two parts each."""
    if len(inside) < 2:
        return []
    sz = size[inside]
    pos = {int(b): n for n, b in enumerate(inside)}
    seeds = [[int(inside[n])] for n in np.argsort(-sz, kind="stable")[:COVER_SEEDS]]
    need = total - min_cell + 1  # pupils a cover must reach
    out: dict[tuple[int, ...], None] = {}
    for start in [*starts, *seeds]:
        chosen = list(start)
        avail = np.ones(len(inside), dtype=bool)
        for b in chosen:
            avail &= disjoint[b, inside]
            avail[pos[b]] = False
        covered = int(size[chosen].sum())
        while avail.any() and covered < total:
            if covered + int(sz[avail].sum()) < need:
                break  # what is left cannot bring the remainder under min_cell
            n = int(np.argmax(np.where(avail, sz, -1)))
            chosen.append(int(inside[n]))
            covered += int(sz[n])
            avail &= disjoint[inside[n], inside]
        if len(chosen) >= 2 and need <= covered <= total:
            out[tuple(sorted(chosen))] = None
    return [list(c) for c in out]


def _refine(
    seen: tuple[np.ndarray, np.ndarray],
    needs: list[int],
    var: dict[int, int],
    internal: set[int],
    cells: list[Cell],
    prog: _Program,
) -> None:
    """Push the cells `_explore` left narrow down and up together (random halves of them), so
    that fewer need a program of their own; widens `seen` in place."""
    low, high = seen
    rng = np.random.default_rng(2017)
    n = len(var)
    for _ in range(REFINE_PROGRAMS // 2):
        open_ = [
            var[i]
            for i in needs
            if not ((i in internal and low[var[i]] <= 1e-9) or high[var[i]] - low[var[i]] >= cells[i].need)
        ]
        if len(open_) < 2:
            return
        half = rng.choice(open_, size=max(1, len(open_) // 2), replace=False)
        for sign in (1.0, -1.0):
            c = np.zeros(n)
            c[half] = sign
            status, _, x, _ = prog.minimize(c)
            if status == "optimal":
                np.minimum(low, x, out=low)
                np.maximum(high, x, out=high)


def _extreme(
    c: np.ndarray, prog: _Program, seen: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[float, np.ndarray | None]:
    """min c.x over what is consistent with everything published: the linear relaxation
    (HiGHS), rounded up to an integer since counts are whole (an audit as tau-ARGUS does it),
    and the optimum's row duals (they say what pins it; None where unbounded).
    The optimum is a point a reader cannot rule out: it widens `seen` (each variable's smallest
    and largest value over known points) in place, so that a later cell whose span over them is
    already wide enough needs no program of its own (a tenth of them on a long ledger).
    HiGHS's integer programs stall on these equality systems (no feasible point in seconds);
    the relaxation's range contains the integer one, and on nested and partitioned sets
    (totally unimodular) the two coincide."""
    status, fun, x, duals = prog.minimize(c)
    if seen is not None and status == "optimal" and x is not None:
        np.minimum(seen[0], x, out=seen[0])
        np.maximum(seen[1], x, out=seen[1])
    if status == "infeasible":
        raise DisclosureError("the published figures contradict each other (infeasible audit)")
    if status == "unbounded":
        return -np.inf, None  # nothing to learn on this side
    return float(np.ceil(fun - 1e-7)), duals


def _binding(
    row_duals: np.ndarray | None, eq: np.ndarray, used: list[tuple[list[tuple[int, int]], bool]], var: dict[int, int]
) -> set[int]:
    """Published cells of the relations that pin a cell's optimum (its row duals from
    `_extreme`, equations first: the minimum, or the maximum as the minimum of -c): the
    non-zero duals of the LP relaxation. Hiding one of them is what can widen the range."""
    out: set[int] = set()
    if row_duals is None:
        return out
    duals = np.zeros(len(used))
    n_eq = int(eq.sum())
    duals[eq] = row_duals[:n_eq]
    duals[~eq] = row_duals[n_eq:]
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


# --- the protected publication ------------------------------------------------------------
class Protected:
    """Protected frames (hidden values null, `<col>__hidden` flags, row `suppressed`) and the
    audit's result; recorded in the store's ledger."""

    def __init__(self, pub: Publication, system: _System, hidden: set[int], measures: pl.DataFrame) -> None:
        self.pub, self.min_cell = pub, pub.min_cell
        cells = system.cells
        n_pub = system.n_published
        self.hidden_ids = {cells[i].id for i in hidden if i < n_pub}
        mine = [c for c in cells[:n_pub] if c.current]
        shown_hidden = [c for c in mine if c.id in self.hidden_ids and c.prior != "hidden"]
        self.n_primary = sum(c.value < self.min_cell for c in shown_hidden)
        self.n_secondary = len(shown_hidden) - self.n_primary
        self.n_prior_hidden = sum(c.prior == "hidden" for c in mine)
        self.n_already_public = sum(c.prior == "published" for c in mine)
        # shown although below min_cell: an earlier publication (at a lower threshold) showed them
        self.n_public_small = sum(c.prior == "published" and 0 < c.value < self.min_cell for c in mine)
        derived = [i for i in range(n_pub, len(cells)) if 0 < cells[i].value < cells[i].need]
        self.n_derived = len(derived)
        ranges = system.ranges
        self.ranges = {cells[i].id: r for i, r in ranges.items() if i < n_pub}
        self.derived_ranges = {cells[i].label: r for i, r in ranges.items() if i >= n_pub}
        # Each hidden count keeps the promise of the publications that hold it: this one's
        # min_cell for its own counts, an earlier threshold for counts only earlier ones hold.
        self.audit_passed = all(hi - lo >= cells[i].need for i, (lo, hi) in ranges.items() if i < n_pub)
        self.lower_promises = sorted({cells[i].need for i in hidden if cells[i].need < self.min_cell})
        self._measures = measures

    def is_hidden(self, cid: str | None) -> bool:
        return cid is not None and cid in self.hidden_ids

    def frame(self, name: str) -> pl.DataFrame:
        t = self.pub.tables[name]
        table_hidden = any(self.is_hidden(k) for k in t.keys)
        flags: dict[str, list[bool]] = {c: [] for c in [*t.counts, *t.rests_on]}
        for ids in t.row_ids:
            for c in t.counts:
                flags[c].append(table_hidden or self.is_hidden(ids[c]))
            for c, on in t.rests_on.items():
                flags[c].append(table_hidden or any(self.is_hidden(ids.get(x)) for x in on))
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

    def hidden_measures(self) -> pl.DataFrame:
        sets_hidden = [any(s in self.hidden_ids for s in sets.split("+")) for sets in self._measures["sets"]]
        return self._measures.with_columns(pl.Series("hidden", sets_hidden, dtype=pl.Boolean))

    def record(self) -> None:
        """Add this publication to the store's ledger: every published cell (its value, or
        null where hidden), its pupils as tokens, and every figure with the sets it rests on."""
        ledger = self.pub.ledger
        if ledger is None:
            return
        mine = [c for c in self.pub.cells.values()]
        cells = pl.DataFrame(
            {
                "cell_id": [c.id for c in mine],
                "label": [c.label for c in mine],
                "value": [None if c.id in self.hidden_ids else c.value for c in mine],
                "hidden": [c.id in self.hidden_ids for c in mine],
            },
            schema={"cell_id": pl.String, "label": pl.String, "value": pl.Int64, "hidden": pl.Boolean},
        )
        nonempty = [c for c in mine if c.tokens is not None and len(c.tokens)]
        members_frame = pl.DataFrame(
            {
                "cell_id": [c.id for c in nonempty for _ in range(len(c.tokens))],  # type: ignore[arg-type]
                "token": np.concatenate([c.tokens for c in nonempty]) if nonempty else np.empty(0, np.uint64),  # type: ignore[misc]
            },
            schema={"cell_id": pl.String, "token": pl.UInt64},
        )
        ledger.record(self.pub.meta, cells, members_frame, self.hidden_measures())

    def methods_text(self) -> str:
        """Swedish paragraph for the methods appendix, stating only what holds."""
        state = (
            "Granskningen godkände mönstret: för varje dold uppgift över noll är spannet av värden som stämmer "
            f"med allt som publicerats ur databasen minst {self.min_cell} brett"
            + (", utom där en tidigare rapport satt en lägre gräns (nedan)." if self.lower_promises else ".")
            if self.audit_passed
            else "Granskningen underkände mönstret."
        )
        earlier = ""
        if self.n_already_public:
            earlier = (
                f" {self.n_already_public} av rapportens antal har redan publicerats i en tidigare rapport ur samma "
                "databas; de är offentliga och räknas inte som skyddade här."
            )
        if self.n_prior_hidden:
            earlier += f" {self.n_prior_hidden} antal döljs för att en tidigare rapport dolde dem."
        if self.lower_promises:
            lower = " eller ".join(str(v) for v in self.lower_promises)
            earlier += (
                f" Uppgifter som en tidigare rapport med en lägre gräns ({lower}) dolde, och skillnader som bara "
                "bygger på sådana, hålls till den gränsen: den här rapporten kan inte vidga det som redan publicerats "
                "om dem, men smalnar inte heller av det."
            )
        return (
            f"**Röjandekontroll.** Uppgifter som vilar på färre än {self.min_cell} elever, också noll, visas som "
            f"`..` (primär sekretess, {self.n_primary} celler; alla nollor är en cell)"
            + (
                f", utom {self.n_public_small} antal som en tidigare rapport ur samma databas redan visat (de och det "
                "som följer av dem är offentliga)"
                if self.n_public_small
                else ""
            )
            + ". Att en uppgift är dold "
            "säger alltså inte att någon elev finns bakom den. Varje antal räknas tillsammans med de elever det "
            "gäller, så att samma elevgrupp i två tabeller är samma uppgift och sambanden mellan tabellerna (summor, "
            "delmängder, skillnader och överlapp, också mot tidigare rapporter ur samma databas) följer av "
            f"eleverna själva. Därför har ytterligare {self.n_secondary} celler dolts (sekundär sekretess). "
            "Innan rapporten skrevs beräknades för varje dold uppgift det minsta och största värde som är förenligt "
            "med allt som publicerats (linjärprogrammering, avrundat till hela elever), och likaså för "
            f"{self.n_derived} skillnader mellan publicerade elevgrupper med färre än {self.min_cell} elever. "
            f"{state}{earlier} Samma mönster gäller "
            "rapportens nedladdningsbara tabeller."
        )


__all__ = [
    "ALL",
    "SUPPRESSED",
    "DisclosureError",
    "Protected",
    "Publication",
    "key",
    "keyed",
    "members",
]
