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


def _minutes(value: object) -> str | None:
    # Kept as text so validation can tell "12.5" and "-3" from a missing value.
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_attendance(path: Path, key: bytes, on: date) -> Extract:
    records = load_json_page(path, "aggregatedAttendance")
    rows = []
    for i, raw_rec in enumerate(records):
        rec, problem = record(raw_rec)
        shape = Shape()
        student = shape.object(rec, "student", "student")
        activity = shape.object(rec, "activity", "activity")
        guid = normalise_guid(shape.text(student, "id", "student.id"))
        row = {
            "_row": i,
            "_loc": f"data[{i}]",
            "person_ref": platform_ref(key, "person", guid),
            "activity_ref": platform_ref(key, "activity", shape.text(activity, "id", "activity.id")),
            "start_date": normalise_date(shape.text(rec, "startDate", "startDate")),
            "end_date": normalise_date(shape.text(rec, "endDate", "endDate")),
        }
        row.update({col: _minutes(shape.value(rec, src, src)) for src, col in zip(MINUTES, COLUMNS, strict=True)})
        row["row_problem"] = problem or shape.problem
        row["person_id_status"] = (
            None if row["row_problem"] else ("ok" if guid and GUID_RE.match(guid) else "malformed")
        )
        rows.append(row)
    schema = {
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
    df = pl.DataFrame(rows, schema=schema)
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
    read=_read,
    table_rows=table_rows,
)
