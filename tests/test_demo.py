"""The demo generator: the declared planted defects are where they say, and only they fail."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipelines.demo import world as demo
from pipelines.demo.world import DEFECTS, PLANTED_DEFECTS, DemoWorld, planted_quarantine, write_demo
from pipelines.rules.identity import InvalidIdentity, luhn_digit, luhn_ok, parse_identity

SEED, SCALE = 3, "tiny"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, DemoWorld]:
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, seed=SEED, scale=SCALE)
    return out, DemoWorld(SEED, SCALE)


def test_the_check_digit_is_the_identity_modules() -> None:
    assert not hasattr(demo, "_luhn_digit")
    assert luhn_digit("811218987") == 6 and luhn_ok("8112189876")  # Skatteverket's example
    world = DemoWorld(SEED, SCALE)
    for p in world.pupils:
        parse_identity(p.civic)  # every demo identity number is valid before the planted typos


def test_persons_with_a_planted_typo_and_only_they_fail_their_check_digit(written) -> None:
    out, world = written
    persons = []
    for page in sorted((out / "ss12000").glob("persons_*.json")):
        persons += json.loads(page.read_text(encoding="utf-8"))["data"]
    failing = []
    for i, person in enumerate(persons):
        try:
            parse_identity(person["civicNo"]["value"])
        except InvalidIdentity as e:
            assert e.rule == "civic_no_check_digit"
            failing.append(i)
    assert failing == DEFECTS["person_check_digit"].places(world)
    assert len(failing) == 2  # 1203 is beyond the tiny world's pupils


def test_every_defect_has_a_place_in_the_demo_world_and_a_rule() -> None:
    world = DemoWorld(2016, "demo")
    for defect in PLANTED_DEFECTS:
        assert defect.places(world), defect.name
        assert defect.rules and all(defect.quarantined(world).values())
    assert planted_quarantine(world)["civic_no_check_digit"] == 4  # three persons and a register row
    lost = set().union(*(d.pupils(world) for d in PLANTED_DEFECTS))
    assert len(lost) == 5 and all(world.pupils[i].index == i for i in lost)


@pytest.mark.e2e
def test_one_school_year_goes_through_ingest_build_and_report(tmp_path) -> None:
    """`ppss demo-data --one-year` (the country benchmark's delivery): one grade export of 2016/17,
    that year's attendance, every person and register row; ingest, build and the 2016 report run
    on it, and the report says the evaluation has no pupils rather than failing."""
    from pipelines.cli import main

    raw, store, out = tmp_path / "raw", tmp_path / "ppss.duckdb", tmp_path / "reports"
    assert main(["demo-data", "--out", str(raw), "--scale", "tiny", "--seed", "5", "--one-year"]) == 0
    assert [p.name for p in (raw / "skolplattformen").iterdir()] == ["betyg_export_2017-06-30.xml"]
    head = (raw / "skolplattformen" / "betyg_export_2017-06-30.xml").read_text(encoding="utf-8")[:200]
    assert 'from="2016-07-01" tom="2017-06-30"' in head
    months = {
        r["startDate"][:7]
        for p in (raw / "ss12000").glob("attendance_*.json")
        for r in json.loads(p.read_text(encoding="utf-8"))["data"]
    }
    assert months and min(months) >= "2016-08" and max(months) <= "2017-06"
    assert main(["run", "--raw", str(raw), "--year", "2016", "--store", str(store), "--out", str(out)]) == 0
    with (out / "2016" / "effects.csv").open(encoding="utf-8") as f:
        effects = list(csv.DictReader(f))
    # nobody with months before: no estimate, and the counts (0, hidden like any small count) empty
    assert effects and all(r["estimate"] == "" for r in effects)
    assert all(r[c] == "" for r in effects for c in ("n_eligible", "n_enrolled", "n_comparison"))
    assert (out / "2016" / "uppfoljning_2016.pdf").stat().st_size > 0


@pytest.mark.e2e
def test_run_demo_writes_the_demo_data_then_runs_the_follow_up(tmp_path) -> None:
    """`ppss run --demo` (what `make demo` runs): the demo data written to --raw, the same
    bytes as `ppss demo-data` writes, then ingest, build and the report."""
    from pipelines.cli import main

    raw, store, out = tmp_path / "raw", tmp_path / "ppss.duckdb", tmp_path / "reports"
    args = ["--raw", str(raw), "--year", "2016", "--store", str(store), "--out", str(out)]
    assert main(["run", "--demo", "tiny", *args]) == 0
    assert (out / "2016" / "uppfoljning_2016.pdf").stat().st_size > 0
    alone = tmp_path / "alone"
    assert main(["demo-data", "--out", str(alone), "--scale", "tiny"]) == 0
    written = sorted(p.relative_to(raw) for p in raw.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(alone) for p in alone.rglob("*") if p.is_file())
    assert all((raw / p).read_bytes() == (alone / p).read_bytes() for p in written)


def test_ingest_workers_fork_from_a_server_started_ahead(monkeypatch) -> None:
    """`start_workers` starts the fork server that an ingest's workers are then forked from
    (its Great Expectations import done meanwhile), not a second one."""
    import multiprocessing.forkserver
    import os
    from concurrent.futures import ProcessPoolExecutor

    from pipelines.ingest import load

    monkeypatch.setenv("PPSS_WORKERS", "2")
    load.start_workers()
    server = multiprocessing.forkserver._forkserver._forkserver_pid
    assert server is not None
    with ProcessPoolExecutor(max_workers=1, mp_context=load._worker_context()) as pool:
        assert pool.submit(os.getppid).result(timeout=120) == server
    load.start_workers()  # again: the same server
    assert multiprocessing.forkserver._forkserver._forkserver_pid == server
