"""The social services' register of enrolled pupils, `.xlsx` or `;` CSV (data contract 1.5)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.ingest.readers import (
    Extract,
    InputKind,
    ReadContext,
    add_problem,
    blank_rows,
    normalise_date,
    read_table,
    with_date_checks,
    with_future_checks,
    with_personal_data_checks,
)
from pipelines.rules.identity import InvalidIdentity, parse_identity, pupil_key

# Every column is required: a register without `Insatser` would read as "no intervention for
# anyone". Cells may be empty (Program then defaults to PPSS).
REQUIRED = ["Personnummer", "Program", "Stadsdel", "Skolenhetskod", "Inskriven", "Utskriven", "Urvalsgrund", "Insatser"]

PROGRAMMES = {"ppss": "PPSS", "skolfam": "SkolFam"}
SELECTION_REASONS = ["Hög frånvaro", "Låga studieresultat", "Social problematik", "Orosanmälan", "Annat"]
INTERVENTIONS = [
    "Kurator",
    "Fältassistent",
    "SIP",
    "Mentor",
    "Hembesök",
    "Läxhjälp",
    "Sommarinsats",
    "Familjebehandling",
    "Annat",
]


def _fold(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().casefold()


def split_vocabulary(value: str | None, vocabulary: list[str]) -> tuple[list[str], str | None]:
    """Terms separated by ',' or ';' matched with case and spacing forgiven: (known terms, unknown text)."""
    if value is None:
        return [], None
    lookup = {_fold(v): v for v in vocabulary}
    known, unknown = [], []
    for part in re.split(r"[,;]", value):
        if not part.strip():
            continue
        term = lookup.get(_fold(part))
        if term is None:
            unknown.append(part.strip())
        elif term not in known:
            known.append(term)
    return known, ", ".join(unknown) or None


def read_register(path: Path, key: bytes, on: date) -> Extract:
    df, encoding, notes = read_table(path, REQUIRED, list_column="Insatser")
    blank = blank_rows(df)
    kept = df.filter(~blank)
    out = []
    for row in kept.iter_rows(named=True):
        status, pk = "ok", None
        try:
            pk = pupil_key(key, parse_identity(row["Personnummer"], on).digits12)
        except InvalidIdentity as e:
            status = e.rule
        reasons, bad_reasons = split_vocabulary(row["Urvalsgrund"], SELECTION_REASONS)
        actions, bad_actions = split_vocabulary(row["Insatser"], INTERVENTIONS)
        programme = row["Program"]
        out.append(
            {
                "_row": row["_row"],
                "_loc": row["_loc"],
                "row_problem": row["row_problem"],
                "civic_no_status": status,
                "pupil_key": pk,
                "programme": "PPSS" if programme is None else PROGRAMMES.get(_fold(programme), programme),
                "district": row["Stadsdel"],
                "school_unit_code": None if row["Skolenhetskod"] is None else row["Skolenhetskod"].removesuffix(".0"),
                "start_date": normalise_date(row["Inskriven"]),
                "end_date": normalise_date(row["Utskriven"]),
                "selection_reasons": reasons,
                "unknown_selection_reasons": bad_reasons,
                "interventions": actions,
                "unknown_interventions": bad_actions,
            }
        )
    schema = {
        "_row": pl.Int64,
        "_loc": pl.String,
        "row_problem": pl.String,
        "civic_no_status": pl.String,
        "pupil_key": pl.String,
        "programme": pl.String,
        "district": pl.String,
        "school_unit_code": pl.String,
        "start_date": pl.String,
        "end_date": pl.String,
        "selection_reasons": pl.List(pl.String),
        "unknown_selection_reasons": pl.String,
        "interventions": pl.List(pl.String),
        "unknown_interventions": pl.String,
    }
    frame = with_date_checks(pl.DataFrame(out, schema=schema), ["start_date", "end_date"])
    frame = with_future_checks(frame, {"start_date": "Inskriven", "end_date": "Utskriven"}, on)
    frame = with_personal_data_checks(frame, {"district": "Stadsdel"})
    return Extract(
        frame,
        rows_read=df.height,
        rows_unused=df.height - kept.height,
        unused_note="empty rows",
        encoding=encoding,
        notes=notes,
    )


def check_districts(rows: pl.DataFrame, known: frozenset[str] | None) -> pl.DataFrame:
    """Stadsdel must be a stadsdel of skolenheter.csv (loaded before the register in every ingest).
    Checked before loading, not only across files afterwards: free text typed there (a name in
    the wrong column) is then never stored. Without skolenheter.csv, checks.sql holds such rows."""
    if not known:
        return rows
    unknown = pl.col("district").is_not_null() & ~pl.col("district").str.strip_chars().str.to_lowercase().is_in(
        list(known)
    )
    return add_problem(rows, unknown, "unknown_district:Stadsdel")


def _read(path: Path, ctx: ReadContext) -> Extract:
    ex = read_register(path, ctx.key, ctx.on)
    if ex.rows is not None:
        ex.rows = check_districts(ex.rows, ctx.districts)
    return ex


def table_rows(rows: pl.DataFrame, dropped: set[int]) -> dict[str, pl.DataFrame]:
    return {
        "src_register": rows.select(
            pl.col("_loc").alias("location"),
            pl.col("_row").alias("row_no"),
            "pupil_key",
            "programme",
            "district",
            "school_unit_code",
            pl.col("start_date").str.to_date(),
            pl.col("end_date").str.to_date(),
            "selection_reasons",
            "interventions",
        )
    }


KIND = InputKind(
    name="register",
    patterns=("ppss*.xlsx", "ppss*.csv"),
    tables=("src_register",),
    label="Socialtjänstens register",
    row_unit="rader i registret",
    row_unit_en="rows of the register",
    reads_districts=True,
    check_unit="en rad per rad i registret",
    read=_read,
    table_rows=table_rows,
)
