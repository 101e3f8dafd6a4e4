"""A compact fingerprint of a store: row count and a hash of each table's ordered rows.

File ids and load times depend on the order and moment files are loaded (parallel workers
may finish in any order), so file ids are replaced by the file's path, the raw folder by
`<raw>`, and times and ingest ids are left out. Everything else must be identical.

`python -m tests.fingerprint STORE RAW` prints it as JSON (how the fixture was captured).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

# table -> columns left out (besides file_id, which becomes the file's path)
INGEST_TABLES = {
    "load_log": ["ingest_id", "loaded_at", "path"],
    "quarantine": ["path"],
    "held_rows": [],
    "load_notes": [],
    "src_persons": [],
    "src_enrolments": [],
    "src_organisations": [],
    "src_school_units": [],
    "src_grade_exports": [],
    "src_grade_export_pupils": [],
    "src_grades": [],
    "src_attendance": [],
    "src_register": [],
}
PUBLIC_TABLES = ["pupil_term_outcomes", "programme_enrolments"]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"select column_name from (describe {table})").fetchall()]


def _value(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    """A column as fingerprinted: doubles rounded to 9 decimals (DuckDB sums them in parallel, so
    the last bits of a rate differ from one build of the same rows to the next)."""
    kind = con.execute(f"select column_type from (describe {table}) where column_name = ?", [column]).fetchone()[0]
    return f'round(t."{column}", 9) as "{column}"' if kind == "DOUBLE" else f't."{column}"'


def fingerprint(store: Path, raw: Path, tables: list[str] | None = None) -> dict[str, list]:
    """{table: [rows, md5 of the rows as text in sorted order]}."""
    prefix = str(Path(raw).resolve())
    con = duckdb.connect(str(store), read_only=True)
    try:
        names = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        out: dict[str, list] = {}
        for table in tables or [*INGEST_TABLES, *PUBLIC_TABLES]:
            if table not in names:
                continue
            skip = set(INGEST_TABLES.get(table, [])) | {"file_id"}
            cols = [c for c in _columns(con, table) if c not in skip]
            select = ", ".join(_value(con, table, c) for c in cols)
            has_file = "file_id" in _columns(con, table)
            source = (
                f"(select f.path as file_path, {select} from {table} t left join "
                "(select distinct file_id, path from load_log) f using (file_id))"
                if has_file
                else f"(select {select} from {table} t)"
            )
            text = f"replace(cast(r as varchar), '{prefix}', '<raw>')"
            n, digest = con.execute(
                f"select count(*), md5(coalesce(string_agg({text}, chr(10) order by {text}), '')) from {source} r"
            ).fetchone()
            out[table] = [int(n), digest]
        return out
    finally:
        con.close()


if __name__ == "__main__":
    print(json.dumps(fingerprint(Path(sys.argv[1]), Path(sys.argv[2])), indent=1))
