"""SS 12000 `Persons` pages (data contract 1.1): one row per person and enrolment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from ..identity import GUID_RE, InvalidIdentity, normalise_guid, parse_identity, platform_ref, pupil_key
from . import Extract, load_json_page, with_date_checks

SCHEMA = {
    "_row": pl.Int64,
    "_loc": pl.String,
    "person_ref": pl.String,
    "person_id_status": pl.String,
    "civic_no_status": pl.String,
    "pupil_key": pl.String,
    "gender": pl.String,
    "birth_year": pl.Int32,
    "security_marking": pl.String,
    "enrolment_loc": pl.String,
    "school_ref": pl.String,
    "school_year": pl.String,
    "school_type": pl.String,
    "start_date": pl.String,
    "end_date": pl.String,
    "cancelled": pl.Boolean,
}


def _text(value: object) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def read_persons(path: Path, key: bytes, on: date) -> Extract:
    records = load_json_page(path, "Persons")
    rows: list[dict] = []
    for i, person in enumerate(records):
        loc = f"data[{i}]"
        if not isinstance(person, dict):
            person = {}
        guid = normalise_guid(person.get("id"))
        civic = (person.get("civicNo") or {}).get("value") if isinstance(person.get("civicNo"), dict) else None
        base = {
            "_row": i,
            "_loc": loc,
            "person_ref": platform_ref(key, "person", guid),
            "person_id_status": "ok" if guid and GUID_RE.match(guid) else "malformed",
            "civic_no_status": "ok",
            "pupil_key": None,
            "gender": None,
            "birth_year": None,
            "security_marking": _text(person.get("securityMarking")) or "Ingen",
        }
        try:
            ident = parse_identity(civic, on)
            base.update(pupil_key=pupil_key(key, ident.digits12), gender=ident.gender, birth_year=ident.birth_date.year)
        except InvalidIdentity as e:
            base["civic_no_status"] = e.rule
        enrolments = person.get("enrolments") or []
        empty = {
            k: None
            for k in (
                "enrolment_loc",
                "school_ref",
                "school_year",
                "school_type",
                "start_date",
                "end_date",
                "cancelled",
            )
        }
        if not enrolments:
            rows.append({**base, **empty})
        for j, enr in enumerate(enrolments):
            enr = enr if isinstance(enr, dict) else {}
            at = enr.get("enroledAt") if isinstance(enr.get("enroledAt"), dict) else {}
            rows.append(
                {
                    **base,
                    "enrolment_loc": f"{loc}.enrolments[{j}]",
                    "school_ref": platform_ref(key, "organisation", at.get("id")),
                    "school_year": _text(enr.get("schoolYear")),
                    "school_type": _text(enr.get("schoolType")),
                    "start_date": _text(enr.get("startDate")),
                    "end_date": _text(enr.get("endDate")),
                    "cancelled": bool(enr.get("cancelled", False)),
                }
            )
    df = pl.DataFrame(rows, schema=SCHEMA)
    # Årskurs 1 starts the autumn a child turns 7 (skollagen 7 kap. 10 §), so a pupil in
    # årskurs g in the school year starting in year y was born about y - 6 - g. Two years
    # either way allow for pupils held back, starting early or placed after arrival.
    start_year = pl.col("start_date").str.slice(0, 4).cast(pl.Int32, strict=False) - (
        pl.col("start_date").str.slice(5, 2).cast(pl.Int32, strict=False) < 7
    ).cast(pl.Int32)
    expected = start_year - 6 - pl.col("school_year").cast(pl.Int32, strict=False)
    df = df.with_columns(((pl.col("birth_year") - expected).abs() <= 2).fill_null(True).alias("age_fits_school_year"))
    return Extract(with_date_checks(df, ["start_date", "end_date"]), rows_read=len(records))
