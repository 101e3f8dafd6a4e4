"""Ingest: raw files -> validated, pseudonymised rows in the store, with a load log.

Every file version gets one `load_log` row whose counts reconcile
(read = loaded + quarantined + unused, asserted here and by a table constraint); every
rejected row gets `quarantine` rows pointing into the untouched raw file.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from . import store as store_mod
from .config import SQL_DIR, ConfigError, paths
from .identity import key_fingerprint, load_key
from .readers import Extract, FileRejected
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


@dataclass
class IngestSummary:
    files: list[FileOutcome] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # cross-file rule -> rows
    ignored: list[str] = field(default_factory=list)
    demo_key: bool = False
    docs: Path | None = None
    validation_seconds: float = 0.0

    @property
    def rejected(self) -> bool:
        return any(f.status == "rejected" for f in self.files)


def discover(raw_dir: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    found, ignored = [], []
    for path in sorted(p for p in raw_dir.rglob("*") if p.is_file()):
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
    try:
        return path.resolve().relative_to(paths().root).as_posix()
    except ValueError:
        return path.resolve().as_posix()


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
    """Once per export: its period and which pupils it holds (their grades supersede older ones)."""
    exports = pl.DataFrame(
        {
            "file_id": [file_id],
            "file_name": [ex.extras["file_name"]],
            "export_from": [ex.extras["export_from"]],
            "export_tom": [ex.extras["export_tom"]],
        }
    ).with_columns(pl.col("export_from", "export_tom").str.slice(0, 10).str.to_date(strict=False))
    _insert(con, "src_grade_exports", exports)
    _insert(
        con,
        "src_grade_export_pupils",
        pl.DataFrame({"person_ref": ex.extras["pupils"]}).select(pl.lit(file_id).alias("file_id"), "person_ref"),
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
    "grades": (lambda p, k, on: read_grades(p, k), _load_grades, _finish_grades),
    "attendance": (lambda p, k, on: read_attendance(p, k), _load_attendance, None),
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


def load_file(con, validator: Validator, ingest_id: int, key: bytes, on: date, path: Path, kind: str) -> FileOutcome:
    shown = _display_path(path)
    checksum = _sha256(path)
    same = con.execute(
        "select path from load_log where checksum = ? and kind = ? and status = 'loaded'", [checksum, kind]
    ).fetchall()
    if same:
        where = same[0][0]
        msg = "unchanged since it was loaded" if where == shown else f"same content already loaded as {where}"
        return FileOutcome(shown, kind, "unchanged" if where == shown else "duplicate", message=msg)
    earlier = store_mod.scalar(
        con, "select message from load_log where checksum = ? and path = ? and status = 'rejected'", [checksum, shown]
    )
    if earlier:  # the same rejected content again: nothing new to log
        return FileOutcome(shown, kind, "rejected", message=f"still rejected, unchanged: {earlier}")
    file_id = store_mod.scalar(con, "select nextval('file_id_seq')")
    outcome = FileOutcome(shown, kind, "loaded")
    read, load, finish = KINDS[kind]
    n_loaded = n_quarantined = n_dropped = 0
    try:
        ex = read(path, key, on)
        ex.extras["file_name"] = path.name
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
    except FileRejected as e:
        for table in [*SRC_TABLES, "quarantine"]:  # a file that breaks off half-way loads nothing
            con.execute(f"delete from {table} where file_id = ?", [file_id])
        outcome.status, outcome.message = "rejected", f"{e.rule}: {e}"
        whole_file = {
            "file_id": [file_id],
            "path": [shown],
            "location": ["whole file"],
            "column_name": [None],
            "rule": [e.rule],
            "message": [str(e)],
        }
        _insert(con, "quarantine", pl.DataFrame(whole_file, schema_overrides={"column_name": pl.String}))
        _log(con, file_id, ingest_id, shown, kind, checksum, outcome)
        return outcome
    outcome.rows_read, outcome.rows_unused = ex.rows_read, int(ex.rows_unused)
    outcome.rows_loaded, outcome.rows_quarantined = n_loaded, n_quarantined
    if outcome.rows_read != outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_unused:
        raise AssertionError(f"{shown}: counts do not reconcile ({outcome})")
    # A changed file under the same path replaces its earlier version.
    for (old_id,) in con.execute(
        "select file_id from load_log where path = ? and status = 'loaded'", [shown]
    ).fetchall():
        for table in SRC_TABLES:
            con.execute(f"delete from {table} where file_id = ?", [old_id])
        con.execute(
            "update load_log set status = 'superseded', message = ? where file_id = ?",
            [f"replaced by a new version (file_id {file_id}) on {date.today()}", old_id],
        )
        outcome.message = f"new version of a file loaded before (file_id {old_id}, now superseded). "
    parts = [f"{outcome.rows_loaded} loaded"]
    if outcome.rows_quarantined:
        parts.append(f"{outcome.rows_quarantined} quarantined")
    if n_dropped:
        parts.append(f"{n_dropped} enrolments quarantined")
    if outcome.rows_unused:
        parts.append(f"{outcome.rows_unused} not used ({ex.unused_note})")
    outcome.message += ", ".join(parts)
    _log(con, file_id, ingest_id, shown, kind, checksum, outcome)
    return outcome


def _schema_version(con: duckdb.DuckDBPyConnection) -> str | None:
    if not store_mod.scalar(con, "select count(*) from information_schema.tables where table_name = 'meta'"):
        return None
    return store_mod.scalar(con, "select value from meta where key = 'schema_version'")


def ingest(raw_dir: Path, store: Path, docs_dir: Path | None = None, on: date | None = None) -> IngestSummary:
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
        for path, kind in files:
            summary.files.append(load_file(con, validator, ingest_id, key, on, path, kind))
        con.execute((SQL_DIR / "checks.sql").read_text(encoding="utf-8"))
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
