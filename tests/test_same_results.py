"""The same results, faster: the demo delivery loaded by today's ingest (parallel workers) gives
the very load log, quarantine rows, source tables and public tables that the ingest before the
rewrite gave (issue 13). `fixtures/demo_fingerprint.json` was captured from that ingest and
build (`python -m tests.fingerprint STORE RAW`); a re-run with nothing new changes nothing.
`pupil_term_outcomes` was captured again after issue 11 added its column `in_ppss` (without that
column the hash is the one taken before the rewrite, checked when the fixture was updated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.demo.world import write_demo
from pipelines.ingest.load import ingest
from pipelines.transform.build import build

from .fingerprint import INGEST_TABLES, fingerprint

pytestmark = pytest.mark.e2e
EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "demo_fingerprint.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("same")
    raw, store = root / "raw", root / "ppss.duckdb"
    write_demo(raw, seed=2016, scale="demo")
    summary = ingest(raw, store, workers=2)
    return raw, store, summary


def test_demo_ingest_in_parallel_workers_gives_the_stored_load_log_quarantine_and_tables(demo) -> None:
    raw, store, summary = demo
    assert summary.workers == 2  # the delivery is large enough to be read by workers
    found = fingerprint(store, raw, list(INGEST_TABLES))
    assert found == {t: EXPECTED[t] for t in INGEST_TABLES}


def test_nothing_new_is_recognised_by_checksum_and_changes_nothing(demo) -> None:
    raw, store, _ = demo
    before = fingerprint(store, raw, list(INGEST_TABLES))
    again = ingest(raw, store)
    assert {f.status for f in again.files} == {"unchanged"} and again.workers == 0
    assert fingerprint(store, raw, list(INGEST_TABLES)) == before


def test_public_tables_are_the_same_after_build(demo) -> None:
    raw, store, _ = demo
    build(store)
    found = fingerprint(store, raw, ["pupil_term_outcomes", "programme_enrolments", "load_log", "quarantine"])
    assert found == {t: EXPECTED[t] for t in found}


def _parts(result) -> dict[str, list[tuple]]:
    import polars as pl

    return {t: sorted(pl.concat([pl.read_parquet(f) for f in fs]).rows()) for t, fs in sorted(result.parts.items())}


def test_pages_validated_as_one_batch_give_each_file_its_own_verdict_rows_and_quarantine(demo, tmp_path) -> None:
    """parse_files (SS 12000 pages validated together) against parse_file on each page: the same
    counts, rows, quarantine rows and verdicts, a broken page among them included."""
    from datetime import date

    from pipelines.ingest.load import _groups
    from pipelines.ingest.parse import Task, build_docs, parse_file, parse_files
    from pipelines.ingest.readers import ReadContext

    raw, _, _ = demo
    pages = sorted((raw / "ss12000").glob("attendance_*.json"))[:3]
    broken = tmp_path / "attendance_900.json"
    broken.write_text('{"data": [{"student": ', encoding="utf-8")  # cut off: rejected whole
    files = [pages[0], broken, *pages[1:]]
    ctx = ReadContext(b"k" * 32, date(2026, 11, 27))

    def tasks(folder: str) -> list[Task]:
        (tmp_path / folder).mkdir()
        return [Task(i, f, "attendance", f.name, ctx, tmp_path / folder) for i, f in enumerate(files)]

    batch = tasks("batch")
    assert _groups(batch) == [batch]  # pages small enough to go together
    together = parse_files(batch)
    alone = [parse_file(t) for t in tasks("alone")]
    assert together[1].rejected is not None and together[1].rejected == alone[1].rejected
    assert sum(r.rows_invalid for r in alone) > 0  # the demo plants impossible minutes in these pages
    for a, b in zip(together, alone, strict=True):
        assert (a.rows_read, a.rows_loaded, a.rows_invalid, a.rows_unused) == (
            b.rows_read,
            b.rows_loaded,
            b.rows_invalid,
            b.rows_unused,
        )
        assert _parts(a) == _parts(b) and a.notes == b.notes
    assert len(together[0].runs) == 1 and len(alone[0].runs) == 1  # one GX validation for the batch
    runs = [run for r in together for run in r.runs]
    index = build_docs(tmp_path / "docs", runs, [r.results for r in together])  # as the ingest renders them
    assert f"{files[0].name} … {files[-1].name} (3 files)" in index.read_text()  # the broken page is not in it
