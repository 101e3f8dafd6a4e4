"""SS 12000 `aggregatedAttendance` pages (data contract 1.4): one row per record."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipelines.ingest.readers import (
    Extract,
    InputKind,
    ReadContext,
    Shape,
    add_problem,
    as_date,
    load_json_page,
    normalise_date,
    record,
    with_date_checks,
    with_future_checks,
)
from pipelines.rules.identity import GUID_RE, normalise_guid, platform_ref

MINUTES = ["attendanceSum", "validAbsenceSum", "invalidAbsenceSum", "otherAttendanceSum", "reportedSum", "offeredSum"]
COLUMNS = ["attendance", "valid_absence", "invalid_absence", "other_attendance", "reported", "offered"]
SCHEMA = {
    "_row": pl.Int64,
    **{
        c: pl.String
        for c in [
            "_loc",
            "row_problem",
            "person_ref",
            "person_id_status",
            "activity_ref",
            "start_date",
            "end_date",
            *COLUMNS,
        ]
    },
}


def _minutes(value: object) -> str | None:
    # Kept as text so validation can tell "12.5" and "-3" from a missing value.
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _general_row(i: int, raw_rec: object, key: bytes) -> tuple:
    """One record whatever its shape: a value in the wrong shape is noted, not a crash."""
    rec, problem = record(raw_rec)
    shape = Shape()
    student = shape.object(rec, "student", "student")
    activity = shape.object(rec, "activity", "activity")
    guid = normalise_guid(shape.text(student, "id", "student.id"))
    activity_ref = platform_ref(key, "activity", shape.text(activity, "id", "activity.id"))
    start = normalise_date(shape.text(rec, "startDate", "startDate"))
    end = normalise_date(shape.text(rec, "endDate", "endDate"))
    minutes = [_minutes(shape.value(rec, src, src)) for src in MINUTES]
    row_problem = problem or shape.problem
    status = None if row_problem else ("ok" if guid and GUID_RE.match(guid) else "malformed")
    return (i, f"data[{i}]", row_problem, platform_ref(key, "person", guid), status, activity_ref, start, end, *minutes)


def _text(value: str) -> str | None:
    return value.strip() or None


def read_attendance(path: Path, key: bytes, on: date) -> Extract:
    records = load_json_page(path, "aggregatedAttendance")
    rows = []
    # Records of the usual shape (objects, text ids and dates, whole minutes) take a short path
    # giving the same row as the general one; a page repeats its pupils, activities and dates,
    # so their keyed hashes and normal forms are computed once.
    people: dict[str, tuple[str | None, str]] = {}
    activities: dict[str, str | None] = {}
    dates: dict[str, str | None] = {}
    for i, rec in enumerate(records):
        if type(rec) is dict:
            student, activity = rec.get("student"), rec.get("activity")
            sid = student.get("id") if type(student) is dict else None
            aid = activity.get("id") if type(activity) is dict else None
            start, end = rec.get("startDate"), rec.get("endDate")
            minutes = [rec.get(src) for src in MINUTES]
            if (
                type(sid) is str
                and type(aid) is str
                and type(start) is str
                and type(end) is str
                and all(type(m) is int for m in minutes)
            ):
                if sid not in people:
                    guid = normalise_guid(_text(sid))
                    people[sid] = (
                        platform_ref(key, "person", guid),
                        "ok" if guid and GUID_RE.match(guid) else "malformed",
                    )
                if aid not in activities:
                    activities[aid] = platform_ref(key, "activity", _text(aid))
                for d in (start, end):
                    if d not in dates:
                        dates[d] = normalise_date(_text(d))
                ref, status = people[sid]
                rows.append(
                    (i, f"data[{i}]", None, ref, status, activities[aid], dates[start], dates[end], *map(str, minutes))
                )
                continue
        rows.append(_general_row(i, rec, key))
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    # Typed minutes beside the text: null where the text is not a whole number.
    df = df.with_columns(pl.col(c).cast(pl.Int64, strict=False).alias(f"{c}_min") for c in COLUMNS)
    df = df.with_columns(
        (pl.col("valid_absence_min") + pl.col("invalid_absence_min")).alias("absence_min"),
        (pl.col("attendance_min") + pl.col("valid_absence_min") + pl.col("invalid_absence_min")).alias("accounted_min"),
    )
    # Open-ended or far-future periods first: they would spread minutes over terms up to year 9999.
    df = with_future_checks(df, {"start_date": "startDate", "end_date": "endDate"}, on)
    # No period holds more minutes than its days have; digits too many for a 64-bit count are
    # quarantined here rather than read as "missing".
    days = (as_date("end_date") - as_date("start_date")).dt.total_days() + 1
    for src, col in zip(MINUTES, COLUMNS, strict=True):
        too_large = pl.col(col).str.contains(r"^\d+$") & pl.col(f"{col}_min").is_null()
        df = add_problem(df, too_large | (pl.col(f"{col}_min") > days * 1440), f"minutes_implausible:{src}")
    return Extract(with_date_checks(df, ["start_date", "end_date"]), rows_read=len(records))


def table_rows(rows: pl.DataFrame, dropped: set[int]) -> dict[str, pl.DataFrame]:
    return {
        "src_attendance": rows.select(
            pl.col("_loc").alias("location"),
            "person_ref",
            "activity_ref",
            pl.col("start_date").str.to_date(),
            pl.col("end_date").str.to_date(),
            *[pl.col(f"{c}_min").alias(c) for c in COLUMNS],
        )
    }


def _read(path: Path, ctx: ReadContext) -> Extract:
    return read_attendance(path, ctx.key, ctx.on)


KIND = InputKind(
    name="attendance",
    patterns=("attendance*.json",),
    tables=("src_attendance",),
    label="Närvaro (SS 12000)",
    row_unit="närvaroposter",
    row_unit_en="attendance records",
    batched=True,
    check_unit="en rad per närvaropost",
    read=_read,
    table_rows=table_rows,
)
