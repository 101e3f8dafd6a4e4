"""The methods harness: the real pipeline on many simulated worlds whose true effects are known.

For each seed, the demo world is written twice, with the programme's effects built in and
with every effect off (same pupils, enrolments and random draws), then ingested, built and
estimated exactly as the yearly report does. Per headline outcome it reports bias, RMSE and
the coverage of the 95 % interval against `TRUE_EFFECTS.json`, the bias against the truth
for exactly the pupils in the estimate (`@estimand`), and, in the world without effects, how
often an interval excludes zero (a false finding).

    python -m benchmarks.methods --seeds 20 --scale small --jobs 2
    python -m benchmarks.methods --seeds 5 --worlds trend:none,crisis:none,swings:none,staggered:builtin

`--worlds` picks kinds of world (pipelines/demo/world.py, WORLDS) and their effects; the
default is the demo world with and without effects. Besides the interval, each run records
the report's verdict (evidence.py): a false finding is a stated effect where there is none,
and a withheld verdict ("trend", "few_schools") counts as no finding.

`--cache DIR` keeps each built world (DIR/<kind>-<effects>-<scale>-<seed>/, about 100 MB
at `small`) and reruns only the evaluation on it: a change to the evaluation's queries or
estimator is then measured in about 2 s a world instead of 20 (a change to the generator,
ingest or build needs an empty DIR). Without it each world is built in a temporary folder.

A benchmark, not a test: it takes minutes. `tests/test_methods.py` runs a fast subset.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stdout
from datetime import date
from io import StringIO
from pathlib import Path

import numpy as np

TARGETS = {"false_rate": 0.10, "coverage": 0.85, "bias": {"absence_rate": 0.005, "share_passed_change": 0.01}}
RESULTS = Path(__file__).resolve().parent / "results"


def truth_for_pupils(raw: Path, year: int, keys: dict[str, set[str]]) -> dict[str, float]:
    """The true effect averaged over exactly the pupils (pupil_key) each estimate rests on."""
    from pipelines.demo.truth import PUPIL_FILE
    from pipelines.rules.identity import DEMO_KEY, parse_identity, pupil_key

    per: dict[str, list[float]] = {o: [] for o in keys}
    with open(raw / PUPIL_FILE, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if int(row["year"]) != year or row["outcome"] not in keys:
                continue
            if pupil_key(DEMO_KEY, parse_identity(row["civic_no"]).digits12) in keys[row["outcome"]]:
                per[row["outcome"]].append(float(row["effect"]))
    return {o: float(np.mean(v)) if v else float("nan") for o, v in per.items()}


def _make_world(home: Path, seed: int, effects: str, scale: str, world: str) -> None:
    """Generate, ingest and build one world under `home` (raw/, store.duckdb)."""
    from pipelines.cli import main

    os.environ["PPSS_HOME"] = str(home)
    raw, store = home / "raw", home / "store.duckdb"
    with redirect_stdout(StringIO()):
        kind = [] if world == "demo" else ["--world", world]  # (a checkout without kinds runs the demo)
        main(["demo-data", "--out", str(raw), "--seed", str(seed), "--scale", scale, "--effects", effects, *kind])
        main(["ingest", "--raw", str(raw), "--store", str(store)])
        main(["build", "--store", str(store)])


def run_world(seed: int, effects: str, scale: str, year: int, world: str = "demo", cache: str = "") -> dict:
    """Generate, ingest, build and estimate one world in a temporary PPSS_HOME, or with
    `cache`, in (and from) a folder of built worlds kept between runs: the evaluation's
    queries and estimator are rerun on the stored world, so a change to them is measured in
    seconds a world (a change to the generator, ingest or build needs a fresh cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        if cache:
            home = Path(cache) / f"{world}-{effects}-{scale}-{seed}"
            if not (home / "built").exists():
                shutil.rmtree(home, ignore_errors=True)
                home.mkdir(parents=True)
                _make_world(home, seed, effects, scale, world)
                (home / "built").touch()
            os.environ["PPSS_HOME"] = str(home)
        else:
            home = Path(tmp)
            _make_world(home, seed, effects, scale, world)
        return _estimate(home, seed, effects, year, world)


def _estimate(home: Path, seed: int, effects: str, year: int, world: str) -> dict:
    from pipelines.analysis import evaluation as ev
    from pipelines.analysis.followup import open_store
    from pipelines.analysis.sample import build_sample

    raw, store = home / "raw", home / "store.duckdb"
    con = open_store(store)
    try:
        sample = build_sample(con, year)
        estimates = ev.headline(sample)
        keys = {o: set(ev.pair_differences(a)["pupil_key"].to_list()) for o, a in sample.analytic.items()}
    finally:
        con.close()
    truth = json.loads((raw / "TRUE_EFFECTS.json").read_text(encoding="utf-8"))[str(year)]
    at_estimand = truth_for_pupils(raw, year, keys)
    out = {"seed": seed, "effects": effects, "world": world}
    for o, e in estimates.items():
        certain = e.claimable and (e.ci_low > 0 or e.ci_high < 0)
        out[o] = {
            "estimate": e.estimate,
            "ci_low": e.ci_low,
            "ci_high": e.ci_high,
            "truth": truth[o] if truth[o] is not None else float("nan"),
            "truth_estimand": at_estimand[o],
            "coverage": e.coverage,
            "claimable": e.claimable,
            # the report's verdict; an estimator without one states every certain interval
            "verdict": getattr(e, "verdict", "effect" if certain else "no_change"),
            "n_schools": e.n_schools,
            # the evidence on trends behind the verdict (evidence.py)
            "pretrend_p": getattr(e, "pretrend_p", float("nan")),
            "robust_low": getattr(e, "robust_low", float("nan")),
            "robust_high": getattr(e, "robust_high", float("nan")),
        }
    return out


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    kinds = list(dict.fromkeys((x.get("world", "demo"), x["effects"]) for x in runs))
    for world, effects in kinds:
        for outcome in ("absence_rate", "share_passed_change", "eligible_vocational"):
            r = [
                x[outcome]
                for x in runs
                if x.get("world", "demo") == world and x["effects"] == effects and np.isfinite(x[outcome]["estimate"])
            ]
            if not r:
                continue
            est = np.array([x["estimate"] for x in r])
            truth = np.array([x["truth"] for x in r])
            lo, hi = np.array([x["ci_low"] for x in r]), np.array([x["ci_high"] for x in r])
            # runs recorded before verdicts existed stated every certain, claimable interval
            verdicts = [
                x.get("verdict")
                or ("effect" if x["claimable"] and (x["ci_low"] > 0 or x["ci_high"] < 0) else "no_change")
                for x in r
            ]
            rows.append(
                {
                    "world": effects if world == "demo" else f"{world}, {effects}",
                    "outcome": outcome,
                    "worlds": len(r),
                    "mean_truth": float(truth.mean()),
                    "bias": float((est - truth).mean()),
                    "bias_estimand": float(np.mean([x["estimate"] - x["truth_estimand"] for x in r])),
                    "rmse": float(np.sqrt(((est - truth) ** 2).mean())),
                    "coverage": float(((lo <= truth) & (truth <= hi)).mean()),
                    "excludes_zero": float(((lo > 0) | (hi < 0)).mean()),
                    "share_in_estimate": float(np.mean([x["coverage"] for x in r])),
                    "stated": float(np.mean([v == "effect" for v in verdicts])),
                    "withheld": float(np.mean([v in ("trend", "few_schools", "not_claimable") for v in verdicts])),
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    head = (
        "| world | outcome | worlds | true effect | bias | bias (@estimand) | RMSE | 95 % coverage "
        "| CI excludes 0 | effect stated | verdict withheld | in estimate |"
    )
    lines = [head, "|" + " --- |" * 12]
    for r in rows:
        lines.append(
            f"| {r['world']} | {r['outcome']} | {r['worlds']} | {r['mean_truth']:+.4f} | {r['bias']:+.4f} | "
            f"{r['bias_estimand']:+.4f} | {r['rmse']:.4f} | {r['coverage']:.0%} | {r['excludes_zero']:.0%} | "
            f"{r.get('stated', float('nan')):.0%} | {r.get('withheld', float('nan')):.0%} | "
            f"{r['share_in_estimate']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20, help="worlds of each kind (default 20)")
    p.add_argument("--first-seed", type=int, default=1000)
    p.add_argument("--scale", default="small", choices=["tiny", "small", "demo"])
    p.add_argument("--year", type=int, default=2016)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--worlds",
        default="demo:none,demo:builtin",
        help="comma-separated kind:effects (kinds: demo, trend, crisis, swings, staggered; effects: none, builtin)",
    )
    p.add_argument("--tag", default="", help="added to the result file's name (say, before)")
    p.add_argument("--cache", default="", help="a folder keeping the built worlds between runs (run_world)")
    args = p.parse_args(argv)
    kinds = [tuple(w.split(":")) for w in args.worlds.split(",")]
    tasks = [
        (s, e, args.scale, args.year, k, args.cache)
        for k, e in kinds
        for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(run_world, *zip(*tasks, strict=True)))
    rows = summarise(runs)
    RESULTS.mkdir(exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    out = RESULTS / f"methods-{args.scale}{tag}-{date.today().isoformat()}.json"
    out.write_text(json.dumps({"args": vars(args), "summary": rows, "runs": runs}, indent=1) + "\n", encoding="utf-8")
    print(markdown(rows))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
