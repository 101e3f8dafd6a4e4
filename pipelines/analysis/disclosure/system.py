"""The linear system a reader could write, read off the cells' pupils, and its solution: the
hidden cells (pipelines.analysis.disclosure)."""

from __future__ import annotations

import collections
import os
import time as _time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from pipelines.analysis.disclosure.audit import _audit, _choose_hidden, _components
from pipelines.analysis.disclosure.cells import Cell, DisclosureError, family_of, set_id
from pipelines.analysis.disclosure.relations import (
    COVER_BUDGET,
    DERIVED_BUDGET,
    _covers,
    _crossings,
    _derived_nesting,
    _differences_inside,
    _partitions,
    _two_part_unions,
)


def _bounded(
    cells: list[Cell],
    nonempty: list[int],
    n_pub: int,
    inc: csr_matrix,
    uniq: np.ndarray,
    size: np.ndarray,
    nested: np.ndarray,
    disjoint: np.ndarray,
) -> list[list[tuple[int, int]]]:
    """A bound's number is at least every count inside its pupils: P <= bound for each count
    P inside them that no other count inside them holds, and the sum of disjoint such counts
    (largest first) <= bound. The rest follow through nesting."""
    rels: list[list[tuple[int, int]]] = []
    for b in range(n_pub):
        if not cells[b].bound:
            continue
        held = inc @ np.isin(uniq, cells[b].tokens).astype(np.float64)  # type: ignore[arg-type]
        inside = np.flatnonzero(held == size)
        top = [int(a) for a in inside if not nested[inside, a].any()]
        rels += [[(1, nonempty[a]), (-1, b)] for a in top]
        chosen: list[int] = []
        for a in sorted(top, key=lambda a: -size[a]):
            if all(disjoint[a, c] for c in chosen):
                chosen.append(a)
        if len(chosen) > 1:
            rels.append([*((1, nonempty[a]) for a in chosen), (-1, b)])
    return rels


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
        nonempty = [i for i in range(n_pub) if cells[i].value > 0 and not cells[i].bound]
        if len(nonempty) < 2:
            ineq_rels = [
                [(1, i), (-1, b)]
                for b in range(n_pub)
                if cells[b].bound
                for i in nonempty
                if np.isin(cells[i].tokens, cells[b].tokens).all()  # type: ignore[arg-type]
            ]
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
        for _, a, b, e in _differences_inside(overlap, size, nested, min_cell, current):
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
        ineq_rels += _bounded(cells, nonempty, n_pub, inc, uniq, size, nested, disjoint)
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
            if cells[i].prior != "published"
            and (cells[i].prior == "hidden" or (cells[i].value < cells[i].need and not cells[i].bound))
        }
        internal = {i for i in range(n_pub, len(cells)) if cells[i].value != 0}
        fixed_shown = {i for i in range(n_pub) if cells[i].prior == "published"}
        eq_rels, ineq_rels = self.eq_rels, self.ineq_rels
        # What earlier publications gave away cannot be protected here, and showing it again
        # reveals nothing new: a failure that only their cells pin joins `exposed` (below).
        # A bound counts rows, not pupils: it needs no range of its own (it may be hidden).
        exposed: set[int] = {i for i in range(n_pub) if cells[i].bound}
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
                zeros = {i for i in audited if i < n_pub and cells[i].value == 0 and not cells[i].bound}
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
