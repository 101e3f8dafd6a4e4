"""Ingest: raw files -> validated, pseudonymised rows in the store, with a load log.

Every file version gets one `load_log` row whose counts reconcile
(read = loaded + quarantined + unused, asserted here and by a table constraint); every
rejected row gets `quarantine` rows pointing into the untouched raw file.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from . import store as store_mod
from .config import SQL_DIR, ConfigError, paths
from .identity import key_fingerprint, load_key
from .readers import Extract, FileRejected, add_problem
from .readers.attendance import read_attendance
from .readers.grades import read_grades
from .readers.organisations import read_organisations, read_school_units
from .readers.persons import read_persons
from .readers.register import read_register
from .validate import RowIssue, Validator

# File name patterns of contract section 1, matched case-insensitively anywhere below --raw.
PATTERNS = [
    ("organisations", "organisations*.json"),
    ("school_units", "skolenheter*.csv"),
    ("persons", "persons*.json"),
    ("grades", "betyg*.xml"),
    ("attendance", "attendance*.json"),
    ("register", "ppss*.xlsx"),
    ("register", "ppss*.csv"),
]


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
    unused_note: str | None = None


@dataclass
class IngestSummary:
    files: list[FileOutcome] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # cross-file rule -> rows
    ignored: list[str] = field(default_factory=list)
    demo_key: bool = False
    docs: Path | None = None
    validation_seconds: float = 0.0
    quarantined: int = 0  # rows of all current files, held rows included

    @property
    def rejected(self) -> bool:
        return any(f.status == "rejected" for f in self.files)


def discover(raw_dir: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    found, ignored = [], []
    # A dangling link named like an input is kept: loading it gives a verdict, not silence.
    for path in sorted(p for p in raw_dir.rglob("*") if p.is_file() or (p.is_symlink() and not p.exists())):
        name = path.name.lower()
        kind = next((k for k, pat in PATTERNS if fnmatch.fnmatch(name, pat)), None)
        if kind:
            found.append((path, kind))
        elif not name.startswith((".", "readme")) and name != "ppss_demo_data":
            ignored.append(path)
    # Places and persons first, so a reader's summary can speak of what is already known.
    order = [k for k, _ in PATTERNS]
    found.sort(key=lambda pk: (order.index(pk[1]), str(pk[0])))
    return found, ignored


def _display_path(path: Path) -> str:
    """The path as shown and logged: relative to the project where possible; bytes of a name
    that are not UTF-8 are written as \\xNN (DuckDB and the console take only valid text)."""
    path = path.parent.resolve() / path.name  # the link itself, not what it points to
    try:
        shown = path.relative_to(paths().root).as_posix()
    except ValueError:
        shown = path.as_posix()
    return os.fsencode(shown).decode("utf-8", "backslashreplace")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


SRC_TABLES = [
    "src_persons",
    "src_enrolments",
    "src_organisations",
    "src_school_units",
    "src_grade_exports",
    "src_grade_export_pupils",
    "src_grades",
    "src_attendance",
    "src_register",
]


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height:
        con.register("_frame", frame.to_arrow())
        con.execute(f"insert into {table} by name select * from _frame")
        con.unregister("_frame")


def _load_persons(con, file_id: int, rows: pl.DataFrame, dropped: set[int], ex: Extract) -> None:
    people = rows.unique("_row", keep="first").select(
        pl.lit(file_id).alias("file_id"),
        pl.col("_loc").alias("location"),
        "person_ref",
        "pupil_key",
        "gender",
        "birth_year",
        "security_marking",
        (pl.col("security_marking") == "Skyddad folkbokföring").alias("is_protected"),
    )
    _insert(con, "src_persons", people)
    enrolments = rows.filter(pl.col("enrolment_loc").is_not_null() & ~pl.col("_i").is_in(list(dropped)))
    _insert(
        con,
        "src_enrolments",
        enrolments.select(
            pl.lit(file_id).alias("file_id"),
            pl.col("enrolment_loc").alias("location"),
            "person_ref",
            "school_ref",
            pl.col("school_year").cast(pl.Int32),
            "school_type",
            pl.col("start_date").str.to_date(),
            pl.col("end_date").str.to_date(),
            "cancelled",
        ),
    )


def _load_organisations(con, file_id, rows, dropped, ex) -> None:
    _insert(
        con,
        "src_organisations",
        rows.select(
            pl.lit(file_id).alias("file_id"), "org_ref", "school_unit_code", "display_name", "municipality_code"
        ),
    )


def _load_school_units(con, file_id, rows, dropped, ex) -> None:
    _insert(
        con,
        "src_school_units",
        rows.select(
            pl.lit(file_id).alias("file_id"),
            pl.col("skolenhetskod").alias("school_unit_code"),
            pl.col("skolnamn").alias("school_name"),
            pl.col("stadsdel").alias("district"),
            "huvudman",
        ),
    )


def _finish_grades(con, file_id: int, ex: Extract) -> None:
    """Once per export: its period and which pupils it holds (their grades supersede older ones).

    Old exports have no from/tom: typed columns keep an all-null period loadable."""
    exports = pl.DataFrame(
        {
            "file_id": [file_id],
            "file_name": [ex.extras["file_name"]],
            "export_from": [ex.extras["export_from"]],
            "export_tom": [ex.extras["export_tom"]],
        },
        schema={"file_id": pl.Int64, "file_name": pl.String, "export_from": pl.String, "export_tom": pl.String},
    ).with_columns(pl.col("export_from", "export_tom").str.to_date("%Y-%m-%d", strict=False))
    _insert(con, "src_grade_exports", exports)
    _insert(
        con,
        "src_grade_export_pupils",
        pl.DataFrame({"person_ref": ex.extras["pupils"]}, schema={"person_ref": pl.String}).select(
            pl.lit(file_id).alias("file_id"), "person_ref"
        ),
    )


def _load_grades(con, file_id, rows, dropped, ex: Extract) -> None:
    _insert(
        con,
        "src_grades",
        rows.select(
            pl.lit(file_id).alias("file_id"),
            pl.col("_loc").alias("location"),
            pl.col("_row").alias("seq"),
            "person_ref",
            "subject",
            "language",
            "grade",
            "term",
            pl.col("term_year").cast(pl.Int32),
            pl.col("decision_date").str.to_date(strict=False),
            "is_retest",
            "is_final",
            "school_ref",
        ),
    )


def _load_attendance(con, file_id, rows, dropped, ex) -> None:
    _insert(
        con,
        "src_attendance",
        rows.select(
            pl.lit(file_id).alias("file_id"),
            pl.col("_loc").alias("location"),
            "person_ref",
            "activity_ref",
            pl.col("start_date").str.to_date(),
            pl.col("end_date").str.to_date(),
            *[
                pl.col(f"{c}_min").alias(c)
                for c in ["attendance", "valid_absence", "invalid_absence", "other_attendance", "reported", "offered"]
            ],
        ),
    )


def _load_register(con, file_id, rows, dropped, ex) -> None:
    _insert(
        con,
        "src_register",
        rows.select(
            pl.lit(file_id).alias("file_id"),
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
        ),
    )


Reader = Callable[[Path, bytes, date], Extract]
# kind -> (reader, loader of one validated frame, optional step once the whole file is read)
KINDS: dict[str, tuple[Reader, Callable, Callable | None]] = {
    "persons": (lambda p, k, on: read_persons(p, k, on), _load_persons, None),
    "organisations": (lambda p, k, on: read_organisations(p, k), _load_organisations, None),
    "school_units": (lambda p, k, on: read_school_units(p), _load_school_units, None),
    "grades": (lambda p, k, on: read_grades(p, k, on), _load_grades, _finish_grades),
    "attendance": (lambda p, k, on: read_attendance(p, k, on), _load_attendance, None),
    "register": (lambda p, k, on: read_register(p, k, on), _load_register, None),
}


def _quarantine_rows(file_id: int, path: str, rows: pl.DataFrame, issues: list[RowIssue]) -> pl.DataFrame:
    # A person row repeats once per enrolment: report each person-level failure once.
    rows_of = rows.get_column("_row").to_list()
    seen: set[tuple] = set()
    unique = []
    for i in issues:
        k = (rows_of[i.index], i.index if i.scope != "row" else -1, i.column, i.rule)
        if k not in seen:
            seen.add(k)
            unique.append(i)
    issues = unique
    loc = rows.get_column("_loc").to_list()
    enr = rows.get_column("enrolment_loc").to_list() if "enrolment_loc" in rows.columns else None
    return pl.DataFrame(
        {
            "file_id": [file_id] * len(issues),
            "path": [path] * len(issues),
            "location": [enr[i.index] if i.scope == "enrolment" and enr else loc[i.index] for i in issues],
            "column_name": [i.column for i in issues],
            "rule": [i.rule for i in issues],
            "message": [i.message for i in issues],
        },
        schema={
            "file_id": pl.Int32,
            "path": pl.String,
            "location": pl.String,
            "column_name": pl.String,
            "rule": pl.String,
            "message": pl.String,
        },
    )


def _log(con, file_id, ingest_id, path, kind, checksum, o: FileOutcome) -> None:
    con.execute(
        """insert into load_log by name select ? as file_id, ? as ingest_id, ? as path, ? as kind, ? as checksum,
           ? as rows_read, ? as rows_loaded, ? as rows_quarantined, ? as rows_unused, ? as rows_invalid,
           0 as rows_held, ? as status, ? as message, ? as loaded_at""",
        [
            file_id,
            ingest_id,
            path,
            kind,
            checksum,
            o.rows_read,
            o.rows_loaded,
            o.rows_quarantined,
            o.rows_unused,
            o.rows_quarantined,
            o.status,
            o.message,
            datetime.now(),
        ],
    )


def _reject(con, ingest_id: int, shown: str, kind: str, checksum: str, rule: str, message: str, file_id=None):
    """The whole file fails: nothing of it stays loaded, one quarantine row and one load_log row say why."""
    if file_id is None:
        file_id = store_mod.scalar(con, "select nextval('file_id_seq')")
    for table in [*SRC_TABLES, "quarantine"]:  # a file that breaks off half-way loads nothing
        con.execute(f"delete from {table} where file_id = ?", [file_id])
    con.execute("delete from load_notes where file_id = ?", [file_id])
    outcome = FileOutcome(shown, kind, "rejected", message=f"{rule}: {message}")
    whole_file = {
        "file_id": [file_id],
        "path": [shown],
        "location": ["whole file"],
        "column_name": [None],
        "rule": [rule],
        "message": [message],
    }
    _insert(con, "quarantine", pl.DataFrame(whole_file, schema_overrides={"column_name": pl.String}))
    _log(con, file_id, ingest_id, shown, kind, checksum, outcome)
    return outcome


def _unreadable(e: BaseException) -> tuple[str, str]:
    """(rule, message) for a file that cannot be read at all; never the exception's own text,
    which can quote the file."""
    if isinstance(e, PermissionError):
        return "file_unreadable", (
            "the file cannot be read: permission denied. Give the user who runs ppss read access to it "
            "(or copy it into the folder again) and load again"
        )
    if isinstance(e, FileNotFoundError):
        return "file_unreadable", (
            "a link to a file that does not exist (its target was moved or deleted): put the file itself "
            "in the folder, or remove the link"
        )
    if isinstance(e, IsADirectoryError):
        return "file_unreadable", "a folder named like an input file: rename it or move it out of the delivery"
    if isinstance(e, OSError):
        return "file_unreadable", (
            f"the file cannot be read ({e.strerror or type(e).__name__}): copy it into the folder again"
        )
    if isinstance(e, RecursionError):
        return "file_shape", "nested deeper than any export could be: ask where the file comes from"
    if isinstance(e, MemoryError):
        return "file_size", "too large to read in the memory of this machine: ask for the export in parts"
    return "read_error", (
        f"could not be read: an unexpected {type(e).__name__} in the pipeline while reading it. Nothing of "
        "it was loaded; the rest of the delivery was. Please report this to the maintainers of the "
        "pipeline (the kind of file and the rule above, not the file itself)"
    )


def load_file(con, validator: Validator, ingest_id: int, key: bytes, on: date, path: Path, kind: str) -> FileOutcome:
    """Load one file version. Whatever the file holds, this ends with a verdict in load_log."""
    shown = _display_path(path)
    try:
        checksum = _sha256(path)
    except OSError as e:
        earlier = store_mod.scalar(
            con,
            "select message from load_log where checksum = 'unreadable' and path = ? and status = 'rejected'",
            [shown],
        )
        outcome = (
            FileOutcome(shown, kind, "rejected", message=f"still rejected: {earlier}")
            if earlier
            else _reject(con, ingest_id, shown, kind, "unreadable", *_unreadable(e))
        )
        return _seen(con, ingest_id, shown, "unreadable", outcome)
    same = con.execute(
        "select path from load_log where checksum = ? and kind = ? and status = 'loaded'", [checksum, kind]
    ).fetchall()
    if same:
        where = same[0][0]
        msg = "unchanged since it was loaded" if where == shown else f"same content already loaded as {where}"
        outcome = FileOutcome(shown, kind, "unchanged" if where == shown else "duplicate", message=msg)
        return _seen(con, ingest_id, shown, checksum, outcome)
    replaced_by = store_mod.scalar(
        con, "select by_path from replaced_versions where checksum = ? and by_path <> ? limit 1", [checksum, shown]
    )
    if replaced_by:  # a stale copy of a file that has since been corrected elsewhere in the delivery
        msg = f"an older copy of {replaced_by}, which has since been replaced by a corrected version: not loaded"
        return _seen(con, ingest_id, shown, checksum, FileOutcome(shown, kind, "duplicate", message=msg))
    earlier = store_mod.scalar(
        con, "select message from load_log where checksum = ? and path = ? and status = 'rejected'", [checksum, shown]
    )
    if earlier:  # the same rejected content again: nothing new to log
        outcome = FileOutcome(shown, kind, "rejected", message=f"still rejected, unchanged: {earlier}")
        return _seen(con, ingest_id, shown, checksum, outcome)
    file_id = store_mod.scalar(con, "select nextval('file_id_seq')")
    try:
        outcome = _read_and_load(con, validator, file_id, key, on, path, kind, shown)
    except FileRejected as e:
        outcome = _reject(con, ingest_id, shown, kind, checksum, e.rule, str(e), file_id)
    except Exception as e:  # any failure on input is a verdict on the file, never a crash
        outcome = _reject(con, ingest_id, shown, kind, checksum, *_unreadable(e), file_id=file_id)
    if outcome.status == "rejected":
        return _seen(con, ingest_id, shown, checksum, outcome)
    # A changed file replaces its earlier version: the one at the same path, and any copy elsewhere
    # of what this path held before (a corrected file must not load beside its old copy).
    earlier_ids = con.execute(
        """select file_id from load_log where status = 'loaded' and (path = ? or checksum in (
               select checksum from seen_files where path = ?))""",
        [shown, shown],
    ).fetchall()
    for (old_id,) in earlier_ids:
        for table in SRC_TABLES:
            con.execute(f"delete from {table} where file_id = ?", [old_id])
        con.execute("insert into replaced_versions select checksum, ? from load_log where file_id = ?", [shown, old_id])
        con.execute(
            "update load_log set status = 'superseded', message = ? where file_id = ?",
            [f"replaced by a new version ({shown}, file_id {file_id}) on {date.today()}", old_id],
        )
        replaced = f"new version of a file loaded before (file_id {old_id}, now superseded)"
        outcome.message = "; ".join(m for m in (replaced, outcome.message) if m)
    con.execute("insert into load_notes values (?, ?, ?)", [file_id, outcome.unused_note, outcome.message or None])
    _log(con, file_id, ingest_id, shown, kind, checksum, outcome)
    return _seen(con, ingest_id, shown, checksum, outcome)


def _seen(con, ingest_id: int, shown: str, checksum: str, outcome: FileOutcome) -> FileOutcome:
    con.execute("insert into seen_files values (?, ?, ?)", [shown, checksum, ingest_id])
    return outcome


def _read_and_load(con, validator, file_id, key, on, path, kind, shown) -> FileOutcome:
    outcome = FileOutcome(shown, kind, "loaded")
    read, load, finish = KINDS[kind]
    n_loaded = n_quarantined = n_dropped = 0
    ex = read(path, key, on)
    ex.extras["file_name"] = path.name
    if kind == "register" and ex.rows is not None:
        ex.rows = _check_districts(con, ex.rows)
    # Large files arrive in chunks: each is validated, loaded and forgotten before the next.
    for frame in ex.frames():
        rows = frame.with_row_index("_i")
        issues = validator.validate(kind, frame, shown)
        bad_rows = {int(rows["_row"][i.index]) for i in issues if i.scope == "row"}
        dropped = {i.index for i in issues if i.scope != "row"}
        good = rows.filter(~pl.col("_row").is_in(list(bad_rows)))
        load(con, file_id, good, dropped, ex)
        _insert(con, "quarantine", _quarantine_rows(file_id, shown, rows, issues))
        n_loaded += good.get_column("_row").n_unique()
        n_quarantined += len(bad_rows)
        n_dropped += len(dropped)
    if finish is not None:
        finish(con, file_id, ex)
    outcome.rows_read, outcome.rows_unused = ex.rows_read, int(ex.rows_unused)
    outcome.rows_loaded, outcome.rows_quarantined = n_loaded, n_quarantined
    if outcome.rows_read != outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_unused:
        raise AssertionError(f"{shown}: counts do not reconcile")
    notes = []
    if n_dropped:
        notes.append(f"{n_dropped} enrolments quarantined")
    notes += ex.notes
    outcome.message = "; ".join(notes)
    outcome.unused_note = ex.unused_note if outcome.rows_unused else None
    return outcome


def _check_districts(con, rows: pl.DataFrame) -> pl.DataFrame:
    """Stadsdel must be a stadsdel of skolenheter.csv (loaded before the register in every ingest).
    Checked before loading, not only across files afterwards: free text typed there (a name in
    the wrong column) is then never stored. Without skolenheter.csv, checks.sql holds such rows."""
    known = [
        d
        for (d,) in con.execute(
            """select distinct lower(trim(district)) from src_school_units
               inner join load_log using (file_id) where status = 'loaded' and district is not null"""
        ).fetchall()
    ]
    if not known:
        return rows
    unknown = pl.col("district").is_not_null() & ~pl.col("district").str.strip_chars().str.to_lowercase().is_in(known)
    return add_problem(rows, unknown, "unknown_district:Stadsdel")


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


def ingest(
    raw_dir: Path,
    store: Path,
    docs_dir: Path | None = None,
    on: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestSummary:
    """`progress(file name, files done, files)` is called before each file (for the CLI)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise ConfigError(f"--raw {raw_dir} is not a folder")
    try:
        key, is_demo = load_key(raw_dir)
    except KeyError as e:
        raise ConfigError(e.args[0]) from None
    files, ignored = discover(raw_dir)
    if not files:
        raise ConfigError(f"no input files under {raw_dir} (expected names: {', '.join(p for _, p in PATTERNS)})")
    summary = IngestSummary(ignored=[_display_path(p) for p in ignored], demo_key=is_demo)
    validator = Validator(paths().expectations, docs_dir)
    on = on or date.today()
    with store_mod.writing(store) as con:
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
        ingest_id = store_mod.scalar(con, "select coalesce(max(ingest_id), 0) + 1 from load_log")
        for done, (path, kind) in enumerate(files):
            if progress:
                progress(Path(path).name, done, len(files))
            summary.files.append(load_file(con, validator, ingest_id, key, on, path, kind))
        if progress:
            progress("", len(files), len(files))
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
        con.execute(
            "insert or replace into meta values ('last_ingest_id', ?), ('last_ingest_rejected', ?)",
            [str(ingest_id), str(summary.rejected).lower()],
        )
    summary.validation_seconds = validator.seconds
    summary.docs = validator.build_docs()
    return summary
