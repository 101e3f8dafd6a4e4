"""Benchmark: the parse floor and every stage side by side in one run (`make bench SCALE=city`).

Each stage runs as its own process, as a user runs it; its peak memory is the largest sum of
resident memory over the process and its workers (sampled by psutil every 50 ms). Every stage
is stated as seconds, input records per second and a ratio to the parse floor measured in the
same run (`benchmarks/floor.py`: every file read once on one core). With `--incremental`
(default for tiny and demo) it also times a re-run with nothing new and adding the last year's
files to a store holding the earlier ones. Results: stdout and
`benchmarks/results/<scale>-<date>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPORT_YEAR = "2016"
# The files of the last school year of a generated delivery (what a yearly delivery adds).
LAST_YEAR = ("betyg_export_2017-06-30.xml", "ppss_2016.csv")
MARKER = "PPSS_DEMO_DATA"  # generated data: the built-in demo key


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run `cmd`; its wall time, the CPU time of it and its children, and the peak of their summed RSS."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:  # not a pipe: a long output must not block the stage
        proc = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        peak = 0
        cpu: dict[int, float] = {}  # pid -> CPU seconds last seen (a shared machine: work, not only wall time)
        while proc.poll() is None:
            try:
                rss = 0
                for p in [proc, *proc.children(recursive=True)]:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                        cpu[p.pid] = t.user + t.system
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(cmd[:4])} failed with exit status {proc.returncode}:\n{out[-3000:]}")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(sum(cpu.values()), 1),
        "peak_rss_mb": round(peak / 2**20),
        "output": out,
    }


def ppss(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def _stage(results: dict, name: str, cmd: list[str], records: int, floor: float | None) -> dict:
    r = measure(cmd)
    r.pop("output")
    r["rows_per_s"] = round(records / r["seconds"]) if r["seconds"] else None
    r["ratio_to_floor"] = round(r["seconds"] / floor, 2) if floor else None
    results["stages"][name] = r
    ratio = f"{r['ratio_to_floor']:>6.2f}×" if r["ratio_to_floor"] is not None else "       "
    print(
        f"{name:<26} {r['seconds']:>8.1f} s {r['rows_per_s'] or 0:>11,} rows/s {r['peak_rss_mb']:>7,} MB {ratio}"
        f"  (CPU {r['cpu_seconds']:.0f} s)",
        flush=True,
    )
    return r


def _incremental(results: dict, raw: Path, work: Path, records: int, floor: float) -> None:
    """A re-run with nothing new; the last year's files added to a store holding the rest."""
    _stage(
        results,
        "ingest again, nothing new",
        ppss("ingest", "--raw", str(raw), "--store", str(work / "ppss.duckdb")),
        records,
        floor,
    )
    earlier, last, store = work / "inc-earlier", work / "inc-last", work / "inc.duckdb"
    for d in (earlier, last):
        shutil.rmtree(d, ignore_errors=True)
    for f in raw.rglob("*"):
        if f.is_file():
            for folder in [last] if f.name in LAST_YEAR else [earlier, last] if f.name == MARKER else [earlier]:
                target = folder / f.relative_to(raw)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(f, target)
    store.unlink(missing_ok=True)
    measure(ppss("ingest", "--raw", str(earlier), "--store", str(store)))
    for f in last.rglob("*"):  # the new delivery arrives beside the earlier ones
        if f.is_file() and f.name != MARKER:
            target = earlier / f.relative_to(last)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)
    _stage(results, "ingest a new year", ppss("ingest", "--raw", str(earlier), "--store", str(store)), records, floor)
    alone = work / "inc-alone.duckdb"
    alone.unlink(missing_ok=True)
    _stage(results, "that year alone", ppss("ingest", "--raw", str(last), "--store", str(alone)), records, floor)
    for d in (earlier, last):
        shutil.rmtree(d, ignore_errors=True)
    for s in (store, alone):
        s.unlink(missing_ok=True)


def _commands(stage: str, raw: Path, store: Path, out: Path) -> list[str]:
    return {
        "ingest": ppss("ingest", "--raw", str(raw), "--store", str(store)),
        "build": ppss("build", "--store", str(store)),
        "report": ppss("report", "--year", REPORT_YEAR, "--store", str(store), "--out", str(out)),
    }[stage]


def _rerun(now: dict, earlier: dict, stages: list[str], raw: Path, store: Path, out: Path, target: Path) -> int:
    """Some stages measured again on the kept store (after a change to them), beside the earlier floor."""
    if "ingest" in stages:
        store.unlink(missing_ok=True)
    records, floor = earlier["floor"]["records"], earlier["floor"]["seconds"]
    for stage in ("ingest", "build", "report"):
        if stage in stages:
            _stage(earlier, stage, _commands(stage, raw, store, out), records, floor)
            earlier["stages"][stage]["rerun_load"] = [now["load_before"][0], round(os.getloadavg()[0], 2)]
    earlier["store_mb"] = round(store.stat().st_size / 2**20)
    target.write_text(json.dumps(earlier, indent=2) + "\n")
    print(f"updated {target.relative_to(HERE.parent)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=["tiny", "demo", "city", "country"], default="city")
    p.add_argument("--work", help="folder for the generated data and store (default /tmp/ppss-bench-<scale>)")
    p.add_argument("--incremental", action=argparse.BooleanOptionalAction, default=None, help="time re-runs too")
    p.add_argument("--keep", action="store_true", help="keep the generated data and store afterwards")
    p.add_argument(
        "--one-year",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="generate the last school year's attendance and grades only (default for country: five years of "
        "1.05 million pupils are about 40 GB of exports and hours of generation on one machine)",
    )
    p.add_argument(
        "--stages",
        default="ingest,build,report",
        help="stages to run after the floor (comma-separated; a report needs a built store)",
    )
    p.add_argument(
        "--rerun",
        action="store_true",
        help="measure --stages again on the kept store of today's run (--keep) and update its result file, "
        "the floor and the other stages as they were",
    )
    args = p.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    work = Path(args.work or f"/tmp/ppss-bench-{args.scale}")
    raw, store, out = work / "raw", work / "ppss.duckdb", work / "reports"
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PPSS_HOME", str(work / "home"))
    one_year = args.one_year if args.one_year is not None else args.scale == "country"
    results: dict = {
        "scale": args.scale,
        "one_year": one_year,
        "date": date.today().isoformat(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "stages": {},
    }
    target = RESULTS / f"{args.scale}-{results['date']}.json"
    if args.rerun:
        return _rerun(results, json.loads(target.read_text()), stages, raw, store, out, target)
    if not (raw / "PPSS_DEMO_DATA").exists():  # generated before: reuse it (same seed, same data)
        span = ["--one-year"] if one_year else []
        gen = measure(ppss("demo-data", "--out", str(raw), "--scale", args.scale, *span))
        results["demo_data_seconds"] = gen["seconds"]
        print(f"demo-data {gen['seconds']:.1f} s")
    floor = json.loads(measure([sys.executable, "-m", "benchmarks.floor", str(raw)])["output"])
    records = floor["records"]
    results["floor"] = {**floor, "rows_per_s": round(records / floor["seconds"])}
    results["raw_mb"] = round(floor["bytes"] / 2**20)
    print(
        f"{'parse floor (1 core)':<26} {floor['seconds']:>8.1f} s {results['floor']['rows_per_s']:>11,} rows/s"
        f"  ({records:,} records, {results['raw_mb']:,} MB)"
    )
    store.unlink(missing_ok=True)
    f = floor["seconds"]
    for stage in ("ingest", "build", "report"):
        if stage in stages:
            _stage(results, stage, _commands(stage, raw, store, out), records, f)
    results["store_mb"] = round(store.stat().st_size / 2**20)
    if args.incremental if args.incremental is not None else args.scale in ("tiny", "demo"):
        _incremental(results, raw, work, records, f)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"store {results['store_mb']:,} MB; load average before {results['load_before']}, after {results['load_after']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {target.relative_to(HERE.parent)}")
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
