"""Relations between published sets beyond nesting and margins: covers, crossings, unions and
differences, each budgeted (pipelines.analysis.disclosure)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from pipelines.analysis.disclosure.cells import Cell


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


def _differences_inside(
    overlap: np.ndarray,
    size: np.ndarray,
    nested: np.ndarray,
    min_cell: int,
    current: np.ndarray,
) -> list[tuple[int, int, int, int]]:
    """(remainder, A, B, E): B inside A, at least min_cell apart (a smaller difference is a
    derived count already), and A without B inside E, which holds 1 to min_cell - 1 pupils
    more. Every nested pair, not only covering ones: a published cell between B and A does not
    stop a reader from taking A - B (attack round 6, D1: pupils with an intervention through
    2016 less through 2015, with a third group between them, inside the district's 2016
    enrolment). Only relations with a cell of this publication (what earlier ones alone give
    was audited when they were made), smallest remainder first, up to INSIDE_BUDGET."""
    out = []
    for a in np.flatnonzero(nested.any(axis=1)):
        bs = np.flatnonzero(nested[a] & (size[a] - size >= min_cell))
        if not len(bs):
            continue
        d = size[a] - size[bs]  # per pair
        # [e, pair]: E holds all of A without B, and 1 to min_cell - 1 pupils more
        rest = size[:, None] - d[None, :]
        hit = (overlap[:, a][:, None] - overlap[:, bs] == d[None, :]) & (rest > 0) & (rest < min_cell)
        hit[a] = False
        if not current[a]:
            hit &= current[:, None] | current[bs][None, :]
        for e, k in np.argwhere(hit):
            out.append((int(rest[e, k]), int(a), int(bs[k]), int(e)))
    return sorted(out)[:INSIDE_BUDGET]


# Differences inside a third cell audited at most (see _differences_inside): on the demo store's
# 2015 report after five 2016 reports there are 1,587; at 1,000 the smallest remainders took it all
# and a difference of 8 went unaudited (attack round 6). 5,000: 15.5 s -> 17.9 s for that report.
INSIDE_BUDGET = 5000
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
