"""Ingest: raw files -> validated, pseudonymised rows in the store, with a load log.

Every file version gets one `load_log` row whose counts reconcile
(read = loaded + quarantined + unused, asserted here and by a table constraint); every
rejected row gets `quarantine` rows pointing into the untouched raw file.

Files are recognised by checksum before they are parsed: an unchanged file costs its
checksum only. The files that need loading are read and validated in parallel worker
processes (`pipelines.ingest.parse`, one per core, largest first); this process is the one writer
and takes their results in the files' loading order, so a run gives the same store whatever
the number of workers. A small delivery is read in this process (starting workers would
cost more than they save).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipelines import store as store_mod
from pipelines.config import SQL_DIR, VALIDATION_BATCH_ROWS, ConfigError, paths
from pipelines.ingest.kinds import BY_NAME, KINDS, SRC_TABLES, kind_of
from pipelines.ingest.readers import ReadContext
from pipelines.rules.identity import key_fingerprint, load_key, pseudonymised_name

if TYPE_CHECKING:
    from pipelines.ingest.parse import FileResult, Task

# Below this many bytes to read, workers cost more (their start, GX's import) than they save.
PARALLEL_MIN_BYTES = 32 * 2**20


@dataclass
class FileOutcome:
    path: str
    kind: str
    status: str  # loaded | rejected | unchanged | duplicate
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_unused: int = 0
    message: str = ""


@dataclass
class IngestSummary:
    files: list[FileOutcome] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # cross-file rule -> rows
    ignored: list[str] = field(default_factory=list)
    not_files: list[tuple[str, str]] = field(default_factory=list)  # (path, what it is) named like an input
    removed: list[str] = field(default_factory=list)  # files of this folder loaded before, now gone
    demo_key: bool = False
    docs: Path | None = None
    validation_seconds: float = 0.0
    quarantined: int = 0  # rows of all current files, held rows included
    workers: int = 0  # parallel worker processes (0: read in the ingest process)

    @property
    def rejected(self) -> bool:
        return any(f.status == "rejected" for f in self.files)


@dataclass
class Item:
    """One file of the delivery, as this ingest sees it."""

    index: int
    path: Path
    kind: str
    shown: str
    checksum: str | None = None
    unreadable: OSError | None = None  # the checksum could not be taken


def discover(raw_dir: Path) -> tuple[list[tuple[Path, str]], list[Path], list[tuple[Path, str]]]:
    """Input files by kind, other files (ignored), and things named like an input that are not
    files (a folder, a named pipe), each with what it is: neither goes by without a line."""
    found, ignored, not_files = [], [], []
    for path in sorted(raw_dir.rglob("*")):
        kind = kind_of(path.name)
        name = path.name.lower()
        # A dangling link named like an input is kept: loading it gives a verdict, not silence.
        is_file = path.is_file() or (path.is_symlink() and not path.exists())
        if kind and is_file:
            found.append((path, kind.name))
        elif kind:
            what = "a folder" if path.is_dir() else "a named pipe, socket or device"
            not_files.append((path, what))
        elif is_file and not name.startswith((".", "readme")) and name != "ppss_demo_data":
            ignored.append(path)
    # Places and persons first, so a reader's checks can speak of what is already known.
    order = [k.name for k in KINDS]
    found.sort(key=lambda pk: (order.index(pk[1]), str(pk[0])))
    return found, ignored, not_files


def _display_path(path: Path, key: bytes) -> str:
    """The path as shown, logged and stored: relative to the project where possible; bytes of a
    name that are not UTF-8 are written as \\xNN (DuckDB and the console take only valid text);
    an identity number or guid in a file or folder name becomes a keyed pseudonym, so it reaches
    neither the store nor Data Docs, status or messages."""
    path = path.parent.resolve() / path.name  # the link itself, not what it points to
    try:
        shown = path.relative_to(paths().root).as_posix()
    except ValueError:
        shown = path.as_posix()
    return pseudonymised_name(key, os.fsencode(shown).decode("utf-8", "backslashreplace"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _checksum(path: Path) -> tuple[str | None, OSError | None]:
    try:
        return _sha256(path), None
    except OSError as e:
        return None, e


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# SS 12000 pages are validated in batches of pages (parse_files): GX's cost per validation is
# about a second whatever its size, and a city delivers hundreds of pages.
BATCH_MAX_BYTES = 48 * 2**20  # about 150,000 attendance records or 500,000 person rows


def _groups(tasks: list[Task]) -> list[list[Task]]:
    """Consecutive pages of one batched kind, up to BATCH_MAX_BYTES together; every other file alone."""
    groups: list[list[Task]] = []
    room = 0
    for task in tasks:
        size = _size(task.path)
        last = groups[-1] if groups else None
        if last and BY_NAME[task.kind].batched and last[-1].kind == task.kind and size <= room:
            last.append(task)
            room -= size
        else:
            groups.append([task])
            room = BATCH_MAX_BYTES - size if BY_NAME[task.kind].batched else 0
    return groups


class Readers:
    """Reads files for the writer: in worker processes started once per ingest, or in this
    process. A file is read ahead only when the store says it needs loading; whatever the
    writer decides at its turn, it gets the same result as a read in order would give."""

    def __init__(self, workers: int, scratch: Path) -> None:
        self.scratch = scratch
        self.futures: dict[int, tuple[Future, int | None]] = {}  # file -> its read, its place in a batch
        self.pool: ProcessPoolExecutor | None = None
        self.max_workers = workers
        self.workers = 0

    def checksums(self, items: list[Item]) -> None:
        """Checksums of every file, on every core (hashlib releases the GIL)."""
        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as threads:
            found = list(threads.map(lambda i: _checksum(i.path), items))
        for item, (checksum, error) in zip(items, found, strict=True):
            item.checksum, item.unreadable = checksum, error

    def read_ahead(self, tasks: list[Task]) -> None:
        """Start reading the files that need loading, if they are worth the workers' start."""
        if self.max_workers < 2 or sum(_size(t.path) for t in tasks) < PARALLEL_MIN_BYTES:
            return
        from pipelines.ingest.parse import parse_file, parse_files

        self.pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=_worker_context())
        self.workers = self.max_workers
        # Largest first, so the cores finish together.
        for group in sorted(_groups(tasks), key=lambda g: -sum(_size(t.path) for t in g)):
            if len(group) == 1:
                self.futures[group[0].index] = (self.pool.submit(parse_file, group[0]), None)
            else:
                future = self.pool.submit(parse_files, group)
                for pos, task in enumerate(group):
                    self.futures[task.index] = (future, pos)

    def result(self, task: Task) -> FileResult:
        from pipelines.ingest.parse import parse_file

        future, pos = self.futures.pop(task.index, (None, None))
        if future is None and self.pool is not None:  # not read ahead (the register): a worker reads it now
            future = self.pool.submit(parse_file, task)
        if future is not None:
            try:
                return future.result() if pos is None else future.result()[pos]
            except Exception:  # a worker died (killed, out of memory): read it here instead
                pass
        return parse_file(task)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


# --- the steps of loading one file ----------------------------------------------------------


def _known_version(con, item: Item) -> FileOutcome | None:
    """The verdict on a file whose content the store already knows; None if it is to be read."""
    shown, kind, checksum = item.shown, item.kind, item.checksum
    same = con.execute(
        "select path from load_log where checksum = ? and kind = ? and status = 'loaded'", [checksum, kind]
    ).fetchall()
    if same:
        where = same[0][0]
        msg = "unchanged since it was loaded" if where == shown else f"same content already loaded as {where}"
        return FileOutcome(shown, kind, "unchanged" if where == shown else "duplicate", message=msg)
    replaced_by = store_mod.scalar(
        con, "select by_path from replaced_versions where checksum = ? and by_path <> ? limit 1", [checksum, shown]
    )
    if replaced_by:  # a stale copy of a file that has since been corrected elsewhere in the delivery
        msg = f"an older copy of {replaced_by}, which has since been replaced by a corrected version: not loaded"
        return FileOutcome(shown, kind, "duplicate", message=msg)
    earlier = store_mod.scalar(
        con, "select message from load_log where checksum = ? and path = ? and status = 'rejected'", [checksum, shown]
    )
    if earlier:  # the same rejected content again: nothing new to log
        return FileOutcome(shown, kind, "rejected", message=f"still rejected, unchanged: {earlier}")
    return None


def _unreadable_file(con, ingest_id: int, item: Item) -> FileOutcome:
    from pipelines.ingest.parse import unreadable

    earlier = store_mod.scalar(
        con,
        "select message from load_log where checksum = 'unreadable' and path = ? and status = 'rejected'",
        [item.shown],
    )
    if earlier:
        return FileOutcome(item.shown, item.kind, "rejected", message=f"still rejected: {earlier}")
    return _reject(con, ingest_id, item, "unreadable", *unreadable(item.unreadable))


def _insert_parts(con: duckdb.DuckDBPyConnection, file_id: int, parts: dict[str, list[str]]) -> None:
    for table, files in parts.items():
        con.execute(f"insert into {table} by name select ? as file_id, * from read_parquet(?)", [file_id, files])


def _supersede_earlier(con, item: Item, file_id: int) -> list[str]:
    """A changed file replaces its earlier version: the one at the same path, and any copy elsewhere
    of what this path held before (a corrected file must not load beside its old copy)."""
    # A rejected earlier version at this path is no longer the file's state either.
    con.execute(
        "update load_log set status = 'superseded' where status = 'rejected' and path = ? and file_id <> ?",
        [item.shown, file_id],
    )
    earlier_ids = con.execute(
        """select file_id from load_log where status = 'loaded' and (path = ? or checksum in (
               select checksum from seen_files where path = ?))""",
        [item.shown, item.shown],
    ).fetchall()
    notes = []
    for (old_id,) in earlier_ids:
        for table in SRC_TABLES:
            con.execute(f"delete from {table} where file_id = ?", [old_id])
        con.execute(
            "insert into replaced_versions select checksum, ? from load_log where file_id = ?", [item.shown, old_id]
        )
        con.execute(
            "update load_log set status = 'superseded', message = ? where file_id = ?",
            [f"replaced by a new version ({item.shown}, file_id {file_id}) on {date.today()}", old_id],
        )
        notes.insert(0, f"new version of a file loaded before (file_id {old_id}, now superseded)")
    return notes


def _log(con, file_id: int, ingest_id: int, item: Item, checksum: str, status: str, counts: tuple, message: str):
    """The file's load_log row. Python states what the file held (read, unused, failed its suite);
    the loaded and quarantined counts follow from them here and are moved by checks.sql when a
    row is held by a check across files."""
    rows_read, rows_unused, rows_invalid = counts
    con.execute(
        """insert into load_log by name select ? as file_id, ? as ingest_id, ? as path, ? as kind, ? as checksum,
           ? as rows_read, ? as rows_unused, ? as rows_invalid, 0 as rows_held,
           rows_read - rows_unused - rows_invalid as rows_loaded, rows_invalid as rows_quarantined,
           ? as status, ? as message, ? as loaded_at""",
        [
            file_id,
            ingest_id,
            item.shown,
            item.kind,
            checksum,
            rows_read,
            rows_unused,
            rows_invalid,
            status,
            message,
            datetime.now(),
        ],
    )


def _reject(con, ingest_id: int, item: Item, checksum: str, rule: str, message: str, file_id=None) -> FileOutcome:
    """The whole file fails: nothing of it stays loaded, one quarantine row and one load_log row say why."""
    if file_id is None:
        file_id = store_mod.scalar(con, "select nextval('file_id_seq')")
    con.execute(
        """insert into quarantine (file_id, path, location, column_name, rule, message)
           values (?, ?, 'whole file', null, ?, ?)""",
        [file_id, item.shown, rule, message],
    )
    _log(con, file_id, ingest_id, item, checksum, "rejected", (0, 0, 0), f"{rule}: {message}")
    return FileOutcome(item.shown, item.kind, "rejected", message=f"{rule}: {message}")


def _store_file(con, ingest_id: int, item: Item, file_id: int, result: FileResult) -> FileOutcome:
    _insert_parts(con, file_id, result.parts)
    notes = _supersede_earlier(con, item, file_id)
    message = "; ".join(notes + result.notes)
    con.execute("insert into load_notes values (?, ?, ?)", [file_id, result.unused_note, message or None])
    counts = (result.rows_read, result.rows_unused, result.rows_invalid)
    _log(con, file_id, ingest_id, item, item.checksum, "loaded", counts, message)
    return FileOutcome(item.shown, item.kind, "loaded", message=message)


def _seen(con, ingest_id: int, item: Item, outcome: FileOutcome) -> FileOutcome:
    con.execute("insert into seen_files values (?, ?, ?)", [item.shown, item.checksum or "unreadable", ingest_id])
    return outcome


@dataclass
class IngestRun:
    """What every file of one ingest shares: its id, the read context and the readers."""

    ingest_id: int
    ctx: ReadContext
    readers: Readers
    runs: list = field(default_factory=list)  # validation runs and results, for Data Docs
    results: list = field(default_factory=list)
    validation_seconds: float = 0.0

    def task(self, item: Item, ctx: ReadContext | None = None) -> Task:
        from pipelines.ingest.parse import Task

        return Task(item.index, item.path, item.kind, item.shown, ctx or self.ctx, self.readers.scratch)


def load_file(con, run: IngestRun, item: Item) -> FileOutcome:
    """Load one file version. Whatever the file holds, this ends with a verdict in load_log."""
    if item.unreadable is not None:
        return _seen(con, run.ingest_id, item, _unreadable_file(con, run.ingest_id, item))
    known = _known_version(con, item)
    if known is not None:
        return _seen(con, run.ingest_id, item, known)
    file_id = store_mod.scalar(con, "select nextval('file_id_seq')")
    ctx = run.ctx
    if BY_NAME[item.kind].reads_districts:
        ctx = ReadContext(ctx.key, ctx.on, ctx.chunk_rows, _known_districts(con))
    result = run.readers.result(run.task(item, ctx))
    run.runs += result.runs
    run.results.append(result.results)
    run.validation_seconds += result.seconds_validating
    if result.rejected:
        outcome = _reject(con, run.ingest_id, item, item.checksum, *result.rejected, file_id=file_id)
    else:
        outcome = _store_file(con, run.ingest_id, item, file_id, result)
    for files in result.parts.values():
        for f in files:
            Path(f).unlink(missing_ok=True)
    return _seen(con, run.ingest_id, item, outcome)


def _known_districts(con) -> frozenset[str]:
    return frozenset(
        d
        for (d,) in con.execute(
            """select distinct lower(trim(district)) from src_school_units
               inner join load_log using (file_id) where status = 'loaded' and district is not null"""
        ).fetchall()
    )


def _refresh(con, outcomes: list[FileOutcome]) -> None:
    """Final counts and messages of this ingest's loaded files (checks.sql moves held rows)."""
    for o in outcomes:
        if o.status != "loaded":
            continue
        row = con.execute(
            """select rows_read, rows_loaded, rows_quarantined, rows_unused, message from load_log
               where path = ? and status = 'loaded'""",
            [o.path],
        ).fetchall()
        if row:
            o.rows_read, o.rows_loaded, o.rows_quarantined, o.rows_unused, o.message = row[0]


def _schema_version(con: duckdb.DuckDBPyConnection) -> str | None:
    if not store_mod.scalar(con, "select count(*) from information_schema.tables where table_name = 'meta'"):
        return None
    return store_mod.scalar(con, "select value from meta where key = 'schema_version'")


def _open(con: duckdb.DuckDBPyConnection, store: Path, key: bytes, is_demo: bool) -> int:
    """Schema and key checks of the store; the id of this ingest."""
    version = _schema_version(con)
    if version not in (None, store_mod.SCHEMA_VERSION):
        raise ConfigError(
            f"{store} was made by an older version of this pipeline (store schema {version}, now "
            f"{store_mod.SCHEMA_VERSION}): move it aside and ingest the raw folders again to rebuild it"
        )
    con.execute((SQL_DIR / "schema.sql").read_text())
    fingerprint = key_fingerprint(key)
    known = store_mod.scalar(con, "select value from meta where key = 'key_fingerprint'")
    if known and known != fingerprint:
        raise ConfigError(f"{store} was built with another pseudonymisation key; use that key, or a new --store")
    con.execute(
        "insert or replace into meta values ('key_fingerprint', ?), ('demo_key', ?), ('schema_version', ?)",
        [fingerprint, str(is_demo).lower(), store_mod.SCHEMA_VERSION],
    )
    return int(store_mod.scalar(con, "select coalesce(max(ingest_id), 0) + 1 from load_log"))


def _mark_removed(con: duckdb.DuckDBPyConnection, folder: str, present: set[str]) -> list[str]:
    """Files loaded or rejected from this delivery folder that are no longer in it: `removed`,
    their rows out of the src tables, so status, Data Docs and the report stop counting them.
    Files of other folders (earlier deliveries) are left as they are."""
    gone = [
        (file_id, path)
        for file_id, path in con.execute(
            "select file_id, path from load_log where status in ('loaded', 'rejected') and starts_with(path, ?)",
            ["" if folder in (".", "") else folder.rstrip("/") + "/"],  # --raw . at the project's root
        ).fetchall()
        if path not in present
    ]
    for file_id, _ in gone:
        for table in SRC_TABLES:
            con.execute(f"delete from {table} where file_id = ?", [file_id])
        con.execute(
            "update load_log set status = 'removed', message = ? || coalesce(message, '') where file_id = ?",
            [f"no longer in the delivery folder on {date.today()}; before: ", file_id],
        )
    return sorted(path for _, path in gone)


def _finish(con: duckdb.DuckDBPyConnection, summary: IngestSummary, ingest_id: int) -> None:
    """Checks across files over everything loaded, final counts, and what this ingest found."""
    con.execute((SQL_DIR / "checks.sql").read_text(encoding="utf-8"))
    _refresh(con, summary.files)
    summary.quarantined = int(
        store_mod.scalar(con, "select coalesce(sum(rows_quarantined), 0) from load_log where status = 'loaded'")
    )
    summary.held = dict(
        con.execute(
            "select rule, count(*) from quarantine where is_cross_file group by rule order by 2 desc"
        ).fetchall()
    )
    # "Rejected" for the report means what `ppss status` shows: a current file is rejected.
    rejected = store_mod.scalar(con, "select count(*) from load_log where status = 'rejected'")
    con.execute(
        "insert or replace into meta values ('last_ingest_id', ?), ('last_ingest_rejected', ?)",
        [str(ingest_id), str(bool(rejected)).lower()],
    )


def _docs(run: IngestRun, docs_dir: Path | None) -> Path | None:
    """Data Docs of this ingest's validations; kept when nothing was validated. Rendered by a
    worker when there are workers (GX is imported there already), else here."""
    if docs_dir is None:
        return None
    if not run.runs:
        return None
    from pipelines.ingest.parse import build_docs

    for r in run.runs:  # the index links each file version to the runs of its own ingest
        r["ingest_id"] = run.ingest_id
    if run.readers.pool is not None:
        return run.readers.pool.submit(build_docs, docs_dir, run.runs, run.results).result()
    return build_docs(docs_dir, run.runs, run.results)


def _remove_stale_scratch(folder: Path) -> None:
    """Parquet parts left by an ingest that was killed: its folder names its process, now gone."""
    for old in folder.glob(".ppss-ingest-*-*"):
        pid = old.name.split("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _worker_context() -> multiprocessing.context.ForkServerContext:
    # forkserver: workers fork from a clean process that has imported the readers and GX once,
    # never from this one (its DuckDB and polars threads must not be forked).
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(["pipelines.ingest.parse", "pipelines.ingest.validate"])
    return mp


def start_workers() -> None:
    """Start the workers' fork server now, for a caller with other work to do first: it imports
    the readers and Great Expectations (4-5 s) on a core of its own meanwhile (`ppss run --demo`
    writes the demo data). An ingest later in this process forks its workers from it."""
    if default_workers() >= 2:
        from multiprocessing import forkserver

        _worker_context()
        forkserver.ensure_running()


def default_workers() -> int:
    """PPSS_WORKERS if set (0 or 1: read every file in the ingest process), else one per core."""
    value = os.environ.get("PPSS_WORKERS")
    return int(value) if value and value.isdigit() else (os.cpu_count() or 1)


def ingest(
    raw_dir: Path,
    store: Path,
    docs_dir: Path | None = None,
    on: date | None = None,
    workers: int | None = None,
    chunk_rows: int = VALIDATION_BATCH_ROWS,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestSummary:
    """`progress(file name, files done, files)` is called before each file (for the CLI)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        what = "does not exist" if not raw_dir.exists() else "is a file, not a folder"
        raise ConfigError(f"--raw {raw_dir} {what}: give the folder that holds the delivery's files")
    files, ignored, not_files = discover(raw_dir)
    if not files:  # said before the key is asked for: an empty folder is the first thing to fix
        patterns = ", ".join(p for k in KINDS for p in k.patterns)
        raise ConfigError(
            f"no input files in {raw_dir}: put the delivery's files there (names such as {patterns}) "
            "and run ppss ingest again"
        )
    try:
        key, is_demo = load_key(raw_dir)
    except KeyError as e:
        raise ConfigError(e.args[0]) from None
    summary = IngestSummary(
        ignored=[_display_path(p, key) for p in ignored],
        not_files=[(_display_path(p, key), what) for p, what in not_files],
        demo_key=is_demo,
    )
    items = [Item(i, path, kind, _display_path(path, key)) for i, (path, kind) in enumerate(files)]
    ctx = ReadContext(key, on or date.today(), chunk_rows)
    Path(store).resolve().parent.mkdir(parents=True, exist_ok=True)
    folder = Path(store).resolve().parent
    _remove_stale_scratch(folder)
    scratch = Path(tempfile.mkdtemp(prefix=f".ppss-ingest-{os.getpid()}-", dir=folder))
    readers = Readers(default_workers() if workers is None else workers, scratch)
    try:
        readers.checksums(items)
        with store_mod.writing(store) as con:
            run = IngestRun(_open(con, store, key, is_demo), ctx, readers)
            # Read ahead what the store does not know yet; the register waits for this run's
            # skolenheter.csv (its stadsdelar are checked against them).
            readers.read_ahead(
                [
                    run.task(i)
                    for i in items
                    if not BY_NAME[i.kind].reads_districts and i.unreadable is None and _known_version(con, i) is None
                ]
            )
            for done, item in enumerate(items):
                if progress:
                    progress(Path(item.shown).name, done, len(items))
                summary.files.append(load_file(con, run, item))
            if progress:
                progress("", len(items), len(items))
            summary.removed = _mark_removed(con, _display_path(raw_dir, key), {i.shown for i in items})
            _finish(con, summary, run.ingest_id)
        _docs(run, docs_dir)
        if docs_dir is not None:  # every ingest, also one that validated nothing: files may have left
            from pipelines.ingest.datadocs import write_index

            summary.docs = write_index(Path(docs_dir), Path(store))
    finally:
        readers.close()
    summary.workers = readers.workers
    summary.validation_seconds = run.validation_seconds
    return summary
