"""Read and validate one file, in a worker process or in the ingest process itself.

A file's rows are read by its kind's reader (streamed in chunks for large files), every
chunk is validated by the kind's Great Expectations suite, and the rows to store and the
quarantine rows are written as Parquet parts to a scratch folder. Nothing here touches the
store: the ingest process is its one writer and inserts the parts with DuckDB. Workers
import Great Expectations and set up their context once (`Validator` per process), and
return, beside the counts, the validation results with every value removed, for Data Docs.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from pipelines.config import REPO_DIR
from pipelines.ingest.kinds import BY_NAME
from pipelines.ingest.readers import Extract, FileRejected, ReadContext

if TYPE_CHECKING:  # GX is imported where validation happens, not by the ingest process that only writes
    from pipelines.ingest.validate import RowIssue, Validator

EXPECTATIONS = REPO_DIR / "expectations"
_VALIDATOR: Validator | None = None  # one per process: GX's import and context are paid once


def validator() -> Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        from pipelines.ingest.validate import Validator

        _VALIDATOR = Validator(EXPECTATIONS)
    return _VALIDATOR


@dataclass(frozen=True)
class Task:
    index: int  # position in the ingest's file order: names the scratch parts and validation runs
    path: Path
    kind: str
    shown: str  # the path as shown and logged
    ctx: ReadContext
    scratch: Path


@dataclass
class FileResult:
    """What one file gave: Parquet parts per table, counts, notes; or why it was rejected whole."""

    parts: dict[str, list[str]] = field(default_factory=dict)  # table (or "quarantine") -> Parquet files
    rows_read: int = 0
    rows_loaded: int = 0
    rows_invalid: int = 0
    rows_unused: int = 0
    notes: list[str] = field(default_factory=list)
    unused_note: str | None = None
    rejected: tuple[str, str] | None = None  # (rule, message)
    runs: list[dict] = field(default_factory=list)  # validation runs, for the Data Docs index
    results: bytes = b""  # pickled (key, value-free GX result) pairs for Data Docs: the writer never loads GX
    seconds_validating: float = 0.0


def unreadable(e: BaseException) -> tuple[str, str]:
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


def quarantine_rows(
    shown: str, rows: pl.DataFrame, issues: list[RowIssue], part_location: str | None = None
) -> pl.DataFrame:
    """One quarantine row per failed rule and row; a person row repeats once per enrolment, so a
    person-level failure is reported once."""
    rows_of = rows.get_column("_row").to_list()
    seen: set[tuple] = set()
    unique = []
    for i in issues:
        k = (rows_of[i.index], i.index if i.scope != "row" else -1, i.column, i.rule)
        if k not in seen:
            seen.add(k)
            unique.append(i)
    loc = rows.get_column("_loc").to_list()
    part = rows.get_column(part_location).to_list() if part_location in rows.columns else None
    return pl.DataFrame(
        {
            "path": [shown] * len(unique),
            "location": [part[i.index] if i.scope != "row" and part else loc[i.index] for i in unique],
            "column_name": [i.column for i in unique],
            "rule": [i.rule for i in unique],
            "message": [i.message for i in unique],
        },
        schema={
            "path": pl.String,
            "location": pl.String,
            "column_name": pl.String,
            "rule": pl.String,
            "message": pl.String,
        },
    )


class _Parts:
    def __init__(self, task: Task, result: FileResult) -> None:
        self.task, self.result, self.n = task, result, 0

    def add(self, table: str, frame: pl.DataFrame) -> None:
        if frame.height:
            self.n += 1
            target = self.task.scratch / f"{self.task.index:05d}-{self.n:04d}-{table}.parquet"
            frame.write_parquet(target, compression="lz4", statistics=False)
            self.result.parts.setdefault(table, []).append(str(target))


def _store_frame(task: Task, result: FileResult, parts: _Parts, frame: pl.DataFrame, issues: list[RowIssue]) -> int:
    """Write one validated frame's rows and quarantine rows out; the number of parts of rows
    (a person's single enrolment) quarantined apart."""
    kind = BY_NAME[task.kind]
    rows = frame.with_row_index("_i")
    bad_rows = {int(rows["_row"][i.index]) for i in issues if i.scope == "row"}
    dropped = {i.index for i in issues if i.scope != "row"}
    good = rows.filter(~pl.col("_row").is_in(list(bad_rows)))
    for table, part in kind.table_rows(good, dropped).items():
        parts.add(table, part)
    parts.add("quarantine", quarantine_rows(task.shown, rows, issues, kind.part_location))
    result.rows_loaded += good.get_column("_row").n_unique()
    result.rows_invalid += len(bad_rows)
    return len(dropped)


def _finish(task: Task, result: FileResult, parts: _Parts, ex: Extract, n_dropped: int) -> None:
    kind = BY_NAME[task.kind]
    if kind.file_rows is not None:
        for table, part in kind.file_rows(task.path, ex).items():
            parts.add(table, part)
    result.rows_read, result.rows_unused = ex.rows_read, int(ex.rows_unused)
    if result.rows_read != result.rows_loaded + result.rows_invalid + result.rows_unused:
        raise AssertionError(f"{task.shown}: counts do not reconcile")
    result.notes = ([f"{n_dropped} enrolments quarantined"] if n_dropped else []) + ex.notes
    result.unused_note = ex.unused_note if result.rows_unused else None


def _validated(task: Task, result: FileResult) -> None:
    kind = BY_NAME[task.kind]
    check = validator()
    parts = _Parts(task, result)
    ex = kind.read(task.path, task.ctx)
    n_dropped = 0
    # Large files arrive in chunks: each is validated and written out before the next is read.
    for frame in ex.frames():
        issues = check.validate(kind.suite, frame, task.shown, run_prefix=f"{task.index:05d}")
        n_dropped += _store_frame(task, result, parts, frame, issues)
    _finish(task, result, parts, ex, n_dropped)


def _verdict(result: FileResult, e: Exception) -> None:
    result.rejected = (e.rule, str(e)) if isinstance(e, FileRejected) else unreadable(e)


def _clean_up(result: FileResult) -> None:
    if result.rejected:
        for files in result.parts.values():
            for f in files:
                Path(f).unlink(missing_ok=True)
        result.parts = {}


def parse_file(task: Task) -> FileResult:
    """Read, validate and write out one file. Whatever it holds, this returns a verdict."""
    result = FileResult()
    check = validator()
    seconds = check.seconds
    try:
        _validated(task, result)
    except Exception as e:  # any failure on input is a verdict on the file, never a crash
        _verdict(result, e)
    runs, results = check.take_results()
    for run in runs:  # the Data Docs index links each file to its runs
        run["files"] = [task.shown]
    result.runs, result.results = runs, pickle.dumps(results)
    result.seconds_validating = check.seconds - seconds
    _clean_up(result)
    return result


def parse_files(tasks: list[Task]) -> list[FileResult]:
    """Small files of one kind (SS 12000 pages) read, then validated as one batch: Great
    Expectations costs about a second per validation whatever its size, which for a city's
    hundreds of pages was most of an ingest. Every suite checks rows one by one, so each row
    gets the same verdict as in a batch of its own file. A batch that cannot be checked at all
    is validated again file by file, so the verdict names the file."""
    kind = BY_NAME[tasks[0].kind]
    check = validator()
    seconds = check.seconds
    results = [FileResult() for _ in tasks]
    pieces: list[tuple[int, Extract, list[pl.DataFrame]]] = []
    for k, task in enumerate(tasks):
        try:
            ex = kind.read(task.path, task.ctx)
            pieces.append((k, ex, list(ex.frames())))
        except Exception as e:
            _verdict(results[k], e)
    frames = [(k, f) for k, _, fs in pieces for f in fs]
    try:
        # Data Docs name each issue's file: the batch's locations carry it.
        batch = pl.concat(
            [f.with_columns((pl.lit(f"{tasks[k].shown}: ") + pl.col("_loc")).alias("_loc")) for k, f in frames]
        )
        shown = [tasks[k].shown for k, _, _ in pieces]
        label = f"{shown[0]} … {Path(shown[-1]).name} ({len(shown)} files)" if len(shown) > 1 else shown[0]
        issues = check.validate(kind.suite, batch, label, run_prefix=f"{tasks[0].index:05d}")
    except Exception:  # rows of unlike shape, or a rule that cannot be checked: file by file
        check.take_results()
        return [parse_file(t) if results[k].rejected is None else results[k] for k, t in enumerate(tasks)]
    offset = 0
    parts = {k: _Parts(tasks[k], results[k]) for k, _, _ in pieces}
    dropped = dict.fromkeys(parts, 0)
    for k, frame in frames:
        mine = [replace(i, index=i.index - offset) for i in issues if offset <= i.index < offset + frame.height]
        offset += frame.height
        if results[k].rejected is None:
            try:
                dropped[k] += _store_frame(tasks[k], results[k], parts[k], frame, mine)
            except Exception as e:
                _verdict(results[k], e)
    for k, ex, _ in pieces:
        if results[k].rejected is None:
            try:
                _finish(tasks[k], results[k], parts[k], ex, dropped[k])
            except Exception as e:
                _verdict(results[k], e)
    runs, found = check.take_results()
    for run in runs:
        run["files"] = shown
    results[0].runs, results[0].results = runs, pickle.dumps(found)
    results[0].seconds_validating = check.seconds - seconds
    for r in results:
        _clean_up(r)
    return results


def build_docs(docs_dir: Path, runs: list[dict], results: list[bytes]) -> Path | None:
    """Data Docs of validations run anywhere (`FileResult.results` of each file), rendered by a
    process that has GX imported."""
    from pipelines.ingest.validate import Validator

    docs = Validator(EXPECTATIONS, docs_dir)
    docs.add_results(runs, [pair for blob in results if blob for pair in pickle.loads(blob)])  # a batch: its first file
    return docs.build_docs()
