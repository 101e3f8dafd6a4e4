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
