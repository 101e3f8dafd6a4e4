"""`ppss` command line (data contract section 5).

Exit status: 0 when every file loaded (quarantined rows are reported, not fatal), 2 when
at least one file was rejected whole, 1 for a usage, configuration or internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from .config import ConfigError, paths

EXIT_OK, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2


def _store(args: argparse.Namespace) -> Path:
    return Path(args.store) if args.store else paths().store


def cmd_demo_data(args: argparse.Namespace) -> int:
    from .demo import write_demo

    out = Path(args.out) if args.out else paths().raw / "demo"
    t = time.perf_counter()
    counts = write_demo(out, seed=args.seed, scale=args.scale, effects=args.effects)
    print(
        f"demo data ({args.scale}, seed {args.seed}, effects {args.effects}) written to {out} "
        f"in {time.perf_counter() - t:.1f} s: "
        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
    )
    return EXIT_OK


def _print_ingest(summary) -> None:
    if summary.demo_key:
        print("note: demo data, pseudonymised with the built-in demo key (never used for real data)")
    width = max((len(f.path) for f in summary.files), default=10)
    for f in summary.files:
        print(f"  {f.status:<10} {f.path:<{width}}  {f.message}")
    for path in summary.ignored:
        print(f"  {'ignored':<10} {path:<{width}}  not an input file name of the data contract")
    if summary.held:
        print(
            "checks across files (re-run on every ingest): "
            + ", ".join(f"{n} rows {rule}" for rule, n in summary.held.items())
        )
    total_q = summary.quarantined
    if total_q:
        print(
            f"{total_q} rows of the current files quarantined: see table `quarantine` in the store"
            + (f" and {summary.docs}" if summary.docs else "")
        )
    if summary.rejected:
        print(
            "at least one file was rejected whole: correct or replace it (the reason is above) and ingest again",
            file=sys.stderr,
        )


def _ingest(args: argparse.Namespace) -> int:
    from .ingest import ingest

    docs = Path(args.out if getattr(args, "out", None) else paths().reports) / "validation"
    t = time.perf_counter()
    summary = ingest(Path(args.raw), _store(args), docs_dir=docs)
    _print_ingest(summary)
    print(
        f"ingest: {len(summary.files)} files in {time.perf_counter() - t:.1f} s (Great Expectations "
        f"validation {summary.validation_seconds:.1f} s, {summary.workers or 'no'} parallel workers) into "
        f"{_store(args)}; validation report {summary.docs}"
    )
    return EXIT_REJECTED if summary.rejected else EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from .build import build

    t = time.perf_counter()
    counts = build(_store(args))
    print(f"build: {', '.join(f'{k} {v:,} rows' for k, v in counts.items())} in {time.perf_counter() - t:.1f} s")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from .report import ReportRefused, run_report

    t = time.perf_counter()
    try:
        html = run_report(
            args.year,
            _store(args),
            Path(args.out) if args.out else paths().reports,
            min_cell=args.min_cell,
            allow_rejected=args.allow_rejected,
            districts=[d.strip() for d in args.districts.split(",")] if getattr(args, "districts", None) else None,
        )
    except ReportRefused as e:
        print(f"ppss report: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(f"report: {html} ({time.perf_counter() - t:.1f} s)")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from .status import status_lines

    print("\n".join(status_lines(_store(args))))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    status = _ingest(args)
    _build(args)
    # The report follows the same rule as `ppss report`: refused after a rejected file unless allowed.
    if _report(args) != EXIT_OK and status == EXIT_OK:
        return EXIT_ERROR
    return status


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ppss", description="PPSS follow-up: ingest exports, build the store, write the yearly report."
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo-data", help="write the built-in demo data")
    d.add_argument("--out", help="folder (default data/raw/demo)")
    d.add_argument("--seed", type=int, default=2016)
    d.add_argument("--scale", choices=["tiny", "small", "demo", "city", "country"], default="demo")
    d.add_argument(
        "--effects",
        choices=["builtin", "none"],
        default="builtin",
        help="builtin: the programme works as built in; none: the same world with every effect off "
        "(the true effects are written to TRUE_EFFECTS.json beside the data)",
    )
    d.set_defaults(func=cmd_demo_data)
    i = sub.add_parser("ingest", help="validate and load raw files into the store")
    i.add_argument("--raw", required=True)
    i.add_argument("--store")
    i.set_defaults(func=_ingest)
    b = sub.add_parser("build", help="build the marts (public tables) from what is loaded")
    b.add_argument("--store")
    b.set_defaults(func=_build)
    r = sub.add_parser("report", help="write the yearly follow-up report")
    r.add_argument("--year", type=int, required=True)
    r.add_argument("--store")
    r.add_argument("--out")
    r.add_argument("--min-cell", type=int, default=10)
    r.add_argument("--allow-rejected", action="store_true")
    r.add_argument("--districts", help="comma-separated districts: a report on these only (after the full report)")
    r.set_defaults(func=_report)
    st = sub.add_parser("status", help="files, counts, quarantined rows by rule, and what to do next")
    st.add_argument("--store")
    st.set_defaults(func=_status)
    u = sub.add_parser("run", help="ingest + build + report")
    u.add_argument("--raw", required=True)
    u.add_argument("--year", type=int, required=True)
    u.add_argument("--store")
    u.add_argument("--out")
    u.add_argument("--min-cell", type=int, default=10)
    u.add_argument("--allow-rejected", action="store_true", help="report on what loaded even if a file was rejected")
    u.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .store import StoreBusy

    try:
        return args.func(args)
    except (ConfigError, StoreBusy, FileNotFoundError, ValueError) as e:
        print(f"ppss {args.command}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"ppss {args.command}: interrupted; the store is unchanged", file=sys.stderr)
        return EXIT_ERROR
    except Exception:
        print(f"ppss {args.command}: internal error (please report it with the lines below)", file=sys.stderr)
        traceback.print_exc()
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
