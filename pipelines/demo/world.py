"""Demo data: every input kind in its real format, deterministic from a seed.

The shape mirrors the programme's documents (domain rules): eight districts, 16 programme
schools in 2015 and 22 in 2016 among 30, about 70 pupils enrolled 2013-2014, 80 during
2015 and 127 from January to July 2016. Built-in truths for the report to find:
attendance of enrolled pupils improves after enrolment (the effect grows over the first
four months), grades mostly do not, and boys in three districts improve their grades.
`effects="none"` is the same world, draw for draw, with every programme effect off.

What real data have and naive estimators trip on: absence persists from month to month
(an AR(1) shock per pupil), pupils are chosen on their recent recorded absence and are
often enrolled in the month after their absence peaked (so absence falls afterwards even
without any programme), and grades suffer in terms of high absence. Every outcome is
drawn once as a pair of potential outcomes (without and with the programme) from the
same random numbers; `TRUE_EFFECTS.json` holds the true average effects that follow.

The mess of real exports is there too:
identity numbers in several forms, guids with braces and upper case, long subject codes,
a few invalid rows, Excel date cells, a Windows-1252 CSV and trailing empty rows.
Names are fake and are never read by the pipeline.
"""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import xlsxwriter

from pipelines.demo.truth import Truth
from pipelines.rules.identity import DEMO_MARKER, luhn_digit
from pipelines.rules.reference import PROGRAMME_DISTRICTS

DISTRICTS = PROGRAMME_DISTRICTS
OTHER_DISTRICTS = ["Bromma", "Kungsholmen", "Norrmalm", "Södermalm", "Östermalm", "Hägersten-Liljeholmen"]
SCHOOL_YEARS = range(2012, 2017)  # 2012/13 .. 2016/17
SUBJECTS = ["BI", "BL", "EN", "FY", "GE", "HI", "HKK", "IDH", "KE", "MA", "MU", "RE", "SH", "SL", "SV", "TK"]
LONG = {
    "BI": "GRGRBIO01",
    "EN": "GRGRENG01",
    "MA": "GRGRMAT01",
    "SV": "GRGRSVE01",
    "SVA": "GRGRSVA01",
    "KE": "GRGRKEM01",
    "HI": "GRGRHIS01",
}
M2_LANGUAGES = ["DEU", "FRA", "SPA"]
ML_LANGUAGES = ["ARA", "SOM", "TIR", "FAS", "BOS"]
GIVEN = ["Alva", "Elsa", "Maja", "Noah", "Liam", "Hugo", "Amira", "Yusuf", "Sara", "Omar", "Ella", "Adam"]
FAMILY = ["Andersson", "Johansson", "Ali", "Hassan", "Nilsson", "Karlsson", "Mohammed", "Lind"]
# Pupils enrolled per period (domain rules: ~150 by autumn 2015, ~80 in 2015, 127 Jan-Jul 2016).
ENROLMENT_WAVES = [
    (date(2013, 9, 1), date(2013, 12, 15), 30),
    (date(2014, 1, 13), date(2014, 12, 12), 40),
    (date(2015, 1, 12), date(2015, 12, 11), 80),
    (date(2016, 1, 11), date(2016, 7, 31), 127),
    (date(2016, 8, 22), date(2016, 12, 9), 55),
]
# How districts select and what they do: the förstudie found these differ.
DISTRICT_STYLE = {
    "Enskede-Årsta-Vantör": (["Hög frånvaro"], ["Kurator", "Mentor", "SIP"]),
    "Farsta": (["Låga studieresultat"], ["Läxhjälp", "Mentor"]),
    "Hässelby-Vällingby": (["Hög frånvaro", "Social problematik"], ["Fältassistent", "Hembesök"]),
    "Rinkeby-Kista": (["Social problematik", "Orosanmälan"], ["Familjebehandling", "SIP", "Kurator"]),
    "Skarpnäck": (["Hög frånvaro"], ["Hembesök", "Kurator"]),
    "Skärholmen": (["Låga studieresultat", "Hög frånvaro"], ["Läxhjälp", "Sommarinsats"]),
    "Spånga-Tensta": (["Orosanmälan", "Social problematik"], ["Fältassistent", "Familjebehandling"]),
    "Älvsjö": (["Hög frånvaro", "Låga studieresultat"], ["Mentor", "SIP"]),
}
BOYS_IMPROVE = {"Rinkeby-Kista", "Skärholmen", "Farsta"}
EFFECTS = ("builtin", "none")
# Kinds of world (`--world`), each a mechanism written from its description, not fitted to
# the estimator; "demo" draws exactly what it always drew, the others draw their extra
# mechanism from streams of their own:
# - trend: pupils are chosen on a latent worsening trajectory (a slope in log absence and a
#   fall in grades, per month) that the records show only with noise, and it continues.
# - crisis: a third of pupils go through a crisis (absence up, grades down) of 3-8 months
#   that ends by itself; pupils are chosen while in it.
# - swings: every school's absence swings month to month (AR(1) on the log scale, shared by
#   its pupils); only half the programme schools take part; pupils chosen on recorded absence.
# - staggered: schools join at any month of their year; the effect on absence grows over a
#   year (to 60 % less absence) instead of four months.
WORLDS = ("demo", "trend", "crisis", "swings", "staggered")
TREND_SD = 0.015  # latent slope of log absence per month (SD across pupils)
CRISIS_SHARE, CRISIS_LOG = 1 / 3, 0.9  # pupils with a crisis; its rise in log absence
SWING_RHO, SWING_SD = 0.6, 0.25  # a school's monthly log-absence swing
# Absence: monthly log-rate shock z_k = RHO * z_(k-1) + SHOCK_SD * e_k, plus recording noise.
RHO, SHOCK_SD, NOISE_SD = 0.75, 0.3, 0.12
MONTHS_PER_PUPIL = 48  # August of the year the pupil starts årskurs 6, four school years on
PEAK_SHARE = 0.6  # share of enrolments set in the month after the pupil's recent absence peak

SCALES = {  # schools, pupils per årskurs and school
    "tiny": (12, 6),
    "small": (30, 8),  # the methods harness: many worlds, each quick to run
    "demo": (30, 16),
    "city": (150, 75),  # about 90,000 pupils over the five school years
    "country": (1750, 75),  # about 1.05 million
}


@dataclass(frozen=True)
class PlantedDefect:
    """A defect the demo writes on purpose, and what the load must make of it.

    `at` says where: persons, pupil indices; register, rows in order of enrolment (0-based);
    attendance, record numbers in writing order; grades, (pupil index, grade number). Each
    place present at the world's scale is quarantined under every rule of `rules`, as a row
    of its own file; a defect that `loses_pupil` keeps the pupil out of the store (its
    grades and attendance are then held, and the demo truth leaves the pupil out)."""

    name: str
    kind: str
    rules: tuple[str, ...]
    at: tuple[int, ...]
    loses_pupil: bool = False

    def places(self, world: DemoWorld) -> list[int]:
        """The places of `at` that exist in `world` (a small world has fewer pupils and rows)."""
        if self.kind == "persons":
            return [i for i in self.at if i < len(world.pupils)]
        if self.kind == "register":
            return [r for r in self.at if r < len(world.enrolled_in_order())]
        if self.kind == "grades":
            return [self.at[0]] if self.at[0] < len(world.pupils) else []
        return list(self.at)

    def pupils(self, world: DemoWorld) -> set[int]:
        """Indices of the pupils the defect keeps out of the store."""
        if not self.loses_pupil:
            return set()
        if self.kind == "register":
            return {world.enrolled_in_order()[r].index for r in self.places(world)}
        return set(self.places(world))

    def quarantined(self, world: DemoWorld) -> dict[str, int]:
        """Rows of its own file the defect puts in quarantine, per rule."""
        return {rule: len(self.places(world)) for rule in self.rules}


PLANTED_DEFECTS = [
    PlantedDefect("person_check_digit", "persons", ("civic_no_check_digit",), (17, 401, 1203), loses_pupil=True),
    PlantedDefect("register_check_digit", "register", ("civic_no_check_digit",), (11,), loses_pupil=True),
    PlantedDefect("register_unknown_reason", "register", ("selection_reason_unknown",), (20,), loses_pupil=True),
    PlantedDefect(
        "absence_above_offered", "attendance", ("absence_exceeds_offered", "accounted_exceeds_reported"), (5,)
    ),
    PlantedDefect("negative_minutes", "attendance", ("minutes_invalid",), (9,)),
    PlantedDefect("grade_of_another_scale", "grades", ("grade_value",), (50, 3)),
    PlantedDefect("unknown_subject_code", "grades", ("subject_code_unknown",), (61, 5)),
]
DEFECTS = {d.name: d for d in PLANTED_DEFECTS}


def planted_quarantine(world: DemoWorld) -> dict[str, int]:
    """Rows the planted defects put in quarantine, per rule (checks across files not included)."""
    out: dict[str, int] = {}
    for d in PLANTED_DEFECTS:
        for rule, n in d.quarantined(world).items():
            out[rule] = out.get(rule, 0) + n
    return {rule: n for rule, n in out.items() if n}


@dataclass
class School:
    code: str
    guid: str
    name: str
    district: str
    huvudman: str
    joins: int | None  # year the school joined the programme


@dataclass
class Pupil:
    guid: str
    civic: str
    gender: str
    entry_year: int  # the autumn the pupil starts årskurs 6
    schools: list[int]  # school index per school year from entry_year
    ability: float
    absence: float  # baseline share of offered time absent
    m2: str | None
    ml: str | None
    sva: bool
    marking: str
    index: int = 0
    leaves: date | None = None
    enrolled: date | None = None
    exits: date | None = None
    district: str | None = None


def make_civic(rng: np.random.Generator, born: date, gender: str, form: int, coordination: bool = False) -> str:
    day = born.day + (60 if coordination else 0)
    serial = int(rng.integers(0, 100)) * 10 + int(rng.choice([1, 3, 5, 7, 9] if gender == "M" else [0, 2, 4, 6, 8]))
    nine = f"{born:%y%m}{day:02d}{serial:03d}"
    ten = nine + str(luhn_digit(nine))
    century = f"{born.year // 100}"
    return [f"{century}{ten[:6]}-{ten[6:]}", f"{century}{ten}", f"{ten[:6]}-{ten[6:]}", ten][form]


def _ten_digits(civic: str) -> str:
    return "".join(ch for ch in civic if ch.isdigit())[-10:]


def _guid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _xml_guid(guid: str, i: int) -> str:
    # Skolplattformen writes guids with braces, mostly upper case (contract 1.3).
    return "{" + (guid.upper() if i % 3 else guid) + "}"


def _term_of(d: date) -> tuple[str, int]:
    return ("VT" if d.month <= 6 else "HT"), d.year


def _school_day(rng: np.random.Generator, start: date, end: date) -> date:
    d = start + timedelta(days=int(rng.integers(0, max(1, (end - start).days))))
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def month_no(p: Pupil, month: date) -> int:
    """The pupil's month index: 0 is August of the year the pupil starts årskurs 6."""
    return (month.year - p.entry_year) * 12 + month.month - 8


class DemoWorld:
    def __init__(self, seed: int, scale: str, effects: str = "builtin", world: str = "demo") -> None:
        if effects not in EFFECTS:
            raise ValueError(f"effects must be one of {EFFECTS}")
        if world not in WORLDS:
            raise ValueError(f"world must be one of {WORLDS}")
        self.effects, self.kind = effects, world
        self.rng = np.random.default_rng(seed)
        n_schools, self.per_class = SCALES[scale]
        rng = self.rng
        self.schools: list[School] = []
        for i in range(n_schools):
            programme = i < round(n_schools * 0.8)
            district = DISTRICTS[i % 8] if programme else OTHER_DISTRICTS[i % len(OTHER_DISTRICTS)]
            rank = i / max(1, round(n_schools * 0.8))
            joins = (
                (2013 if rank < 10 / 24 else 2015 if rank < 16 / 24 else 2016 if rank < 22 / 24 else None)
                if programme
                else None
            )
            self.schools.append(
                School(
                    f"{int(rng.integers(10_000_000, 99_999_999))}",
                    _guid(rng),
                    f"{district.split('-')[0]}skolan {i + 1}",
                    district,
                    "fristående" if i % 11 == 10 else "kommunal",
                    joins,
                )
            )
        self.pupils: list[Pupil] = []
        self.civics: set[str] = set()
        for entry in range(2009, 2017):
            for s in range(n_schools):
                for _ in range(self.per_class):
                    self.pupils.append(self._pupil(entry, s))
        for i, p in enumerate(self.pupils):
            p.index = i
        self._draw_absence_paths(seed)
        self._draw_world_kind(seed)
        self._enrol()

    def _draw_absence_paths(self, seed: int) -> None:
        """Log-scale absence shocks per pupil and month (own stream: the world's draws stay put)."""
        rng = np.random.default_rng([seed, 12000])
        n = len(self.pupils)
        e = rng.standard_normal((n, MONTHS_PER_PUPIL), dtype=np.float32)
        z = np.empty_like(e)
        z[:, 0] = e[:, 0] * SHOCK_SD / np.sqrt(1 - RHO**2)
        for k in range(1, MONTHS_PER_PUPIL):
            z[:, k] = RHO * z[:, k - 1] + SHOCK_SD * e[:, k]
        self.shock = z
        self.noise = rng.standard_normal((n, MONTHS_PER_PUPIL), dtype=np.float32) * NOISE_SD

    def _draw_world_kind(self, seed: int) -> None:
        """The kind's own mechanism (WORLDS), from its own random stream."""
        n = len(self.pupils)
        rng = np.random.default_rng([seed, 21, WORLDS.index(self.kind)])
        self.slope = rng.normal(0, TREND_SD, n) if self.kind == "trend" else np.zeros(n)
        self.crisis = np.tile([1, 0], (n, 1))  # first and last month_no of the crisis (none: an empty range)
        if self.kind == "crisis":
            has = rng.random(n) < CRISIS_SHARE
            start = rng.integers(0, MONTHS_PER_PUPIL, n)
            self.crisis[has, 0] = start[has]
            self.crisis[has, 1] = start[has] + rng.integers(3, 9, n)[has] - 1
        months = (SCHOOL_YEARS[-1] + 1 - SCHOOL_YEARS[0]) * 12 + 1
        self.swing = np.zeros((len(self.schools), months))
        if self.kind == "swings":
            e = rng.standard_normal((len(self.schools), months))
            self.swing[:, 0] = e[:, 0] * SWING_SD / np.sqrt(1 - SWING_RHO**2)
            for m in range(1, months):
                self.swing[:, m] = SWING_RHO * self.swing[:, m - 1] + SWING_SD * e[:, m]
            for i, school in enumerate(self.schools):  # half the programme schools take part
                if i % 2:
                    school.joins = None
        self.join_month = {i: 1 for i in range(len(self.schools))}
        if self.kind == "staggered":
            self.join_month = {i: int(rng.integers(1, 13)) for i in range(len(self.schools))}

    def in_crisis(self, p: Pupil, month: date) -> bool:
        k = month_no(p, month)
        return bool(self.crisis[p.index, 0] <= k <= self.crisis[p.index, 1])

    def recorded_rate0(self, p: Pupil, month: date) -> float:
        """Absence rate as the school records it, without the programme."""
        k = min(max(month_no(p, month), 0), MONTHS_PER_PUPIL - 1)
        rate = p.absence * (1.0 + 0.15 * ((month.year - p.entry_year) + (month.month >= 7)))  # rises with age
        if month.month in (12, 6):
            rate *= 1.2
        log_shock = self.shock[p.index, k] + self.noise[p.index, k]
        if self.kind != "demo":  # (the demo's own sum stays as it was, bit for bit)
            m = (month.year - SCHOOL_YEARS[0]) * 12 + month.month - 8
            log_shock = (
                float(log_shock)
                + float(self.slope[p.index]) * k
                + (CRISIS_LOG if self.in_crisis(p, month) else 0.0)
                + float(self.swing[self.school_in(p, month), min(max(m, 0), self.swing.shape[1] - 1)])
            )
        return float(np.clip(rate * np.exp(log_shock), 0, 0.95))

    def selection_risk(self, p: Pupil, when: date) -> float:
        """What gets a pupil chosen. Demo, swings and staggered: the absence the school recorded
        last month (what school and social services see). Trend: the latent slope itself, in
        SDs (the records show it only with noise). Crisis: being in a crisis."""
        if self.kind == "trend":
            return float(self.slope[p.index]) / TREND_SD
        if self.kind == "crisis":
            return 4.0 if self.in_crisis(p, when) else 0.0  # most enrolled pupils are in one
        return 2.0 * self.recorded_rate0(p, _previous_school_month(when))

    def school_joined(self, school: int, when: date) -> bool:
        s = self.schools[school]
        return s.joins is not None and (s.joins, self.join_month[school]) <= (when.year, when.month)

    def _pupil(self, entry: int, school: int) -> Pupil:
        rng = self.rng
        gender = "M" if rng.random() < 0.5 else "F"
        born = date(entry - 12, 1, 1) + timedelta(days=int(rng.integers(0, 365)))
        coordination = rng.random() < 0.01
        form = int(rng.choice(4, p=[0.5, 0.2, 0.2, 0.1]))
        civic = make_civic(rng, born, gender, form, coordination)
        while _ten_digits(civic) in self.civics:  # one identity number per person
            civic = make_civic(rng, born, gender, form, coordination)
        self.civics.add(_ten_digits(civic))
        schools = [school] * 4
        if rng.random() < 0.06:  # changes school after årskurs 7
            schools[2:] = [int(rng.integers(0, len(self.schools)))] * 2
        absence = float(np.clip(rng.lognormal(np.log(0.06), 0.7), 0.005, 0.6))
        ability = float(rng.normal(0.9, 1.0) - 2.0 * (absence - 0.07))
        marking = str(rng.choice(["Ingen", "Sekretessmarkering", "Skyddad folkbokföring"], p=[0.98, 0.01, 0.01]))
        p = Pupil(
            _guid(rng),
            civic,
            gender,
            entry,
            schools,
            ability,
            absence,
            str(rng.choice(M2_LANGUAGES)) if rng.random() < 0.7 else None,
            str(rng.choice(ML_LANGUAGES)) if rng.random() < 0.15 else None,
            rng.random() < 0.2,
            marking,
        )
        if rng.random() < 0.02:
            p.leaves = date(entry + int(rng.integers(0, 4)), int(rng.choice([3, 10])), 15)
        return p

    def grade_of(self, p: Pupil, y: int) -> int:
        return 6 + y - p.entry_year

    def school_in(self, p: Pupil, d: date) -> int:
        y = d.year if d.month >= 7 else d.year - 1
        return p.schools[min(3, max(0, y - p.entry_year))]

    def enrolled_in_order(self) -> list[Pupil]:
        """Enrolled pupils in order of enrolment: the register's row order."""
        return sorted((p for p in self.pupils if p.enrolled), key=lambda p: p.enrolled)

    def _enrol(self) -> None:
        rng = self.rng
        scale = self.per_class * len(self.schools) / (16 * 30)
        taken: set[int] = set()
        for start, end, target in ENROLMENT_WAVES:
            n = max(1, round(target * scale))
            candidates, dates = [], []
            for i, p in enumerate(self.pupils):
                if i in taken or (p.leaves and p.leaves <= end):
                    continue
                when = _school_day(rng, start, end)
                y = when.year if when.month >= 7 else when.year - 1
                school_no = self.school_in(p, when)
                last_day = date(p.entry_year + 4, 5, 15)  # nobody is enrolled in the last weeks of årskurs 9
                if rng.random() < PEAK_SHARE:
                    when = max(self._after_peak(p, when), start)
                    y = when.year if when.month >= 7 else when.year - 1
                    school_no = self.school_in(p, when)
                if 7 <= self.grade_of(p, y) <= 9 and self.school_joined(school_no, when) and when <= last_day:
                    candidates.append(i)
                    dates.append(when)
            # chosen on the absence the school recorded last month (what school and social
            # services see; selection on something the data never show could not be undone)
            risk = np.array([self.selection_risk(self.pupils[i], d) for i, d in zip(candidates, dates, strict=True)])
            weights = np.exp(2.5 * (risk - risk.max()))
            chosen = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False, p=weights / weights.sum())
            for k in chosen:
                i = candidates[int(k)]
                p = self.pupils[i]
                p.enrolled = dates[int(k)]
                end_of_9 = date(p.entry_year + 4, 6, 12)
                stay = p.enrolled + timedelta(days=int(rng.integers(150, 540)))
                p.exits = min(stay, end_of_9) if min(stay, end_of_9) < date(2017, 1, 15) else None
                p.district = self.schools[self.school_in(p, p.enrolled)].district
                taken.add(i)

    def _after_peak(self, p: Pupil, when: date) -> date:
        """The first school day of the month after the highest recorded absence among the
        four school months before `when`: social services often step in at a peak."""
        months, m = [], when.replace(day=1)
        while len(months) < 4:
            m = _previous_school_month(m)
            months.append(m)
        peak = max(months, key=lambda d: self.recorded_rate0(p, d))
        nxt = (peak.replace(day=28) + timedelta(days=4)).replace(day=1)
        if nxt.month == 7:
            nxt = nxt.replace(month=8, day=20)
        while nxt.weekday() >= 5:
            nxt += timedelta(days=1)
        return nxt

    # --- potential outcomes: (without the programme, with it) --------------------------
    def absence_pair(self, p: Pupil, month: date) -> tuple[float, float]:
        rate0 = self.recorded_rate0(p, month)
        if self.effects == "none" or not (p.enrolled and month >= p.enrolled.replace(day=1)):
            return rate0, rate0
        months = (month.year - p.enrolled.year) * 12 + month.month - p.enrolled.month
        if self.kind == "staggered":
            return rate0, rate0 * (1 - 0.6 * min(1.0, (months + 1) / 12))  # improves over a year
        return rate0, rate0 * (1 - 0.4 * min(1.0, (months + 1) / 4))  # improves over four months

    def term_shock(self, p: Pupil, term_end: date) -> float:
        """Mean absence shock over a term's months (grades suffer in terms of high absence)."""
        last = month_no(p, term_end)
        ks = [k for k in range(last - 5, last + 1) if 0 <= k < MONTHS_PER_PUPIL]
        return float(np.mean(self.shock[p.index, ks])) if ks else 0.0

    def grade_score_pair(self, p: Pupil, term_end: date) -> tuple[float, float]:
        score = p.ability - 0.08 * ((term_end.year - p.entry_year) * 2)  # slight decline over the years
        score -= 0.8 * self.term_shock(p, term_end)
        if self.kind != "demo":
            k = month_no(p, term_end)
            score -= 1.5 * float(self.slope[p.index]) * k  # the latent trajectory shows in grades too
            term = [term_end - timedelta(days=30 * j) for j in range(6)]
            score -= 0.8 * np.mean([self.in_crisis(p, m) for m in term])  # and a crisis
        treated = p.enrolled is not None and term_end > p.enrolled
        lift = 0.6 if treated and p.gender == "M" and p.district in BOYS_IMPROVE else 0.0  # some boys improve
        if self.effects == "none":
            lift = 0.0
        return score, score + lift

    def observed(self, pair: tuple[float, float]) -> float:
        """With the programme for the enrolled (in a world without effects both are equal)."""
        return pair[1]


def _previous_school_month(d: date) -> date:
    """The first day of the school month before d's month (July has no school)."""
    m = (d.replace(day=1) - timedelta(days=1)).replace(day=1)
    return m.replace(month=6) if m.month == 7 else m


def _letter(score: float) -> str:
    for cut, letter in ((-1.3, "F"), (-0.55, "E"), (0.0, "D"), (0.55, "C"), (1.15, "B")):
        if score < cut:
            return letter
    return "A"


def _terms(years: range = SCHOOL_YEARS) -> list[tuple[str, int, date]]:
    out = []
    for y in years:
        out += [("HT", y, date(y, 12, 19)), ("VT", y + 1, date(y + 1, 6, 10))]
    return out


def _write_json_pages(out: Path, stem: str, records: list[dict], page_size: int) -> list[Path]:
    written = []
    pages = [records[i : i + page_size] for i in range(0, len(records), page_size)] or [[]]
    for k, page in enumerate(pages):
        token = None if k == len(pages) - 1 else f"page-{k + 2}"
        path = out / f"{stem}_{k + 1:03d}.json"
        path.write_text(json.dumps({"data": page, "pageToken": token}, ensure_ascii=False), encoding="utf-8")
        written.append(path)
    return written


class _PageWriter:
    """SS 12000 pages written as records arrive: `{"data": [...], "pageToken": ...}`."""

    def __init__(self, folder: Path, stem: str, page_size: int) -> None:
        self.folder, self.stem, self.page_size = folder, stem, page_size
        self.buffer: list[dict] = []
        self.count = self.pages = 0

    def add(self, record: dict) -> None:
        self.buffer.append(record)
        self.count += 1
        if len(self.buffer) == self.page_size:
            self._flush(last=False)

    def _flush(self, last: bool) -> None:
        self.pages += 1
        token = None if last else f"page-{self.pages + 1}"
        path = self.folder / f"{self.stem}_{self.pages:03d}.json"
        path.write_text(json.dumps({"data": self.buffer, "pageToken": token}, ensure_ascii=False), encoding="utf-8")
        self.buffer = []

    def close(self) -> int:
        if self.buffer or not self.pages:
            self._flush(last=True)
        else:  # the last full page said another would follow: rewrite its token
            path = self.folder / f"{self.stem}_{self.pages:03d}.json"
            doc = json.loads(path.read_text(encoding="utf-8"))
            doc["pageToken"] = None
            path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return self.count


def _pupil_grades(world: DemoWorld, terms: list[tuple[str, int, date]], seed: int, i: int) -> list[dict]:
    """One pupil's terminsbetyg, the same in every export (a random stream per pupil). Each
    grade carries both potential values, `value0` without the programme and `value1` with it,
    drawn from the same random numbers; `value` is the one this world observes."""
    rng = np.random.default_rng([seed, i])
    p = world.pupils[i]
    mine = []
    for term, year, when in terms:
        y = year if term == "HT" else year - 1
        g = world.grade_of(p, y)
        if not 6 <= g <= 9 or (p.leaves and p.leaves <= when):
            continue
        school = world.schools[world.school_in(p, when)]
        absent0 = p.absence * 1.3 * float(np.exp(world.term_shock(p, when)))
        treated = p.enrolled is not None and p.enrolled < when
        # fewer streck once attendance improves
        absent1 = absent0 * 0.6 if treated and world.effects == "builtin" else absent0
        base0, base1 = world.grade_score_pair(p, when)
        subjects = [("SVA" if p.sva else s, None) for s in SUBJECTS]
        if p.m2 and g >= 6:
            subjects.append(("M2", p.m2))
        if p.ml:
            subjects.append(("ML", p.ml))
        for subject, lang in subjects:
            # a streck (no basis for assessment) becomes likely with very high absence
            u, noise = rng.random(), rng.normal(0, 0.6)
            value0 = "-" if absent0 > 0.25 and u < absent0 else _letter(base0 + noise)
            value1 = "-" if absent1 > 0.25 and u < absent1 else _letter(base1 + noise)
            mine.append(
                {
                    "subject": subject,
                    "lang": lang,
                    "value": world.observed((value0, value1)),
                    "value0": value0,
                    "value1": value1,
                    "term": term,
                    "year": year,
                    "date": when,
                    "school": school.guid,
                    "final": term == "VT" and g == 9,
                    "long": i % 9 == 0,
                }
            )
    return mine


def write_demo(
    out: Path,
    seed: int = 2016,
    scale: str = "demo",
    effects: str = "builtin",
    one_year: bool = False,
    world: str = "demo",
) -> dict[str, int]:
    """Write the demo inputs to `out`, and the true effects beside them (`TRUE_EFFECTS.json`);
    returns counts of what was written. The writers draw from the world's random stream in
    this order, so the same seed writes the same bytes.

    `one_year` writes only the last school year's attendance and grades (one grade export
    for 2016/17, with from="2016-07-01") beside every person, organisation and register row:
    the same world at a fifth of the volume, for a country-scale benchmark on one machine.
    Its true effects cover what was written."""
    out = Path(out)
    kind = world
    world = DemoWorld(seed, scale, effects, kind)
    truth = Truth(world)
    years = SCHOOL_YEARS[-1:] if one_year else SCHOOL_YEARS
    _write_marker(out)
    _write_organisations(out, world)
    counts = {
        "persons": _write_persons(out, world),
        "attendance": _write_attendance(out, world, truth, years),
        "grade_elements": _write_grades(out, world, truth, seed, years),
        "register": _write_register(out, world),
    }
    for defect in PLANTED_DEFECTS:
        truth.lost.update(defect.pupils(world))
    truth.write(out)
    return counts


def _write_marker(out: Path) -> None:
    for sub in ("ss12000", "skolplattformen", "socialtjansten"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text(
        "Demo data written by `ppss demo-data`: fake persons, valid-looking identity numbers.\n"
        "This marker lets the pipeline use its built-in demo pseudonymisation key.\n",
        encoding="utf-8",
    )


def _write_organisations(out: Path, world: DemoWorld) -> None:
    """The Organisations pages and skolenheter.csv (which places each school in a stadsdel)."""
    orgs = [
        {
            "id": _guid(world.rng),
            "displayName": "Stockholms stad",
            "organisationType": "Huvudman",
            "municipalityCode": "0180",
        }
    ]
    orgs += [
        {
            "id": s.guid,
            "displayName": s.name,
            "organisationType": "Skolenhet",
            "schoolUnitCode": s.code,
            "municipalityCode": "0180",
            "schoolTypes": ["GR"],
        }
        for s in world.schools
    ]
    _write_json_pages(out / "ss12000", "organisations", orgs, 500)
    lines = ["skolenhetskod;skolnamn;stadsdel;huvudman"] + [
        f"{s.code};{s.name};{s.district};{s.huvudman}" for s in world.schools
    ]
    (out / "skolenheter.csv").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")


def _school_enrolments(world: DemoWorld, p: Pupil) -> list[dict]:
    """A pupil's SS 12000 enrolments, one per school year; the current year's is ongoing."""
    enrolments = []
    for k in range(4):
        y = p.entry_year + k
        if y not in SCHOOL_YEARS:
            continue
        start, end = date(y, 8, 20), date(y + 1, 6, 12)
        if p.leaves and p.leaves < start:
            break
        enr = {
            "enroledAt": {"id": world.schools[p.schools[k]].guid},
            "schoolYear": 6 + k,
            "schoolType": "GR",
            "startDate": start.isoformat(),
            "cancelled": False,
        }
        last = p.leaves and p.leaves <= end
        if not (y == 2016 and not last):
            enr["endDate"] = (p.leaves if last else end).isoformat()
        enrolments.append(enr)
    return enrolments


def _write_persons(out: Path, world: DemoWorld) -> int:
    """Persons with their enrolments, in pages; planted: identity numbers with a typo."""
    typos = set(DEFECTS["person_check_digit"].places(world))
    persons = []
    for i, p in enumerate(world.pupils):
        civic = p.civic
        if i in typos:  # a typing error: the check digit fails
            civic = civic[:-1] + str((int(civic[-1]) + 1) % 10)
        persons.append(
            {
                "id": p.guid,
                "givenName": str(world.rng.choice(GIVEN)),
                "familyName": str(world.rng.choice(FAMILY)),
                "civicNo": {"value": civic, "nationality": "SE"},
                "securityMarking": p.marking,
                "enrolments": _school_enrolments(world, p),
            }
        )
    _write_json_pages(out / "ss12000", "persons", persons, 1000)
    return len(persons)


def _school_months(y: int) -> list[date]:
    return [date(y, m, 1) for m in range(8, 13)] + [date(y + 1, m, 1) for m in range(1, 7)]


def _write_attendance(out: Path, world: DemoWorld, truth: Truth, years: range = SCHOOL_YEARS) -> int:
    """One record per pupil and month (one school reports Dec-Jan as one period), written page
    by page so memory stays bounded at city and country scale; planted: impossible minutes."""
    rng = world.rng
    pages = _PageWriter(out / "ss12000", "attendance", 20_000)
    too_much = set(DEFECTS["absence_above_offered"].places(world))
    negative = set(DEFECTS["negative_minutes"].places(world))
    straddle = {world.schools[3].guid}
    for p in world.pupils:
        activity = _guid(rng)
        for y in years:
            if not 0 <= y - p.entry_year <= 3:
                continue
            for m in _school_months(y):
                if p.leaves and m >= p.leaves.replace(day=1):
                    break
                school = world.schools[world.school_in(p, m)]
                if m.month == 1 and school.guid in straddle:
                    continue
                start = max(m, date(y, 8, 20))
                nxt = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
                end = min(nxt - timedelta(days=1), date(y + 1, 6, 12))
                if m.month == 12 and school.guid in straddle:
                    end = date(y + 1, 1, 31)
                if rng.random() < 0.01:
                    continue  # a month never reported: missing data, not zero absence
                pair = world.absence_pair(p, m)
                if p.enrolled:
                    truth.add_month(p, m, pair)
                    if end.month == 1:  # one record for December and January
                        truth.add_month(p, date(y + 1, 1, 1), pair)
                record = _attendance_record(p, activity, y, start, end, world.observed(pair))
                if pages.count in too_much:
                    record["invalidAbsenceSum"] = record["offeredSum"] + 60  # absence > offered
                if pages.count in negative:
                    record["validAbsenceSum"] = -30  # negative minutes
                pages.add(record)
    return pages.close()


def _attendance_record(p: Pupil, activity: str, y: int, start: date, end: date, rate: float) -> dict:
    offered = int(np.busday_count(start, end + timedelta(days=1))) * 330
    absent = round(offered * rate)
    invalid = round(absent * (0.3 + 0.4 * (p.absence > 0.1)))
    return {
        "activity": {"id": activity, "displayName": f"Klass {6 + y - p.entry_year}"},
        "student": {"id": p.guid},
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "attendanceSum": offered - absent,
        "validAbsenceSum": absent - invalid,
        "invalidAbsenceSum": invalid,
        "otherAttendanceSum": 0,
        "reportedSum": offered,
        "offeredSum": offered,
    }


GRADE_EXPORTS = [(date(2015, 6, 30), "betyg_export_2015-06-30.xml"), (date(2017, 6, 30), "betyg_export_2017-06-30.xml")]


def _write_grades(out: Path, world: DemoWorld, truth: Truth, seed: int, years: range = SCHOOL_YEARS) -> int:
    """Two successive grade exports; each <elev> carries the complete list at export time
    (one export of the last school year when `years` is that year alone).
    Returns the number of grade elements written."""
    terms = _terms(years)
    since = date(years[0], 7, 1)
    exports = [e for e in GRADE_EXPORTS if e[0] > since]
    n_elements = 0
    with ExitStack() as stack:
        folder = out / "skolplattformen"
        files = [stack.enter_context(open(folder / name, "w", encoding="utf-8")) for _, name in exports]
        for fh, (tom, _) in zip(files, exports, strict=True):
            fh.write(
                '<?xml version="1.0" encoding="utf-8"?>\n<betyg xmlns="http://pingpong.se/schemas/grades/v1.1" '
                f'from="{since.isoformat()}" tom="{tom.isoformat()}">\n'
            )
        # One pass over the pupils writes every export: a pupil's grades are drawn once.
        for i, p in enumerate(world.pupils):
            grades = _pupil_grades(world, terms, seed, i)
            for k, (fh, (tom, _)) in enumerate(zip(files, exports, strict=True)):
                earlier = exports[k - 1][0] if k else since
                last = k == len(exports) - 1
                mine = [g for g in grades if g["date"] <= tom]
                if last and p.enrolled:
                    truth.add_grades(p, mine)
                if not any(g["date"] > earlier for g in mine):
                    continue
                if k == 0 and i % 97 == 1 and mine:
                    mine = [*mine, {**mine[0], "subject": "HKK", "value": "F"}]  # a duplicate, later removed
                if k == 1 and i % 53 == 0 and mine:
                    mine[0] = {**mine[0], "value": "E" if mine[0]["value"] == "F" else mine[0]["value"]}  # corrected
                n_elements += _write_pupil_grades(fh, world, i, p, mine, tom, with_course=last and i % 150 == 7)
        for fh in files:
            fh.write("</betyg>\n")
    return n_elements


def _write_pupil_grades(fh, world: DemoWorld, i: int, p: Pupil, mine: list[dict], tom: date, with_course: bool) -> int:
    """One <elev>: its ämnesbetyg as the platform writes them (long codes, guids with braces,
    a missing <termin>); planted: a grade of another scale and an unknown subject code."""
    other_scale, unknown = DEFECTS["grade_of_another_scale"].at, DEFECTS["unknown_subject_code"].at
    fh.write(f'  <elev id="{_xml_guid(p.guid, i)}">\n')
    for j, g in enumerate(mine):
        code = LONG.get(g["subject"], g["subject"]) if g["long"] else g["subject"]
        lang = f"<språk>{g['lang']}</språk>" if g["lang"] else ""
        termin = "" if (i + j) % 211 == 0 else f"<termin><typ>{g['term']}</typ><år>{g['year']}</år></termin>"
        value = "G" if (i, j) == other_scale else g["value"]
        if (i, j) == unknown:
            code = "XYZ"
        school = _xml_guid(g["school"], j) if (i + j) % 401 else "{" + g["school"][:-1] + "}"
        fh.write(
            f"    <ämnesbetyg><value>{escape(value)}</value><datum>{g['date'].isoformat()}</datum>"
            f"<prövning>false</prövning><skola>{school}</skola><skolform>GR</skolform>"
            f"<ämnesförkortning>{code}</ämnesförkortning>{lang}{termin}"
            f"<slutbetyg>{str(g['final']).lower()}</slutbetyg></ämnesbetyg>\n"
        )
    if with_course:  # an upper-secondary course grade: counted, not used
        fh.write(
            f"    <kursbetyg><value>C</value><datum>{tom.isoformat()}</datum><prövning>false</prövning>"
            f"<skola>{_xml_guid(world.schools[0].guid, 1)}</skola><skolform>GY</skolform>"
            "<kurskod>ENGENG05</kurskod></kursbetyg>\n"
        )
    fh.write("  </elev>\n")
    return len(mine) + with_course


REGISTER_HEADER = [
    "Personnummer",
    "Program",
    "Stadsdel",
    "Skolenhetskod",
    "Inskriven",
    "Utskriven",
    "Urvalsgrund",
    "Insatser",
]


def _register_rows(world: DemoWorld) -> list[list]:
    """One register row per enrolled pupil, typed as by hand; planted: a typo in a
    Personnummer and a selection reason outside the vocabulary."""
    rng = world.rng
    rows = []
    for n, p in enumerate(world.enrolled_in_order()):
        reasons, actions = DISTRICT_STYLE[p.district]
        r = [x for x in reasons if rng.random() < 0.8] or reasons[:1]
        if p.absence > 0.12 and "Hög frånvaro" not in r:
            r.append("Hög frånvaro")
        if rng.random() < 0.1:
            r.append("Annat")
        a = [x for x in actions if rng.random() < 0.7] or actions[:1]
        school = world.schools[world.school_in(p, p.enrolled)]
        civic = p.civic if n % 4 else p.civic.replace("-", "")
        if n % 7 == 3 and len(civic) == 13:
            civic = civic[2:]  # YYMMDD-NNNC
        reasons_text = ", ".join(r)
        if n % 5 == 2:
            reasons_text = reasons_text.lower().replace(", ", " ,")  # case and spacing as typed by hand
        programme = "" if n % 6 == 0 else "PPSS"
        rows.append([civic, programme, p.district, school.code, p.enrolled, p.exits, reasons_text, ", ".join(a)])
    for t in DEFECTS["register_check_digit"].places(world):
        rows[t][0] = rows[t][0][:-1] + str((int(rows[t][0][-1]) + 3) % 10)  # a typing error in Personnummer
    for t in DEFECTS["register_unknown_reason"].places(world):
        rows[t][6] += ", Skolk"
    return rows


def _write_register(out: Path, world: DemoWorld) -> int:
    """The social services' register: an Excel workbook (2013-2015) and a Windows-1252 CSV (2016)."""
    rows = _register_rows(world)
    _write_register_workbook(
        out / "socialtjansten" / "ppss_inskrivna_2013-2015.xlsx", [r for r in rows if r[4] < date(2016, 1, 1)]
    )
    late = [r for r in rows if r[4] >= date(2016, 1, 1)]
    csv_lines = (
        [";".join(REGISTER_HEADER)]
        + [";".join("" if v is None else v.isoformat() if isinstance(v, date) else str(v) for v in r) for r in late]
        + [";;;;;;;"]
    )
    (out / "socialtjansten" / "ppss_2016.csv").write_bytes(("\r\n".join(csv_lines) + "\r\n").encode("cp1252"))
    return len(rows)


def _write_register_workbook(path: Path, rows: list[list]) -> None:
    """Dates mostly as Excel date cells, every tenth typed as text; formatted empty rows at the end."""
    book = xlsxwriter.Workbook(str(path))
    book.set_properties({"created": datetime(2016, 12, 1)})  # same bytes on every run: loading twice changes nothing
    sheet = book.add_worksheet("Inskrivna")
    datefmt = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, [f" {h} " if h == "Urvalsgrund" else h for h in REGISTER_HEADER])
    for k, r in enumerate(rows, start=1):
        for c, v in enumerate(r):
            if isinstance(v, date) and k % 10:
                sheet.write_datetime(k, c, datetime(v.year, v.month, v.day), datefmt)
            elif isinstance(v, date):
                sheet.write_string(k, c, v.isoformat())  # typed as text by hand
            elif v not in (None, ""):
                sheet.write_string(k, c, str(v))
    for k in range(len(rows) + 1, len(rows) + 4):
        sheet.write_blank(k, 0, None, datefmt)
    book.close()
