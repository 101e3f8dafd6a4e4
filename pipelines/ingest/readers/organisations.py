"""School units: SS 12000 `Organisations` pages and the evaluator's `skolenheter.csv` (contract 1.2)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.ingest.readers import (
    Extract,
    InputKind,
    ReadContext,
    Shape,
    add_problem,
    blank_rows,
    load_json_page,
    read_table,
    record,
    with_personal_data_checks,
)
from pipelines.rules.identity import GUID_RE, normalise_guid, platform_ref

SCHEMA = {
    "_row": pl.Int64,
    "_loc": pl.String,
    "row_problem": pl.String,
    "org_ref": pl.String,
    "org_id_status": pl.String,
    "display_name": pl.String,
    "organisation_type": pl.String,
    "school_unit_code": pl.String,
    "municipality_code": pl.String,
}


def read_organisations(path: Path, key: bytes) -> Extract:
    records = load_json_page(path, "Organisations")
    rows = []
    for i, raw_org in enumerate(records):
        org, problem = record(raw_org)
        shape = Shape()
        guid = normalise_guid(shape.text(org, "id", "id"))
        row = {
            "_row": i,
            "_loc": f"data[{i}]",
            "org_ref": platform_ref(key, "organisation", guid),
            "display_name": shape.text(org, "displayName", "displayName"),
            "organisation_type": shape.text(org, "organisationType", "organisationType"),
            "school_unit_code": shape.text(org, "schoolUnitCode", "schoolUnitCode"),
            "municipality_code": shape.text(org, "municipalityCode", "municipalityCode"),
        }
        row["row_problem"] = problem or shape.problem
        row["org_id_status"] = None if row["row_problem"] else ("ok" if guid and GUID_RE.match(guid) else "malformed")
        rows.append(row)
    df = pl.DataFrame(rows, schema=SCHEMA)
    df = with_personal_data_checks(df, {"display_name": "displayName"})
    bad_code = pl.col("municipality_code").is_not_null() & ~pl.col("municipality_code").str.contains(r"^\d{4}$")
    df = add_problem(df, bad_code, "municipality_code_format:municipalityCode")
    # Only school units place pupils; the municipality and other organisation levels are not used.
    # A record in the wrong shape is quarantined whatever its type claims to be.
    used = (pl.col("organisation_type") == "Skolenhet").fill_null(False) | pl.col("row_problem").is_not_null()
    unused = df.filter(~used).height
    return Extract(
        df.filter(used),
        rows_read=len(records),
        rows_unused=unused,
        unused_note="organisations that are not school units",
    )


SCHOOL_COLUMNS = ["skolenhetskod", "skolnamn", "stadsdel", "huvudman"]


def read_school_units(path: Path) -> Extract:
    df, encoding, notes = read_table(path, SCHOOL_COLUMNS)
    blank = blank_rows(df)
    kept = df.filter(~blank).with_columns(pl.col("huvudman").str.to_lowercase())
    kept = with_personal_data_checks(kept, {"skolnamn": "skolnamn", "stadsdel": "stadsdel"})
    return Extract(
        kept,
        rows_read=df.height,
        rows_unused=df.height - kept.height,
        unused_note="empty rows",
        encoding=encoding,
        notes=notes,
    )


def organisation_rows(rows: pl.DataFrame, dropped: set[int]) -> dict[str, pl.DataFrame]:
    return {"src_organisations": rows.select("org_ref", "school_unit_code", "display_name", "municipality_code")}


def school_unit_rows(rows: pl.DataFrame, dropped: set[int]) -> dict[str, pl.DataFrame]:
    return {
        "src_school_units": rows.select(
            pl.col("skolenhetskod").alias("school_unit_code"),
            pl.col("skolnamn").alias("school_name"),
            pl.col("stadsdel").alias("district"),
            "huvudman",
        )
    }


def _read_organisations(path: Path, ctx: ReadContext) -> Extract:
    return read_organisations(path, ctx.key)


def _read_school_units(path: Path, ctx: ReadContext) -> Extract:
    return read_school_units(path)


ORGANISATIONS = InputKind(
    name="organisations",
    patterns=("organisations*.json",),
    tables=("src_organisations",),
    label="Organisationer (SS 12000)",
    row_unit="organisationer",
    row_unit_en="organisations",
    batched=True,
    check_unit="en rad per skolenhet i exporten",
    read=_read_organisations,
    table_rows=organisation_rows,
)
SCHOOL_UNITS = InputKind(
    name="school_units",
    patterns=("skolenheter*.csv",),
    tables=("src_school_units",),
    label="Skolenheter (skolenheter.csv)",
    row_unit="rader i skolenheter.csv",
    row_unit_en="rows of skolenheter.csv",
    check_unit="en rad per skolenhet",
    read=_read_school_units,
    table_rows=school_unit_rows,
)
