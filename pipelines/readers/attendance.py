"""SS 12000 `aggregatedAttendance` pages (data contract 1.4): one row per record."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..identity import GUID_RE, normalise_guid, platform_ref
from . import Extract, load_json_page, with_date_checks

MINUTES = ["attendanceSum", "validAbsenceSum", "invalidAbsenceSum", "otherAttendanceSum", "reportedSum", "offeredSum"]
COLUMNS = ["attendance", "valid_absence", "invalid_absence", "other_attendance", "reported", "offered"]


def _minutes(value: object) -> str | None:
    # Kept as text so validation can tell "12.5" and "-3" from a missing value.
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_attendance(path: Path, key: bytes) -> Extract:
    records = load_json_page(path, "aggregatedAttendance")
    rows = []
    for i, rec in enumerate(records):
        rec = rec if isinstance(rec, dict) else {}
        student = rec.get("student") if isinstance(rec.get("student"), dict) else {}
        activity = rec.get("activity") if isinstance(rec.get("activity"), dict) else {}
        guid = normalise_guid(student.get("id"))
        row = {
            "_row": i,
            "_loc": f"data[{i}]",
            "person_ref": platform_ref(key, "person", guid),
            "person_id_status": "ok" if guid and GUID_RE.match(guid) else "malformed",
            "activity_ref": platform_ref(key, "activity", activity.get("id")),
            "start_date": rec.get("startDate"),
            "end_date": rec.get("endDate"),
        }
        row.update({col: _minutes(rec.get(src)) for src, col in zip(MINUTES, COLUMNS, strict=True)})
        rows.append(row)
    schema = {
        "_row": pl.Int64,
        **{
            c: pl.String
            for c in ["_loc", "person_ref", "person_id_status", "activity_ref", "start_date", "end_date", *COLUMNS]
        },
    }
    df = pl.DataFrame(rows, schema=schema)
    # Typed minutes beside the text: null where the text is not a whole number.
    df = df.with_columns(pl.col(c).cast(pl.Int64, strict=False).alias(f"{c}_min") for c in COLUMNS)
    df = df.with_columns(
        (pl.col("valid_absence_min") + pl.col("invalid_absence_min")).alias("absence_min"),
        (pl.col("attendance_min") + pl.col("valid_absence_min") + pl.col("invalid_absence_min")).alias("accounted_min"),
    )
    return Extract(with_date_checks(df, ["start_date", "end_date"]), rows_read=len(records))
