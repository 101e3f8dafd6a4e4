"""SS 12000 `Persons` pages (data contract 1.1): one row per person and enrolment."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.codes import SCHOOL_TYPES
from pipelines.ingest.readers import (
    Extract,
    InputKind,
    ReadContext,
    Shape,
    load_json_page,
    normalise_date,
    record,
    with_date_checks,
    with_future_checks,
)
from pipelines.rules.identity import GUID_RE, InvalidIdentity, normalise_guid, parse_identity, platform_ref, pupil_key

SCHEMA = {
    "_row": pl.Int64,
    "_loc": pl.String,
    "row_problem": pl.String,
    "person_ref": pl.String,
    "person_id_status": pl.String,
    "civic_no_status": pl.String,
    "pupil_key": pl.String,
    "gender": pl.String,
    "birth_year": pl.Int32,
    "security_marking": pl.String,
    "enrolment_loc": pl.String,
    "enrolment_problem": pl.String,
    "school_ref": pl.String,
    "school_year": pl.String,
    "school_type": pl.String,
    "start_date": pl.String,
    "end_date": pl.String,
    "cancelled": pl.Boolean,
}
ENROLMENT_FIELDS = [
    "enrolment_loc",
    "enrolment_problem",
    "school_ref",
    "school_year",
    "school_type",
    "start_date",
    "end_date",
    "cancelled",
]


def read_persons(path: Path, key: bytes, on: date) -> Extract:
    records = load_json_page(path, "Persons")
    rows: list[dict] = []
    for i, raw_person in enumerate(records):
        loc = f"data[{i}]"
        person, problem = record(raw_person)
        shape = Shape()
        guid = normalise_guid(shape.text(person, "id", "id"))
        civic_obj = shape.object(person, "civicNo", "civicNo")
        civic = shape.text(civic_obj, "value", "civicNo.value")
        marking = shape.text(person, "securityMarking", "securityMarking")
        enrolments = shape.items(person, "enrolments", "enrolments")
        problem = problem or shape.problem
        shape_ok = problem is None
        if problem is None and marking is None:
            # Unknown is not "Ingen": taking it so would count a protected pupil as unprotected.
            problem = "security_marking_missing:securityMarking"
        base = {
            "_row": i,
            "_loc": loc,
            "row_problem": problem,
            "person_ref": platform_ref(key, "person", guid),
            # A value in the wrong shape is reported as that (row_problem), not as missing or malformed.
            "person_id_status": ("ok" if guid and GUID_RE.match(guid) else "malformed") if shape_ok else None,
            "civic_no_status": "ok" if shape_ok else None,
            "pupil_key": None,
            "gender": None,
            "birth_year": None,
            "security_marking": marking,
        }
        if shape_ok:
            try:
                ident = parse_identity(civic, on)
                base.update(
                    pupil_key=pupil_key(key, ident.digits12), gender=ident.gender, birth_year=ident.birth_date.year
                )
            except InvalidIdentity as e:
                base["civic_no_status"] = e.rule
        if not enrolments:
            rows.append({**base, **dict.fromkeys(ENROLMENT_FIELDS)})
        for j, raw_enr in enumerate(enrolments):
            enr, enr_problem = record(raw_enr)
            es = Shape()
            at = es.object(enr, "enroledAt", "enroledAt")
            row = {
                **base,
                "enrolment_loc": f"{loc}.enrolments[{j}]",
                "school_ref": platform_ref(key, "organisation", es.text(at, "id", "enroledAt.id")),
                "school_year": es.text(enr, "schoolYear", "schoolYear"),
                "school_type": es.text(enr, "schoolType", "schoolType"),
                "start_date": normalise_date(es.text(enr, "startDate", "startDate")),
                "end_date": normalise_date(es.text(enr, "endDate", "endDate")),
                "cancelled": es.flag(enr, "cancelled", "cancelled"),
            }
            row["enrolment_problem"] = enr_problem or es.problem
            rows.append(row)
    df = pl.DataFrame(rows, schema=SCHEMA)
    # An enrolment in a school type SS 12000 does not list is outside grundskola whatever it is:
    # not used (and said so), rather than quarantining the pupil's enrolment as an error.
    other = pl.col("school_type").is_not_null() & ~pl.col("school_type").is_in(list(SCHOOL_TYPES))
    unknown = df.filter(other & pl.col("enrolment_loc").is_not_null()).get_column("school_type")
    notes = []
    if unknown.len():
        named = sorted(t for t in unknown.unique() if re.fullmatch(r"[A-Za-z]{1,12}", t))
        notes.append(
            f"{unknown.len()} enrolment(s) in a school type SS 12000 does not list"
            + (f" ({', '.join(named)})" if named else "")
            + " not used: the follow-up reads grundskola (GR, GRS) only"
        )
        df = df.with_columns(pl.when(other).then(None).otherwise(pl.col(c)).alias(c) for c in ENROLMENT_FIELDS)
    # Årskurs 1 starts the autumn a child turns 7 (skollagen 7 kap. 10 §), so a pupil in
    # årskurs g in the school year starting in year y was born about y - 6 - g. Two years
    # either way allow for pupils held back, starting early or placed after arrival.
    start_year = pl.col("start_date").str.slice(0, 4).cast(pl.Int32, strict=False) - (
        pl.col("start_date").str.slice(5, 2).cast(pl.Int32, strict=False) < 7
    ).cast(pl.Int32)
    expected = start_year - 6 - pl.col("school_year").cast(pl.Int32, strict=False)
    df = df.with_columns(((pl.col("birth_year") - expected).abs() <= 2).fill_null(True).alias("age_fits_school_year"))
    df = with_future_checks(df, {"start_date": "startDate", "end_date": "endDate"}, on, "enrolment_problem")
    return Extract(with_date_checks(df, ["start_date", "end_date"]), rows_read=len(records), notes=notes)


def table_rows(rows: pl.DataFrame, dropped: set[int]) -> dict[str, pl.DataFrame]:
    """One src_persons row per person, one src_enrolments row per enrolment not quarantined apart."""
    people = rows.unique("_row", keep="first", maintain_order=True).select(
        pl.col("_loc").alias("location"),
        "person_ref",
        "pupil_key",
        "gender",
        "birth_year",
        "security_marking",
        (pl.col("security_marking") == "Skyddad folkbokföring").alias("is_protected"),
    )
    enrolments = rows.filter(pl.col("enrolment_loc").is_not_null() & ~pl.col("_i").is_in(list(dropped)))
    return {
        "src_persons": people,
        "src_enrolments": enrolments.select(
            pl.col("enrolment_loc").alias("location"),
            "person_ref",
            "school_ref",
            pl.col("school_year").cast(pl.Int32),
            "school_type",
            pl.col("start_date").str.to_date(),
            pl.col("end_date").str.to_date(),
            "cancelled",
        ),
    }


def _read(path: Path, ctx: ReadContext) -> Extract:
    return read_persons(path, ctx.key, ctx.on)


KIND = InputKind(
    name="persons",
    patterns=("persons*.json",),
    tables=("src_persons", "src_enrolments"),
    label="Personer (SS 12000)",
    row_unit="personer (poster i exportens data)",
    row_unit_en="persons (records of the export)",
    batched=True,
    part_location="enrolment_loc",
    check_unit="en rad per person och inskrivning: en person med två inskrivningar kontrolleras två gånger",
    read=_read,
    table_rows=table_rows,
)
