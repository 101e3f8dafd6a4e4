"""What the store covers, and where a report comes from.

`ppss report` checks the store's coverage before it runs the notebook: a year without data
is refused with the years that can be reported, and a year the data only partly cover gets a
banner in the report ("närvaro finns till och med 2017-06-30"). The report's first page
records when it was made and from which deliveries (file names and checksums, never content).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import PurePath

import duckdb

from pipelines.ingest.kinds import LABELS as KIND_LABELS
from pipelines.rules.identity import looks_personal  # each input kind's Swedish name, defined with the kind


@dataclass(frozen=True)
class Coverage:
    """First and last day with attendance, first and last year with grades, first enrolment."""

    attendance: tuple[dt.date, dt.date] | None
    grades: tuple[int, int] | None
    last_grade_term: tuple[str, int] | None
    first_enrolment: dt.date | None

    def reportable_years(self) -> list[int]:
        """Years with attendance or grades, from the programme's first enrolment on (before it
        there is nothing to follow up)."""
        years: set[int] = set()
        if self.attendance:
            years |= set(range(self.attendance[0].year, self.attendance[1].year + 1))
        if self.grades:
            years |= set(range(self.grades[0], self.grades[1] + 1))
        start = self.first_enrolment.year if self.first_enrolment else min(years, default=0)
        return sorted(y for y in years if y >= start)

    def last_day(self) -> dt.date | None:
        ends = [self.attendance[1]] if self.attendance else []
        if self.last_grade_term:
            term, year = self.last_grade_term
            ends.append(dt.date(year, 6, 30) if term == "VT" else dt.date(year, 12, 31))
        return max(ends) if ends else None

    def partial(self, year: int) -> bool:
        end = self.last_day()
        return end is not None and end < dt.date(year, 12, 31)


def store_coverage(con: duckdb.DuckDBPyConnection) -> Coverage:
    # Attendance is kept per month: the data cover a month from its first day to its last.
    def one(sql: str) -> tuple:
        rows = con.execute(sql).fetchall()
        return rows[0] if rows else (None,)

    att = one(
        "select min(month_start), last_day(max(month_start)) from pupil_month_attendance where offered_minutes > 0"
    )
    grades = one("select min(term_year), max(term_year) from term_grades")
    last_term = one(
        "select term, term_year from term_grades group by term, term_year "
        "order by term_year desc, term = 'HT' desc limit 1"
    )
    first = one("select min(start_date) from programme_enrolments")[0]
    return Coverage(
        attendance=(att[0], att[1]) if att[0] is not None else None,
        grades=(grades[0], grades[1]) if grades[0] is not None else None,
        last_grade_term=(last_term[0], last_term[1]) if last_term[0] is not None else None,
        first_enrolment=first,
    )


def years_text(years: list[int]) -> str:
    """[2013, 2014, 2015] -> '2013–2015'; gaps are listed."""
    if not years:
        return "inga"
    runs: list[list[int]] = []
    for y in years:
        if runs and y == runs[-1][-1] + 1:
            runs[-1].append(y)
        else:
            runs.append([y])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def refusal(cov: Coverage, year: int) -> str | None:
    """Why `year` cannot be reported, naming the years that can (None: it can)."""
    years = cov.reportable_years()
    if year in years:
        return None
    return f"the store has no data for {year}; years that can be reported: {years_text(years)}"


def banner(cov: Coverage, year: int) -> str:
    """A Swedish note for a year the data cover only in part ('' when the year is complete)."""
    if not cov.partial(year):
        return ""
    parts = []
    if cov.attendance:
        parts.append(f"närvaro finns till och med {cov.attendance[1].isoformat()}")
    if cov.last_grade_term:
        term, y = cov.last_grade_term
        parts.append(f"betyg till och med {'vårterminen' if term == 'VT' else 'höstterminen'} {y}")
    return (
        f"> **Uppgifterna för {year} är ofullständiga:** {' och '.join(parts)}. "
        "Rapporten visar det som finns; siffror för året kan ändras när resten av året levereras."
    )


def absence_terms(cov: Coverage, year: int) -> str:
    """'vårterminen och höstterminen 2016', or only the spring term when the data end in June."""
    if cov.attendance and cov.attendance[1] < dt.date(year, 7, 1):
        return f"vårterminen {year} (till och med {cov.attendance[1].isoformat()})"
    return f"vårterminen och höstterminen {year}"


def short_checksum(checksum: str) -> str:
    return checksum.split(":")[-1][:12]


def shown_name(path: str) -> str:
    """A delivery's file name as the report shows it: never its folder, and never a name that
    looks like it holds an identity number or platform id (hand-kept files get named anything)."""
    name = PurePath(path).name
    return "(filnamnet visas inte: det liknar en personuppgift)" if looks_personal(name) else name


def provenance(con: duckdb.DuckDBPyConnection, built_at: dt.datetime | None = None) -> str:
    """The first page's provenance: when the report and the store were made, and each current
    delivery by file name, kind, load time and checksum (the file's folder is not shown)."""
    built_at = built_at or dt.datetime.now().astimezone()
    meta = dict(con.execute("select key, value from meta").fetchall())
    files = con.execute(
        "select path, kind, checksum, loaded_at from load_log where status = 'loaded' order by kind, path"
    ).fetchall()
    rows = "\n".join(
        f"| {shown_name(p)} | {KIND_LABELS.get(k, k)} | {loaded:%Y-%m-%d %H:%M} | `{short_checksum(c)}` |"
        for p, k, c, loaded in files
    )
    snapshot = (meta.get("built_at") or "okänt")[:16]
    return (
        f"**Rapporten framställd** {built_at:%Y-%m-%d %H:%M}. **Dataunderlag:** databasen byggd {snapshot}, "
        f"ur {len(files)} leveranser (filnamn och kontrollsumma SHA-256, de första tolv tecknen):\n\n"
        "| Fil | Indata | Inläst | Kontrollsumma |\n| --- | --- | --- | --- |\n" + rows
    )
