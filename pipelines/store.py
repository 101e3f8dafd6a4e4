"""The DuckDB store: built as a new file and swapped in, so readers never block a rebuild.

DuckDB allows one writer and no reader beside it across processes. A load therefore
copies the current store, writes the copy and renames it over the old file: a notebook
holding a read-only connection keeps reading the old file, and a crash or kill leaves
the old store untouched (the half-written copy and its WAL are removed by the next writer).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines.config import paths

SCHEMA_VERSION = "2"


class StoreBusy(RuntimeError):
    pass


def default_store() -> Path:
    return paths().store


@contextmanager
def writing(store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a fresh copy of `store`, swapped in only if the block succeeds."""
    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    lock_path = store.with_name(store.name + ".lock")
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreBusy(f"another ppss process is writing {store}; wait for it to finish") from None
        # Left by a killed writer: the copy and its write-ahead log. A WAL left beside a copy of the
        # same name (same PID, as in containers) would otherwise be replayed into the next build.
        for stale in store.parent.glob(f".{store.name}.*.building*"):
            stale.unlink(missing_ok=True)
        tmp = store.with_name(f".{store.name}.{os.getpid()}.building")
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        if store.exists():
            shutil.copyfile(store, tmp)
        con = duckdb.connect(str(tmp))
        try:
            yield con
            con.execute("checkpoint")
            con.close()
            os.replace(tmp, store)
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
            raise


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> object:
    """First value of the first row, or None. Reads the result to its end: DuckDB 2.0 refuses
    other work on a connection while a result is half-read."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def connect_readonly(store: Path | str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the store for reading (notebooks, reports). A rebuild never waits for this."""
    path = Path(store) if store else default_store()
    if not path.exists():
        raise FileNotFoundError(f"no store at {path}: run `ppss ingest` and `ppss build` first (or `make demo`)")
    return duckdb.connect(str(path), read_only=True)
