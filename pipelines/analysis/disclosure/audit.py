"""The attacker's programs: each hidden cell's range over everything published (HiGHS), and
the cheapest further cells to hide where a range is too narrow (pipelines.analysis.disclosure)."""

from __future__ import annotations

import itertools
import os
import sys
from collections import defaultdict
from typing import Any

import highspy
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from pipelines.analysis.disclosure.cells import Cell, DisclosureError


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
        # A hidden zero is shown like any small count, but a table lists only the categories
        # that have pupils (attack round 5, F1): a reader knows a listed count is at least 1.
        # So every published count above 0 is at least 1 here; derived counts may be 0.
        lb = np.array([1.0 if i not in internal and (cells[i].value or 0) > 0 else 0.0 for i in var])
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
                # With them, a bound that pins its optimum further away (LP duals): a bound on a
                # hidden total pins the hidden parts inside it. (Only bounds: every binding cell
                # in each cut lets one cheap cell settle a thousand cuts and settle nothing, round
                # after round; a tiny store's 2015 report took 315 s instead of 47.)
                near = {j for n in touching.get(i, ()) for _, j in rels[n][0] if j not in var}
                optima = {1.0: lo_res, -1.0: hi_res}
                far = [_binding(optima[s], eq_mask, used, var) for s in sides]
                if any(cells[j].prior != "published" and cells[j].value != 0 for j in near):
                    comp_failures[i] = [near | {j for j in set().union(*far) if cells[j].bound}]
                else:
                    comp_failures[i] = far
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
