"""School units: SS 12000 `Organisations` pages and the evaluator's `skolenheter.csv` (contract 1.2)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..identity import GUID_RE, normalise_guid, platform_ref
from . import Extract, blank_rows, load_json_page, read_table

SCHEMA = {
    "_row": pl.Int64,
    "_loc": pl.String,
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
    for i, org in enumerate(records):
        org = org if isinstance(org, dict) else {}
        guid = normalise_guid(org.get("id"))
        rows.append(
            {
                "_row": i,
                "_loc": f"data[{i}]",
                "org_ref": platform_ref(key, "organisation", guid),
                "org_id_status": "ok" if guid and GUID_RE.match(guid) else "malformed",
                "display_name": org.get("displayName"),
                "organisation_type": org.get("organisationType"),
                "school_unit_code": None if org.get("schoolUnitCode") is None else str(org["schoolUnitCode"]).strip(),
                "municipality_code": None if org.get("municipalityCode") is None else str(org["municipalityCode"]),
            }
        )
    df = pl.DataFrame(rows, schema=SCHEMA)
    # Only school units place pupils; the municipality and other organisation levels are not used.
    unused = df.filter(pl.col("organisation_type") != "Skolenhet").height
    return Extract(
        df.filter(pl.col("organisation_type") == "Skolenhet"),
        rows_read=len(records),
        rows_unused=unused,
        unused_note="organisations that are not school units",
    )


SCHOOL_COLUMNS = ["skolenhetskod", "skolnamn", "stadsdel", "huvudman"]


def read_school_units(path: Path) -> Extract:
    df, encoding = read_table(path, SCHOOL_COLUMNS)
    blank = blank_rows(df)
    kept = df.filter(~blank).with_columns(pl.col("huvudman").str.to_lowercase())
    return Extract(
        kept,
        rows_read=df.height,
        rows_unused=df.height - kept.height,
        unused_note="empty rows",
        extras={"encoding": encoding},
    )
