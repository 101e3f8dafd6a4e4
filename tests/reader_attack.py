"""An outside reader's attack on everything a store has published (statistical disclosure control).

Reads ONLY what a reader holds: `<reports>/<year>/tables/*.csv`, `<reports>/<year>/effects.csv`,
the HTML report (its text and the Vega-Lite chart specs embedded in `figure.chart`), for the full
report and every district report (`<year>/stadsdelar_*/`), in any number of report folders (the
same year at another `--min-cell` in another folder). Nothing from `pipelines` is imported.

A count is a cell `(measure, context, scope, gender)`:

- `scope` is the set of districts whose pupils it counts (a district row is its own scope, a
  report's total row the report's districts; `ALL` for a full report's total);
- `context` is None for counts of a population that does not depend on the publication
  (enrolled, with data, grade 9 pupils, pupils with data in a month, ...): such a count is the
  same in every report, and it is additive over districts, so a scope's count is the sum of any
  partition of it into published scopes (sibling district reports: Farsta + Älvsjö = Farsta +
  Älvsjö), and a sub-scope's count is at most the scope's (the difference is a derived count);
- `context` is the publication's scope for counts that depend on what the report matched
  (in the estimate, comparison pupils): those add up over districts only inside one report.

Relations a careful reader infers: totals = sum of districts; Samtliga = Flickor + Pojkar; nested
attrition steps (enrolled >= with data >= in the estimate) and their differences; the
subgroup table's "Inskrivna" = the attrition table's "I skattningen"; enrolments over the years
= "Inskrivna till och med året"; a year's enrolments are the same in every later report;
shares shown with a known denominator bound the numerator; `k <= n` in chart rows (and n - k is
a derived count); sentences "färre än N" bound what they speak of. Every count is >= 0:
zeros are hidden like other small counts, so a hidden count may be 0.

For every hidden cell and every derived difference the feasible range is found with
`scipy.optimize.milp` (HiGHS), over the independent component of the relations it lies in; a
query that feasible points found earlier already show to reach 0 or to spread min_cell is
settled without a program of its own (`Reader.narrow`). A hidden cell is a finding if `hi - lo < min_cell` and `lo >= 1`
(a range reaching 0 may be one of the hidden zeros, and shows no one is there); a derived
difference (published cells only on one side or both, at least one hidden or both shown) is a
finding if `hi - lo < min_cell` and `lo >= 1` (a range reaching 0 shows nobody is there).
"""

from __future__ import annotations

import csv
import html as htmlmod
import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

try:
    from .attack import band  # a hidden count shown as an interval ("285–330", "≥ 136")
except ImportError:  # run as a script: python tests/reader_attack.py
    from attack import band  # type: ignore[no-redef]

HIDDEN = ".."
ALL = "ALL"
PPSS = "Inskrivna i PPSS"
GENDERS = {"Flickor": "F", "Pojkar": "P", "Samtliga": "*"}


def number(text: str | None) -> int | None:
    if text is None:
        return None
    t = str(text).replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("\u2212", "-")
    return int(t) if re.fullmatch(r"\d+", t) else None


def percent(text: str) -> float | None:
    t = text.replace("\u00a0", "").replace(" ", "").replace("\u2212", "-")
    m = re.fullmatch(r"(\d+)(?:,(\d+))?%", t)
    if not m:
        return None
    return float(m.group(1) + "." + (m.group(2) or "0")), len(m.group(2) or "")


def read_csv(path: Path) -> tuple[str, list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    caption = lines[0][2:] if lines and lines[0].startswith("# ") else ""
    rows = list(csv.reader([ln for ln in lines if not ln.startswith("# ")]))
    return caption, rows[0] if rows else [], rows[1:]


@dataclass
class Publication:
    folder: Path  # <reports>/<year> or <reports>/<year>/stadsdelar_x
    year: int
    min_cell: int
    scope: str  # ALL or "+".join(sorted districts)
    districts: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.folder)


@dataclass
class Finding:
    publication: str
    kind: str  # "hidden" or "derived"
    label: str
    lo: int
    hi: int
    min_cell: int
    relation: str = ""


class Reader:
    def __init__(self) -> None:
        self.values: dict[tuple, int] = {}
        self.hidden: dict[tuple, list[tuple[str, int]]] = defaultdict(list)  # key -> [(pub, min_cell)]
        self.shown_in: dict[tuple, list[str]] = defaultdict(list)
        self.cells: set[tuple] = set()
        self.eqs: list[tuple[dict[tuple, int], float, float, str]] = []  # sum coef*x in [lo, hi]
        self.diffs: dict[tuple[tuple, tuple], tuple[str, int, str]] = {}  # (big, small) -> (pub, min_cell, why)
        self.combos: list[tuple[dict[tuple, int], str, int, str]] = []  # derived counts of more cells
        self.scopes: dict[str, frozenset] = {}
        self.contradictions: list[str] = []
        self.n_hidden_by_pub: dict[str, int] = defaultdict(int)

    # --- cells -----------------------------------------------------------------------
    def cell(self, pub: Publication, key: tuple, text) -> tuple | None:
        _measure, _context, _scope, _gender = key
        self.cells.add(key)
        if text is None:
            return key
        if isinstance(text, str) and (b := band(text)) is not None:  # a hidden count shown as an interval
            self.cell(pub, key, HIDDEN)
            self.rel({key: 1}, b[0], b[1], f"interval {text} shown for a hidden count")
            return key
        if isinstance(text, str) and text.strip() == HIDDEN:
            if (pub.name, pub.min_cell) not in self.hidden[key]:
                self.hidden[key].append((pub.name, pub.min_cell))
                self.n_hidden_by_pub[pub.name] += 1
            return key
        v = text if isinstance(text, int) else number(text)
        if v is None:
            return None
        if key in self.values and self.values[key] != v:
            self.contradictions.append(f"{key}: {self.values[key]} and {v} ({pub.name})")
            return key
        self.values[key] = v
        self.shown_in[key].append(pub.name)
        return key

    def rel(self, coefs: dict[tuple, int], lo: float, hi: float, why: str) -> None:
        for k in coefs:
            self.cells.add(k)
        self.eqs.append((coefs, lo, hi, why))

    def eq(self, total: tuple, parts: list[tuple], why: str) -> None:
        c: dict[tuple, int] = defaultdict(int)
        c[total] += 1
        for p in parts:
            c[p] -= 1
        self.rel(dict(c), 0, 0, why)

    def le(self, small: tuple, big: tuple, why: str, pub: Publication | None = None) -> None:
        self.rel({small: -1, big: 1} if small != big else {}, 0, np.inf, why)
        if pub is not None:
            self.diffs.setdefault((big, small), (pub.name, pub.min_cell, why))

    # --- solving ---------------------------------------------------------------------
    # The relations split into independent components (a district's counts rarely meet another
    # year's); each range is an integer program over its own component only. Every solution found
    # is a feasible integer point, kept per component: a query that one of them already shows can
    # be 0, or spread by min_cell, is no finding without another program.
    def build(self) -> None:
        unknown = sorted((k for k in self.cells if k not in self.values), key=repr)
        self.var = {k: i for i, k in enumerate(unknown)}
        parent = list(range(len(unknown)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        rows: list[tuple[dict[int, float], float, float]] = []
        for coefs, low, h, why in self.eqs:
            row: dict[int, float] = defaultdict(float)
            const = 0.0
            for k, c in coefs.items():
                if k in self.var:
                    row[self.var[k]] += c
                else:
                    const += c * self.values[k]
            row = {i: c for i, c in row.items() if c}
            if not row:
                if const < low - 1e-9 or const > h + 1e-9:
                    self.contradictions.append(f"published values break: {why} ({const})")
                continue
            rows.append((row, low - const, h - const))
            first, *rest = row
            for i in rest:
                parent[find(i)] = find(first)
        comp_rows: dict[int, list] = defaultdict(list)
        for row in rows:
            comp_rows[find(next(iter(row[0])))].append(row)
        self.comp_of = [find(i) for i in range(len(unknown))]
        members: dict[int, list[int]] = defaultdict(list)
        for i, c in enumerate(self.comp_of):
            members[c].append(i)
        self.comps: dict[int, tuple] = {}
        for c, idx in members.items():
            local = {i: j for j, i in enumerate(idx)}
            rs = comp_rows.get(c, [])
            a = sparse.lil_array((len(rs), len(idx)))
            for r_i, (row, _, _) in enumerate(rs):
                for i, v in row.items():
                    a[r_i, local[i]] = v
            lo = np.array([x[1] for x in rs])
            hi = np.array([x[2] for x in rs])
            self.comps[c] = (local, a.tocsr(), lo, hi)
        self.pool: dict[int, list[np.ndarray]] = defaultdict(list)
        self.cache: dict[tuple, float] = {}
        self.n_programs = 0

    def _objective(self, coefs: dict[tuple, int]) -> tuple[dict[int, dict[int, float]], float]:
        by_comp: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        const = 0.0
        for k, c in coefs.items():
            if k in self.var:
                i = self.var[k]
                comp = self.comp_of[i]
                by_comp[comp][self.comps[comp][0][i]] += c
            else:
                const += c * self.values[k]
        return {comp: {j: c for j, c in o.items() if c} for comp, o in by_comp.items()}, const

    def _solve(self, comp: int, obj: dict[int, float], sense: int) -> float:
        key = (comp, tuple(sorted(obj.items())), sense)
        if key in self.cache:
            return self.cache[key]
        local, a, lo, hi = self.comps[comp]
        c = np.zeros(len(local))
        for j, v in obj.items():
            c[j] = sense * v
        cons = [LinearConstraint(a, lo, hi)] if a.shape[0] else []
        self.n_programs += 1
        r = milp(c, integrality=np.ones(len(local)), bounds=Bounds(0, 1e6), constraints=cons)
        if r.status == 2:
            raise AssertionError(
                "the publications contradict the reader's assumptions: " + "; ".join(self.contradictions[:5])
            )
        if r.status != 0:
            value = sense * np.inf
        else:
            value = sense * r.fun
            x = np.round(r.x)
            ax = a @ x if a.shape[0] else np.zeros(0)
            if np.all(ax >= lo - 1e-6) and np.all(ax <= hi + 1e-6):
                self.pool[comp].append(x)
        self.cache[key] = value
        return value

    def extreme(self, coefs: dict[tuple, int], sense: int) -> float:
        objs, const = self._objective(coefs)
        return const + sum(self._solve(comp, o, sense) for comp, o in objs.items())

    def range(self, coefs: dict[tuple, int]) -> tuple[float, float]:
        return self.extreme(coefs, 1), self.extreme(coefs, -1)

    def narrow(self, coefs: dict[tuple, int], m: int) -> tuple[float, float] | None:
        """The range of `coefs` if it is a finding (at least 1 and narrower than m), else None.
        Known feasible points that reach 0 or spread m settle most queries without a program."""
        objs, const = self._objective(coefs)
        if len(objs) == 1:
            ((comp, o),) = objs.items()
            values = [const + sum(x[j] * v for j, v in o.items()) for x in self.pool[comp]]
            if values and (min(values) < 1 or max(values) - min(values) >= m):
                return None
        lo, hi = self.range(coefs)
        return (lo, hi) if lo >= 1 and hi - lo < m else None


def label(key: tuple) -> str:
    measure, context, scope, gender = key
    s = "/".join(str(m) for m in measure)
    ctx = f" [in report {context}]" if context else ""
    g = {"F": " flickor", "P": " pojkar"}.get(gender, "")
    return f"{s} · {scope}{g}{ctx}"


# --- discovery -----------------------------------------------------------------------


def discover(roots: list[Path], min_cells: dict[Path, int] | None = None) -> list[Publication]:
    pubs = []
    for root in roots:
        mc = (min_cells or {}).get(root)
        for ydir in sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit()):
            for folder in [ydir, *sorted(ydir.glob("stadsdelar_*"))]:
                if not (folder / "tables").is_dir():
                    continue
                m = mc or min_cell_of(folder) or 10
                scope, districts = ALL, []
                if folder.name.startswith("stadsdelar_"):
                    enr = folder / "tables" / "enrolled.csv"
                    if enr.exists():
                        districts = sorted(r[0] for r in read_csv(enr)[2] if r and r[0] != "Totalt")
                    scope = "+".join(districts) or folder.name
                pubs.append(Publication(folder, int(ydir.name), m, scope, districts))
    return pubs


def min_cell_of(folder: Path) -> int | None:
    meta = folder / "report.json"
    if meta.exists():
        try:
            return int(json.loads(meta.read_text(encoding="utf-8"))["params"]["min_cell"])
        except (KeyError, ValueError, TypeError):
            pass
    for h in folder.glob("uppfoljning_*.html"):
        m = re.search(r"vilar på färre än (\d+) elever", h.read_text(encoding="utf-8"))
        if m:
            return int(m.group(1))
    return None


# --- parsers ------------------------------------------------------------------------


class Attack:
    def __init__(self, pubs: list[Publication]) -> None:
        self.pubs = pubs
        self.r = Reader()
        self.all_districts: set[str] = set()
        self.sentences: list[tuple[Publication, str]] = []
        self.term_keys: dict[tuple[str, str], dict[tuple, tuple]] = defaultdict(
            dict
        )  # (pub, file) -> (district, term) -> key

    def scope_set(self, scope: str) -> frozenset:
        return frozenset(self.all_districts) if scope == ALL else frozenset(scope.split("+"))

    def run(self) -> None:
        for p in self.pubs:
            t = p.folder / "tables"
            if p.scope == ALL and (t / "enrolled.csv").exists():
                self.all_districts |= {r[0] for r in read_csv(t / "enrolled.csv")[2] if r[0] != "Totalt"}
        for p in self.pubs:
            self.enrolled(p)
            self.attrition(p)
            self.attrition_by_group(p)
            self.subgroups(p)
            self.effects(p)
            self.grade9(p)
            self.context(p)
            self.followup(p)
            self.targets(p)
            self.charts(p)
            self.data_files(p)
            self.text(p)
            self.presence(p)
        self.new_in_year()
        self.scope_relations()

    # Keys ---------------------------------------------------------------------------
    def K(self, p: Publication, measure: tuple, scope: str | None = None, gender: str = "*", additive: bool = True):
        return (measure, None if additive else p.scope, scope or p.scope, gender)

    def enrolled(self, p: Publication) -> None:
        path = p.folder / "tables" / "enrolled.csv"
        if not path.exists():
            return
        _, header, rows = read_csv(path)
        years = header[1:]
        r = self.r
        for y in years:
            for row in rows:
                sc = p.scope if row[0] == "Totalt" else row[0]
                r.cell(p, self.K(p, ("enrolled", y), sc), row[1 + years.index(y)])
        # pupils through the year = the years' enrolments, per district and in total
        for row in rows:
            sc = p.scope if row[0] == "Totalt" else row[0]
            r.eq(
                self.K(p, ("pupils", p.year), sc),
                [self.K(p, ("enrolled", y), sc) for y in years],
                "enrolled through the year = sum of the years' enrolments",
            )

    def attrition(self, p: Publication) -> None:
        path = p.folder / "tables" / "attrition.csv"
        if not path.exists():
            return
        _, _, rows = read_csv(path)
        r = self.r
        by_outcome = defaultdict(list)
        for row in rows:
            by_outcome[row[0]].append(row)
        for outcome, steps in by_outcome.items():
            keys = []
            for i, row in enumerate(steps):
                if i == 0:
                    k = self.K(p, ("pupils", p.year))
                elif i == len(steps) - 1:
                    k = self.K(p, ("est", outcome, p.year), additive=False)
                else:
                    k = self.K(p, ("data", outcome, p.year))
                r.cell(p, k, row[2])
                keys.append(k)
                pc = percent(row[3]) if len(row) > 3 else None
                if pc is not None and keys[0] in r.values:
                    self.share_bound(k, r.values[keys[0]], pc, f"share {row[3]} of the enrolled ({outcome})")
            for big, small in itertools.pairwise(keys):
                r.le(small, big, f"attrition steps of {outcome} (nested)", p)

    def outcome_names(self, p: Publication) -> list[str]:
        path = p.folder / "tables" / "attrition.csv"
        if not path.exists():
            return []
        return list(dict.fromkeys(r[0] for r in read_csv(path)[2]))

    def attrition_by_group(self, p: Publication) -> None:
        path = p.folder / "tables" / "attrition_by_group.csv"
        if not path.exists():
            return
        _caption, _, rows = read_csv(path)
        outs = [o for o in self.outcome_names(p) if "rånvaro" in o] or ["Frånvaro"]
        outcome = outs[0]
        r = self.r
        dims = defaultdict(list)
        for dim, group, n, data, est, *rest in rows:
            sc, g = p.scope, "*"
            if dim == "Kön":
                g = GENDERS.get(group, group)
            else:
                sc = group
            dims[dim].append((sc, g))
            kp = self.K(p, ("pupils", p.year), sc, g)
            kd = self.K(p, ("data", outcome, p.year), sc, g)
            ke = self.K(p, ("est", outcome, p.year), sc, g, additive=False)
            r.cell(p, kp, n)
            r.cell(p, kd, data)
            r.cell(p, ke, est)
            r.le(kd, kp, "with data <= enrolled (attrition by group)", p)
            r.le(ke, kd, "in the estimate <= with data (attrition by group)", p)
            pc = percent(rest[0]) if rest else None
            if pc is not None and kd in r.values:
                self.share_bound(ke, r.values[kd], pc, f"share {rest[0]} of those with data ({group})")
        if "Kön" in dims:
            for m, add in (
                (("pupils", p.year), True),
                (("data", outcome, p.year), True),
                (("est", outcome, p.year), False),
            ):
                r.eq(
                    self.K(p, m, additive=add),
                    [self.K(p, m, sc, g, additive=add) for sc, g in dims["Kön"]],
                    "Samtliga = Flickor + Pojkar (attrition by group)",
                )
        if "Stadsdel" in dims:
            m = ("est", outcome, p.year)
            r.eq(
                self.K(p, m, additive=False),
                [self.K(p, m, sc, additive=False) for sc, _ in dims["Stadsdel"]],
                "total = sum of districts (in the estimate, attrition by group)",
            )

    def subgroups(self, p: Publication) -> None:
        path = p.folder / "tables" / "subgroups.csv"
        if not path.exists():
            return
        outs = [o for o in self.outcome_names(p) if "rånvaro" in o] or ["Frånvaro"]
        outcome = outs[0]
        r = self.r
        total = self.K(p, ("est", outcome, p.year), additive=False)
        for dim, group, n, *_ in read_csv(path)[2]:
            if dim == "Kön":
                k = self.K(p, ("est", outcome, p.year), p.scope, GENDERS.get(group, group), additive=False)
            elif dim == "Stadsdel":
                k = self.K(p, ("est", outcome, p.year), group, additive=False)
            else:
                k = self.K(p, ("est", outcome, p.year, dim, group), additive=False)
                r.le(k, total, f"subgroup {dim} is part of those in the estimate", p)
                r.le(k, self.K(p, ("pupils", p.year)), f"subgroup {dim} <= enrolled")
                title = {"Insats": "Insatser per stadsdel", "Urvalsgrund": "Urvalsgrunder per stadsdel"}.get(dim)
                if title:  # the subgroup's pupils in the estimate are among the enrolled with it (chart per district)
                    chart = self.K(p, ("chart", title, p.year, PPSS, "n_pupils", (("term_value", group),)))
                    r.le(k, chart, f"subgroup {dim} in the estimate <= enrolled with it (chart {title})", p)
            r.cell(p, k, n)

    def effects(self, p: Publication) -> None:
        path = p.folder / "tables" / "effects.csv"
        if not path.exists():
            return
        r = self.r
        for row in read_csv(path)[2]:
            outcome = row[0]
            r.cell(p, self.K(p, ("data", outcome, p.year)), row[1])
            r.cell(p, self.K(p, ("est", outcome, p.year), additive=False), row[2])
            r.cell(p, self.K(p, ("comparison", outcome, p.year), additive=False), row[3])
        # the top-level effects.csv: hidden is empty; subgroups' n_enrolled
        top = p.folder / "effects.csv"
        if top.exists():
            names = self.outcome_names(p)
            rows = list(csv.DictReader(top.open(encoding="utf-8")))
            codes = list(dict.fromkeys(x["outcome"] for x in rows))
            for x in rows:
                if not x["group"] and codes.index(x["outcome"]) < len(names):
                    o = names[codes.index(x["outcome"])]
                    for col, key in (("n_eligible", ("data", o, p.year)), ("n_enrolled", ("est", o, p.year))):
                        if x[col]:
                            r.cell(p, self.K(p, key, additive=key[0] != "est"), x[col].split(".")[0])

    def grade9(self, p: Publication) -> None:
        path = p.folder / "tables" / "grade9_eligibility.csv"
        if not path.exists():
            return
        r = self.r
        groups = defaultdict(set)
        for measure, group, gender, n, share, *_ in read_csv(path)[2]:
            g = GENDERS.get(gender, gender)
            add = group == PPSS
            kn = self.K(p, ("grade9", p.year, group, "n"), gender=g, additive=add)
            kk = self.K(p, ("grade9", p.year, group, "k", measure), gender=g, additive=add)
            r.cell(p, kn, n)
            r.le(kk, kn, "eligible <= pupils", p)
            self.r.cells.add(kk)
            groups[(group, measure)].add(g)
            pc = percent(share)
            if pc is not None and kn in r.values:
                self.share_bound(kk, r.values[kn], pc, f"share {share} of {r.values[kn]}")
        for (group, measure), gs in groups.items():
            add = group == PPSS
            if {"F", "P", "*"} <= gs:
                for m in (("grade9", p.year, group, "n"), ("grade9", p.year, group, "k", measure)):
                    r.eq(
                        self.K(p, m, additive=add),
                        [self.K(p, m, gender=x, additive=add) for x in "FP"],
                        "Samtliga = Flickor + Pojkar (grade 9)",
                    )

    def share_bound(self, k: tuple, n: int, pc: tuple[float, int], why: str) -> None:
        v, dec = pc
        half = 0.5 / 10**dec
        lo, hi = (v - half) / 100 * n, (v + half) / 100 * n
        self.r.rel({k: 1}, np.ceil(lo - 1e-9), np.floor(hi + 1e-9), why)

    def context(self, p: Publication) -> None:
        path = p.folder / "tables" / "context.csv"
        if not path.exists():
            return
        for row in read_csv(path)[2]:
            if row[0] == PPSS:
                kn = self.K(p, ("grade9", p.year, PPSS, "n"))
                self.r.cell(p, kn, row[1])
            elif row[0].startswith("Övriga"):
                self.r.cell(p, self.K(p, ("grade9", p.year, row[0], "n"), additive=False), row[1])

    def targets(self, p: Publication) -> None:
        """'I registret' per period of the city's documents: enrolments in a date range."""
        path = p.folder / "tables" / "targets.csv"
        enr = p.folder / "tables" / "enrolled.csv"
        if not path.exists() or not enr.exists():
            return
        years = [y for y in read_csv(enr)[1][1:] if y.isdigit()]
        r = self.r
        for row in read_csv(path)[2]:
            period, registered = row[0], row[2]
            k = self.K(p, ("period", period))
            r.cell(p, k, registered)
            if m := re.fullmatch(r"Under (\d{4})", period):
                if m.group(1) in years:
                    r.eq(k, [self.K(p, ("enrolled", m.group(1)))], f"'{period}' = the year's enrolments")
            elif m := re.search(r"[Tt]ill och med .*?(\d{4})", period):
                thru = self.K(p, ("enrolled_thru", m.group(1)))
                ys = [y for y in years if y <= m.group(1)]
                if ys and ys[-1] == m.group(1):
                    r.eq(thru, [self.K(p, ("enrolled", y)) for y in ys], "enrolments through the year")
                    r.le(k, thru, f"'{period}' <= enrolled through {m.group(1)}", p)
            elif (m := re.search(r"(\d{4})$", period)) and m.group(1) in years:
                r.le(k, self.K(p, ("enrolled", m.group(1))), f"'{period}' <= the year's enrolments", p)

    def followup(self, p: Publication) -> None:
        r = self.r
        for path in sorted((p.folder / "tables").glob("followup_*.csv")):
            _caption, header, rows = read_csv(path)
            for row in rows:
                if len(row) > 1:
                    # counts of pupils: a follow-up of fixed pupils, the same in every report year
                    kn = self.K(p, ("followup", path.stem, header[1], row[0]))
                    r.cell(p, kn, row[1])
                    for col, text in zip(header[2:], row[2:], strict=False):
                        pc = percent(text) if "ndel" in col or "ehörig" in col else None
                        if col.startswith("Andel godkända") or "medel" in col:
                            continue  # a mean, not a share of pupils
                        kk = self.K(p, ("followup", path.stem, col, row[0]))
                        r.cells.add(kk)
                        r.le(kk, kn, f"{col} <= pupils ({path.stem})", p)
                        if pc is not None and kn in r.values:
                            self.share_bound(kk, r.values[kn], pc, f"share {text} of {r.values[kn]} ({path.stem})")

    def charts(self, p: Publication) -> None:
        for h in p.folder.glob("uppfoljning_*.html"):
            text = h.read_text(encoding="utf-8")
            for block in re.findall(
                r'<script class="ppss-chart-spec" type="application/json">(.*?)</script>', text, re.S
            ):
                try:
                    spec = json.loads(block)
                except json.JSONDecodeError:
                    spec = json.loads(htmlmod.unescape(block))
                title = spec.get("description") or str(spec.get("title"))
                if "Inskrivna elever per stadsdel" in title:
                    continue  # the enrolment table
                for ds in spec.get("datasets", {}).values():
                    for row in ds:
                        self.chart_row(p, title, row)

    COUNT_FIELDS = ("n", "k", "n_pupils", "n_district", "n_treated")
    PER_N = ("threshold", "threshold_label", "measure", "direction", "term_value")  # n is shared across these

    def chart_row(self, p: Publication, title: str, row: dict, listed: str | None = None) -> None:
        r = self.r
        counts = [f for f in row if f in self.COUNT_FIELDS or (f.startswith("n_") and f + "__hidden" in row)]
        if not counts:
            return
        skip = set(counts) | {"gender_label", "district", "pupil_group", "suppressed", "threshold_label"}
        dims = tuple(
            sorted(
                (f, v)
                for f, v in row.items()
                if f not in skip
                and not f.endswith("__hidden")
                and (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) or f == "threshold")
            )
        )
        group = row.get("pupil_group", PPSS)
        add = group == PPSS and "ffekt" not in title  # matched counts depend on the report
        sc = row.get("district") or p.scope
        g = GENDERS.get(row.get("gender_label", "Samtliga"), "*")
        keys = {}
        for f in counts:
            fd = dims if f == "k" or f == "n_pupils" else tuple(x for x in dims if x[0] not in self.PER_N)
            k = self.K(p, ("chart", title, p.year, group, f, fd), sc, g, additive=add)
            if f == "n_district":  # the district's pupils through the year (the attrition table's Inskrivna)
                k = self.K(p, ("pupils", p.year), sc, g)
            keys[f] = (k, fd)
            v = row.get(f)
            hidden = row.get(f + "__hidden")
            r.cell(
                p, k, HIDDEN if hidden else (int(v) if isinstance(v, (int, float)) and float(v).is_integer() else None)
            )
            if listed and f == "n_pupils":
                r.rel({k: 1}, 1, np.inf, f"a listed row of {title} has pupils")
                self.term_keys[(p.name, listed)][(sc, row.get("term_value"))] = k
            if f == "n" and add and title in self.OF_THE_ENROLLED:  # pupils with data in a month are enrolled
                r.le(k, self.K(p, ("pupils", p.year), sc, g), f"n <= enrolled through the year (chart {title})", p)
            if "row_gender" and g == "*" and "gender_label" in row:
                r.eq(k, [(*k[:3], "F"), (*k[:3], "P")], f"Samtliga = Flickor + Pojkar (chart {title})")
        for small, big in (("k", "n"), ("n_pupils", "n_district")):
            if small in keys and big in keys:
                r.le(keys[small][0], keys[big][0], f"{small} <= {big} in chart {title}", p)
        if "k" in keys and "n" in keys:
            k, fd = keys["k"]
            n = keys["n"][0]
            d = dict(fd)
            if "direction" in d:  # Minskat + Oförändrat + Ökat = n
                parts = []
                for direction in ("Minskat", "Oförändrat", "Ökat"):
                    fd2 = tuple(sorted({**d, "direction": direction}.items()))
                    parts.append(((*k[0][:5], fd2), *k[1:]))
                r.eq(n, parts, f"directions partition n (chart {title})")
            if "threshold" in d:  # k at a higher threshold <= k at a lower one
                for lo_t, hi_t in ((0.1, 0.15), (0.15, 0.2)):
                    if d["threshold"] == hi_t:
                        fd2 = dict(d)
                        fd2["threshold"] = lo_t
                        lower = ((*k[0][:5], tuple(sorted(fd2.items()))), *k[1:])
                        r.le(k, lower, f"pupils over {hi_t:.0%} <= over {lo_t:.0%} (chart {title})", p)

    DATA_AS_CHART: ClassVar[
        dict[str, str]
    ] = {  # data/<name>.csv (machine-readable, with <col>_status = visad/dold) and its chart
        "absence_thresholds": "Elever med hög frånvaro",
        "attendance_event_time": "Frånvaro före och efter inskrivning",
        "effect_event_curve": "Frånvaro: effekt jämfört med vägd jämförelsegrupp",
        "pass_change_individual": "Andel godkända ämnen från termin 1 till termin 2, per elev",
        "pass_change_group": "Genomsnittlig förändring i andel godkända ämnen (gruppnivå)",
        "interventions": "Insatser per stadsdel",
        "selection_reasons": "Urvalsgrunder per stadsdel",
        "grade9_eligibility": "Behörighet till gymnasiet efter årskurs 9",
        "followup_2015_individual": "followup_2015_individual",
        "followup_2015_boys": "followup_2015_boys",
    }

    OF_THE_ENROLLED = ("Frånvaro före och efter inskrivning",)  # counts of the enrolled through the year
    LISTED = ("interventions", "selection_reasons")  # a (district, term) row only where it has pupils

    def presence(self, p: Publication) -> None:
        """What the listing itself tells (attack round 5): a table lists only the districts,
        genders and (district, term) pairs that have pupils, so a listed row counts at least 1
        (the terms: in `data_files`); and the register has a row for each of its pupils, so its
        loaded rows in the data-quality table bound every count of PPSS pupils (F2)."""
        t = p.folder / "tables"
        if (t / "enrolled.csv").exists():
            for row in read_csv(t / "enrolled.csv")[2]:
                if row and row[0] != "Totalt":
                    self.r.rel({self.K(p, ("pupils", p.year), row[0]): 1}, 1, np.inf, "a listed district has pupils")
        if (t / "attrition_by_group.csv").exists():
            for dim, group, *_ in read_csv(t / "attrition_by_group.csv")[2]:
                sc, g = (p.scope, GENDERS.get(group, group)) if dim == "Kön" else (group, "*")
                self.r.rel({self.K(p, ("pupils", p.year), sc, g): 1}, 1, np.inf, f"a listed {dim} row has pupils")
        if (t / "quality.csv").exists():
            for row in read_csv(t / "quality.csv")[2]:
                loaded = number(row[4]) if len(row) > 4 and "register" in row[0] else None
                if loaded is not None:
                    self.r.rel(
                        {self.K(p, ("pupils", p.year)): 1}, 0, loaded, "PPSS pupils <= the register's loaded rows"
                    )

    def new_in_year(self) -> None:
        """Interventions and selection reasons are recorded at enrolment (attack round 6, D1): a
        district's pupils with a term through y less those through y - 1 were first enrolled in y,
        so they are at most the district's enrolment in y, and what that enrolment holds beyond
        them is a derived count (30 - (32 - 11) = 9). A full report lists every (district, term)
        with pupils: one it does not list has none."""
        full = {p.year: p for p in self.pubs if p.scope == ALL}
        for y, p in full.items():
            q = full.get(y - 1)
            for name in self.LISTED:
                for (d, t), x in self.term_keys[(p.name, name)].items():
                    e = self.K(p, ("enrolled", str(y)), d)
                    if e not in self.r.cells:
                        continue
                    before = self.term_keys[(q.name, name)].get((d, t)) if q is not None else None
                    if (
                        before is None
                        and q is None
                        and any(k[0][1] == str(y - 1) for k in self.r.cells if k[0][0] == "enrolled")
                    ):
                        continue  # the year before is in the data but in no full report here
                    coefs = {x: 1, e: -1} | ({before: -1} if before is not None else {})
                    why = f"{name} {t} through {y} less through {y - 1} <= enrolled in {y} ({d})"
                    self.r.rel(coefs, -np.inf, 0, why)
                    if before is not None:
                        self.r.le(before, x, f"{name} {t} through {y - 1} <= through {y} ({d})")
                    self.r.combos.append(({k: -c for k, c in coefs.items()}, p.name, p.min_cell, why))

    def data_files(self, p: Publication) -> None:
        folder = p.folder / "data"
        if not folder.is_dir():
            return
        for name, title in self.DATA_AS_CHART.items():
            path = folder / f"{name}.csv"
            if not path.exists():
                continue
            for raw in csv.DictReader(path.open(encoding="utf-8")):
                row: dict = {}
                for f, v in raw.items():
                    if f.endswith("_status"):
                        continue
                    st = raw.get(f + "_status")
                    if st is not None:
                        row[f + "__hidden"] = st == "dold"
                    if v is None or v == "":
                        row[f] = None
                    elif re.fullmatch(r"-?\d+", v):
                        row[f] = int(v)
                    elif re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", v):
                        row[f] = float(v)
                    else:
                        row[f] = v
                if name.startswith("followup") and "n" in row:
                    row["pupil_group"] = PPSS
                self.chart_row(p, title, row, listed=name if name in self.LISTED else None)

    def text(self, p: Publication) -> None:
        for h in p.folder.glob("uppfoljning_*.html"):
            t = h.read_text(encoding="utf-8")
            t = re.sub(r"<script.*?</script>|<style.*?</style>|<svg.*?</svg>", " ", t, flags=re.S)
            t = htmlmod.unescape(re.sub(r"<[^>]+>", " ", t))
            for s in re.split(r"(?<=[.!?])\s+", t):
                if re.search(r"\d", s) and re.search(r"[Ff]ärre än|[Hh]ögst|[Mm]inst|[Ss]aknade|föll bort", s):
                    self.sentences.append((p, " ".join(s.split())))
            # "Färre än N inskrivna saknade jämförbara elever": with data - in the estimate < N
            for m in re.finditer(r"[Ff]ärre än (\d+) inskrivna saknade jämförbara elever", t):
                n = int(m.group(1))
                for o in self.outcome_names(p):
                    d, e = self.K(p, ("data", o, p.year)), self.K(p, ("est", o, p.year), additive=False)
                    self.r.rel({d: 1, e: -1}, 0, n - 1, f"sentence: färre än {n} saknade jämförbara elever")

    def scope_relations(self) -> None:
        """Additive counts: a scope's count = sum over a partition into published scopes; a
        sub-scope's count <= the scope's (the difference is a derived count)."""
        r = self.r
        groups = defaultdict(dict)
        for k in list(r.cells):
            measure, context, scope, gender = k
            groups[(measure, context, gender)][self.scope_set(scope)] = k
        pub_of = {}
        for k, ps in r.hidden.items():
            pub_of[k] = ps[0]
        for (measure, context, gender), by_scope in groups.items():
            if context is None and any(len(S) == 1 for S in by_scope) and self.all_districts:
                for d in self.all_districts:  # a district a chart leaves out is an unknown count
                    S = frozenset([d])
                    if S not in by_scope:
                        k = (measure, None, d, gender)
                        r.cells.add(k)
                        by_scope[S] = k
            sets = list(by_scope)
            if context is not None:
                # inside one report, a total = sum of its districts (if all are there)
                pass
            for S in sets:
                if len(S) < 2:
                    continue
                subs = [T for T in sets if T < S]
                for T in subs:
                    r.le(by_scope[T], by_scope[S], "sub-scope <= scope (districts)", None)
                    pub = pub_of.get(by_scope[T]) or pub_of.get(by_scope[S]) or ("(published)", 10)
                    r.diffs.setdefault(
                        (by_scope[S], by_scope[T]), (pub[0], pub[1], "scope minus sub-scope (sibling/district reports)")
                    )
                for part in partitions(S, subs):
                    r.eq(
                        by_scope[S],
                        [by_scope[T] for T in part],
                        "scope = sum of a partition into districts/sibling scopes",
                    )


def partitions(S: frozenset, subs: list[frozenset], limit: int = 50):
    out = []

    def rec(rest: frozenset, chosen: list, start: int):
        if len(out) >= limit:
            return
        if not rest:
            out.append(list(chosen))
            return
        first = min(rest)
        for i, T in enumerate(subs):
            if first in T and rest >= T:
                rec(rest - T, [*chosen, T], i)

    rec(S, [], 0)
    return [p for p in out if len(p) > 1]


def attack(roots: list[Path], min_cells: dict[Path, int] | None = None, verbose: bool = False):
    """Every finding across the publications under `roots` (report folders)."""
    pubs = discover([Path(x) for x in roots], min_cells)
    a = Attack(pubs)
    a.run()
    r = a.r
    r.build()
    findings: list[Finding] = []
    stats = defaultdict(lambda: {"hidden": 0, "derived": 0, "already_public": 0})
    min_by_name = {p.name: p.min_cell for p in pubs}
    for k, ps in sorted(r.hidden.items(), key=lambda kv: repr(kv[0])):
        if k in r.values:
            # hidden in one publication, shown in another: pinned exactly, unless it is shown only
            # at a smaller threshold than the one hiding it (a second threshold says so plainly)
            shown_mc = min(min_by_name.get(n, 10) for n in r.shown_in[k])
            for name, mc in ps:
                stats[name]["already_public"] += 1
                if mc <= shown_mc:
                    findings.append(
                        Finding(
                            name,
                            "hidden",
                            label(k),
                            r.values[k],
                            r.values[k],
                            mc,
                            f"shown in {', '.join(sorted(set(r.shown_in[k])))}",
                        )
                    )
            continue
        m = min(mc for _, mc in ps)
        for name, _ in ps:
            stats[name]["hidden"] += 1
        if found := r.narrow({k: 1}, m):
            findings.append(Finding(ps[0][0], "hidden", label(k), int(found[0]), int(found[1]), m, "all relations"))
    done = set()
    for (big, small), (pubname, m, why) in sorted(r.diffs.items(), key=lambda kv: repr(kv[0])):
        if (big, small) in done or big == small:
            continue
        done.add((big, small))
        # the threshold: the smallest min_cell among publications that show or hide either side
        names = (
            set(r.shown_in.get(big, []))
            | set(r.shown_in.get(small, []))
            | {n for n, _ in r.hidden.get(big, [])}
            | {n for n, _ in r.hidden.get(small, [])}
        )
        m = min([min_by_name.get(n, m) for n in names] or [m])
        for n in names:
            stats[n]["derived"] += 1
        if big in r.values and small in r.values:
            d = r.values[big] - r.values[small]
            found = (d, d) if 1 <= d < m else None
        else:
            found = r.narrow({big: 1, small: -1}, m)
        if found and found[0] < m:
            findings.append(
                Finding(pubname, "derived", f"{label(big)}  MINUS  {label(small)}", *map(int, found), m, why)
            )
    for coefs, pubname, m, why in r.combos:
        # the threshold: the smallest min_cell among publications that show or hide its cells
        names = {n for k in coefs for n in [*r.shown_in.get(k, []), *(n for n, _ in r.hidden.get(k, []))]}
        m = min([min_by_name.get(n, m) for n in names] or [m])
        if all(k in r.values for k in coefs):
            d = sum(c * r.values[k] for k, c in coefs.items())
            found = (d, d) if 1 <= d < m else None
        else:
            found = r.narrow(coefs, m)
        stats[pubname]["derived"] += 1
        if found and found[0] < m:
            findings.append(
                Finding(
                    pubname,
                    "derived",
                    " ".join(f"{c:+d} {label(k)}" for k, c in coefs.items()),
                    *map(int, found),
                    m,
                    why,
                )
            )
    return findings, stats, a


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("roots", nargs="+", help="report folders (each holding <year>/)")
    args = ap.parse_args(argv)
    findings, stats, a = attack([Path(x) for x in args.roots])
    for f in findings:
        print(f"{f.kind:8} [{f.lo}, {f.hi}] (min_cell {f.min_cell}) {f.label}  -- {f.relation}  @ {f.publication}")
    print()
    for name, s in sorted(stats.items()):
        print(name, dict(s))
    if a.r.contradictions:
        print("contradictions:", *a.r.contradictions[:20], sep="\n  ")
    print("sentences with bounds:", *[s for _, s in a.sentences][:30], sep="\n  ")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
