"""The demo world's true effects, from the generator's own potential outcomes.

For each report year and headline outcome: the average, over the enrolled pupils the
estimand is about (`estimands`), of the outcome with the programme minus without it.
Pupils a planted defect keeps out of the store are left out. `TRUE_EFFECTS.json` holds the
averages; `TRUE_EFFECTS_pupils.csv` the per-pupil effects (fake identity numbers), so a
harness can compute the truth for exactly the pupils an estimate rests on.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.analysis import estimands as est
from pipelines.rules.indicators import term_grades

if TYPE_CHECKING:
    from datetime import date

    from pipelines.demo.world import DemoWorld, Pupil

YEARS = range(2013, 2018)
TRUTH_FILE, PUPIL_FILE = "TRUE_EFFECTS.json", "TRUE_EFFECTS_pupils.csv"


class Truth:
    def __init__(self, world: DemoWorld) -> None:
        self.world = world
        self.months: dict[int, dict[int, tuple[float, float]]] = defaultdict(dict)
        self.terms: dict[int, dict[int, tuple]] = defaultdict(dict)
        self.lost: set[int] = set()

    def add_month(self, p: Pupil, month: date, pair: tuple[float, float]) -> None:
        self.months[p.index][est.month_index(month)] = pair

    def add_grades(self, p: Pupil, grades: list[dict]) -> None:
        by_term: dict[int, list[dict]] = defaultdict(list)
        for g in grades:
            by_term[g["year"] * 2 + (1 if g["term"] == "HT" else 0)].append(g)
        for ti, rows in by_term.items():
            t0 = term_grades((g["subject"], g["lang"], g["value0"]) for g in rows)
            t1 = term_grades((g["subject"], g["lang"], g["value1"]) for g in rows)
            final = any(g["final"] for g in rows)
            self.terms[p.index][ti] = (
                t0.share_passed,
                t1.share_passed,
                t0.eligible_vocational,
                t1.eligible_vocational,
                final,
            )

    def pupil_effects(self, p: Pupil, year: int) -> dict[str, float]:
        """The pupil's true effect on each outcome whose estimand covers it in `year`."""
        out: dict[str, float] = {}
        if p.enrolled is None or p.enrolled.year > year or p.index in self.lost:
            return out
        months = self.months[p.index]
        pre, post = est.absence_window(est.month_index(p.enrolled), year)
        after = [months[m] for m in post if m in months]
        if sum(m in months for m in pre) >= est.MIN_PRE_MONTHS and after:
            out["absence_rate"] = float(np.mean([r1 - r0 for r0, r1 in after]))
        terms = self.terms[p.index]
        base = est.term_index(p.enrolled) - 1
        later = base + est.CHANGE_TERMS
        if base in terms and later in terms and later <= est.last_term(year):
            out["share_passed_change"] = terms[later][1] - terms[later][0]
        finals = [ti for ti, t in terms.items() if t[4] and base < ti <= est.last_term(year)]
        if base in terms and finals:
            t = terms[finals[0]]
            out["eligible_vocational"] = float(t[3]) - float(t[2])
        return out

    def write(self, out: Path) -> None:
        totals: dict[str, dict[str, float | None]] = {}
        with open(out / PUPIL_FILE, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["civic_no", "year", "outcome", "effect"])
            for year in YEARS:
                per: dict[str, list[float]] = defaultdict(list)
                for p in self.world.pupils:
                    for outcome, effect in self.pupil_effects(p, year).items():
                        per[outcome].append(effect)
                        w.writerow([p.civic, year, outcome, f"{effect:.6f}"])
                totals[str(year)] = {o: (float(np.mean(per[o])) if per[o] else None) for o in est.OUTCOMES}
        (out / TRUTH_FILE).write_text(json.dumps(totals, indent=2) + "\n", encoding="utf-8")
