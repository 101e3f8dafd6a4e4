"""Build: staging views, shared models and marts from the loaded rows, by the `.sql` files in `sql/`.

Files run in name order, staging (one source each, renamed and cleaned; views, except the two
large ones that several marts read, which are tables computed once per build), then the
intermediate layer (concepts several marts and report queries share, such as
`programme_starts`), then the marts; every statement is `create or replace`,
so a build can always be run again. It writes a copy of the store and swaps it in.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines import store as store_mod
from pipelines.config import PACKAGE_DIR, SQL_DIR, ConfigError

PUBLISHED_FIGURES = PACKAGE_DIR / "data" / "published_figures.csv"  # sourced, see data/README.md
LAYERS = ("staging", "intermediate", "marts")
PUBLIC_TABLES = ["pupil_term_outcomes", "programme_enrolments", "load_log", "quarantine"]


def sql_files() -> list[Path]:
    return [path for layer in LAYERS for path in sorted((SQL_DIR / layer).glob("*.sql"))]


MATERIALISED = ("stg_grades", "stg_attendance")  # staging tables, not views (see their .sql)


def run_sql(con: duckdb.DuckDBPyConnection) -> None:
    # A store built before these became tables holds them as views, which a table cannot replace.
    names = ", ".join(f"'{n}'" for n in MATERIALISED)
    for (view,) in con.execute(f"select view_name from duckdb_views() where view_name in ({names})").fetchall():
        con.execute(f"drop view {view}")
    for path in sql_files():
        con.execute(path.read_text(encoding="utf-8"))


def build(store: Path) -> dict[str, int]:
    if not Path(store).exists():
        raise ConfigError(f"no store at {store}: run `ppss ingest --raw DIR` first")
    with store_mod.writing(store) as con:
        if not store_mod.scalar(con, "select count(*) from load_log where status = 'loaded'"):
            raise ConfigError(f"{store} has no loaded files: run `ppss ingest --raw DIR` first")
        run_sql(con)
        con.execute(
            "create or replace table published_figures as select * from read_csv(?, delim = ';', header = true, "
            "columns = {'area': 'varchar', 'huvudman': 'varchar', 'spring_year': 'integer', 'pupil_group': 'varchar', "
            "'measure': 'varchar', 'value': 'double', 'source': 'varchar', 'note': 'varchar'})",
            [str(PUBLISHED_FIGURES)],
        )
        con.execute("insert or replace into meta values ('built_at', cast(current_timestamp as varchar))")
        return {t: store_mod.scalar(con, f"select count(*) from {t}") for t in PUBLIC_TABLES}
