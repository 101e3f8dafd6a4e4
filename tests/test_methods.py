"""The fast subset of the methods harness (`benchmarks/methods.py`): the real pipeline on a
demo world with every effect off and on the same world with the built-in effects.

What it pins: the estimand is about exactly the pupils the generator's truth is about; the
world without effects yields no finding; the world with effects is covered by the intervals;
and a report of year Y does not move when data after Y arrive.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.analysis import estimands as est
from pipelines.analysis import evaluation as ev
from pipelines.analysis.followup import open_store
from pipelines.analysis.sample import build_sample
from pipelines.cli import main
from pipelines.demo.truth import PUPIL_FILE, TRUTH_FILE
from pipelines.rules.identity import DEMO_KEY, parse_identity, pupil_key

pytestmark = pytest.mark.e2e
YEAR = 2016


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    out = {}
    for effects in ("none", "builtin"):
        home = tmp_path_factory.mktemp(effects)
        raw, store = home / "raw", home / "store.duckdb"
        assert main(["demo-data", "--out", str(raw), "--seed", "7", "--scale", "small", "--effects", effects]) == 0
        assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 0
        assert main(["build", "--store", str(store)]) == 0
        out[effects] = (raw, store)
    return out


def _truth_pupils(raw: Path, year: int) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    with open(raw / PUPIL_FILE, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if int(row["year"]) == year:
                key = pupil_key(DEMO_KEY, parse_identity(row["civic_no"]).digits12)
                keys.setdefault(row["outcome"], set()).add(key)
    return keys


@pytest.mark.parametrize("effects", ["none", "builtin"])
def test_estimand_is_about_exactly_the_pupils_of_the_truth(worlds, effects: str) -> None:
    raw, store = worlds[effects]
    con = open_store(store)
    sample = build_sample(con, YEAR)
    con.close()
    truth = _truth_pupils(raw, YEAR)
    for outcome, a in sample.analytic.items():
        assert set(a.treated["pupil_key"]) == truth[outcome], outcome
        # the estimate covers the pupils served (at least 90 % at the demo scale; this world is half its size)
        assert a.n_matched >= 0.85 * a.n_eligible, outcome


def test_no_effect_world_gives_no_finding_and_effect_world_is_covered(worlds) -> None:
    for effects in ("none", "builtin"):
        raw, store = worlds[effects]
        truth = json.loads((raw / TRUTH_FILE).read_text(encoding="utf-8"))[str(YEAR)]
        con = open_store(store)
        estimates = ev.headline(build_sample(con, YEAR))
        con.close()
        for outcome, e in estimates.items():
            if effects == "none":
                assert truth[outcome] == 0.0
                assert not e.certain, (outcome, e.estimate, e.ci_low, e.ci_high)
                assert "ingen säker förändring" in ev.text_estimate(e)
            else:
                assert e.ci_low <= truth[outcome] <= e.ci_high, (outcome, truth[outcome], e.ci_low, e.ci_high)
    # the built-in attendance effect is large enough to be found at this size
    con = open_store(worlds["builtin"][1])
    assert ev.headline(build_sample(con, YEAR))["absence_rate"].ci_high < 0
    con.close()


def test_a_report_uses_nothing_after_its_year(worlds, tmp_path: Path) -> None:
    """The 2015 estimates are the same from the full store and from one cut at 2015-12-31."""
    _, store = worlds["builtin"]
    cut = tmp_path / "cut.duckdb"
    shutil.copy(store, cut)
    con = duckdb.connect(str(cut))
    con.execute("delete from pupil_month_attendance where month_start > date '2015-12-31'")
    con.execute("delete from pupil_term_outcomes where term_year > 2015")
    con.execute("delete from programme_enrolments where start_date > date '2015-12-31'")
    con.execute("delete from programme_starts where start_date > date '2015-12-31'")
    con.close()
    results = []
    for path in (store, cut):
        con = open_store(path)
        sample = build_sample(con, 2015)
        assert sample.months["month_index"].max() <= est.last_month(2015)
        results.append({o: (e.estimate, e.ci_low, e.n_eligible) for o, e in ev.headline(sample).items()})
        con.close()
    for outcome, (estimate, ci_low, n) in results[0].items():
        assert results[1][outcome] == (pytest.approx(estimate, abs=1e-9), pytest.approx(ci_low, abs=1e-9), n)


def test_effects_csv_is_machine_readable(worlds, tmp_path: Path) -> None:
    _, store = worlds["builtin"]
    con = open_store(store)
    sample = build_sample(con, YEAR)
    con.close()
    frame = ev.effects_frame(ev.estimates_frame(ev.headline(sample)), ev.subgroups(sample))
    path = ev.write_effects(frame, tmp_path / "effects.csv")
    read = pl.read_csv(path)
    assert read.columns == ev.EFFECT_COLUMNS
    headline = read.filter(pl.col("group").fill_null("") == "")
    assert headline["outcome"].to_list() == list(est.OUTCOMES)
    assert headline["estimate"].abs().max() < 1  # fractions, not percentage points
    # sums over threads differ in their last bits between runs; the file must not
    nudged = frame.with_columns(pl.col(pl.Float64) * (1 + 2**-50))
    again = ev.write_effects(nudged, tmp_path / "again.csv")
    assert again.read_bytes() == path.read_bytes() and nudged["estimate"].to_list() != frame["estimate"].to_list()
