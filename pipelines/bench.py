"""Benchmark: time and peak memory of each stage at a given scale (`make bench`).

Each stage runs as its own process (as a user runs it), so its peak resident memory is
measured on its own. Results go to stdout and `reports/bench/bench-<scale>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .config import paths


def _run(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        raise SystemExit(f"stage {' '.join(args[:1])} failed with exit status {os.waitstatus_to_exitcode(status)}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scale", choices=["tiny", "demo", "city", "country"], default="city")
    p.add_argument("--work", help="folder for the generated data and store (default: a temporary folder)")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix=f"ppss-bench-{args.scale}-"))
    raw, store, out = work / "raw", work / "ppss.duckdb", work / "reports"
    results = {"scale": args.scale, "cpus": os.cpu_count(), "stages": {}}
    stages = [
        ("demo-data", ["demo-data", "--out", str(raw), "--scale", args.scale]),
        ("ingest", ["ingest", "--raw", str(raw), "--store", str(store)]),
        ("build", ["build", "--store", str(store)]),
        ("report", ["report", "--year", "2016", "--store", str(store), "--out", str(out)]),
    ]
    if (raw / "PPSS_DEMO_DATA").exists():  # generated before: reuse it (same seed, same data)
        stages = stages[1:]
        store.unlink(missing_ok=True)
    for name, stage_args in stages:
        results["stages"][name] = _run(stage_args)
        stage = results["stages"][name]
        print(f"{name:<10} {stage['seconds']:>8.1f} s  {stage['peak_rss_mb']:>6} MB", flush=True)
    results["raw_mb"] = round(sum(f.stat().st_size for f in raw.rglob("*") if f.is_file()) / 2**20)
    results["store_mb"] = round(store.stat().st_size / 2**20)
    print(f"raw {results['raw_mb']} MB, store {results['store_mb']} MB")
    target = paths().reports / "bench"
    target.mkdir(parents=True, exist_ok=True)
    (target / f"bench-{args.scale}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
