"""`ppss` command line (data contract section 5).

Exit status: 0 when every file loaded (quarantined rows are reported, not fatal), 2 when
at least one file was rejected whole, 1 for a usage, configuration or internal error.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from pipelines.analysis.suppress import DEFAULT_MIN_CELL, MIN_CELL_FLOOR
from pipelines.config import DEFAULT_ABSENCE_THRESHOLD, ConfigError, paths

EXIT_OK, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2


def _store(args: argparse.Namespace) -> Path:
    store = Path(args.store) if args.store else paths().store
    if store.is_dir():
        raise ConfigError(f"--store {store} is a folder; give the store's file, such as {store / 'ppss.duckdb'}")
    return store


class _Parser(argparse.ArgumentParser):
    """Usage mistakes end with one line naming the problem and the fix, and exit 1 (2 means a
    rejected file)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (`{self.prog} --help` lists the options)\n")


def _close(word: str, choices: list[str]) -> str:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {found[0]}?" if found else ""


def _mistyped(p: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """A misspelt command or option (`ppss reprot`, `--yaer`), named with the closest real one;
    argparse alone would only say that --year is missing."""
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is None:
        return None
    if command not in sub.choices:
        return f"ppss: unknown command {command}{_close(command, list(sub.choices))} (`ppss --help` lists them)"
    options = [o for a in sub.choices[command]._actions for o in a.option_strings]
    for token in argv[argv.index(command) + 1 :]:
        name = token.split("=", 1)[0]
        if name.startswith("--") and not any(o.startswith(name) for o in options):
            return (
                f"ppss {command}: unknown option {name}{_close(name, options)} "
                f"(`ppss {command} --help` lists the options)"
            )
    return None


DEMO_SEED = 2016
DEMO_SCALES = ["tiny", "small", "demo", "city", "country"]


def cmd_demo_data(args: argparse.Namespace) -> int:
    from pipelines.demo.world import write_demo

    out = Path(args.out) if args.out else paths().raw / "demo"
    t = time.perf_counter()
    world = getattr(args, "world", "demo")
    counts = write_demo(
        out, seed=args.seed, scale=args.scale, effects=args.effects, one_year=args.one_year, world=world
    )
    span = ", school year 2016/17 only" if args.one_year else ""
    print(
        f"demo data ({args.scale}{span}, seed {args.seed}, effects {args.effects}) written to {out} "
        f"in {time.perf_counter() - t:.1f} s: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
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
    for path in summary.removed:
        print(f"  {'removed':<10} {path:<{width}}  no longer in the folder: its rows are no longer current")
    for path, what in summary.not_files:
        print(f"  {'skipped':<10} {path:<{width}}  named like an input, but {what}: put the file itself there")
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


def _printable(name: str) -> str:
    """A file name that is not UTF-8 (surrogate escapes) shown with its bytes escaped."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@contextmanager
def _progress():
    """A progress bar (rich) on a terminal; plain lines when the output goes to a file or a log."""
    if sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, TextColumn("{task.description}"), transient=True) as bar:
            task = bar.add_task("", total=None)

            def update(name: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=_printable(name))

            yield update
        return

    def plain(name: str, done: int, total: int) -> None:
        if name:
            print(f"ingest: file {done + 1} of {total}: {_printable(name)}", flush=True)

    yield plain


def _ingest(args: argparse.Namespace) -> int:
    from pipelines.ingest.load import ingest

    docs = Path(args.out if getattr(args, "out", None) else paths().reports) / "validation"
    t = time.perf_counter()
    with _progress() as progress:
        summary = ingest(Path(args.raw), _store(args), docs_dir=docs, progress=progress)
    _print_ingest(summary)
    print(
        f"ingest: {len(summary.files)} files in {time.perf_counter() - t:.1f} s (Great Expectations "
        f"validation {summary.validation_seconds:.1f} s, {summary.workers or 'no'} parallel workers) into "
        f"{_store(args)}; validation report {summary.docs}"
    )
    return EXIT_REJECTED if summary.rejected else EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from pipelines.transform.build import build

    t = time.perf_counter()
    counts = build(_store(args))
    print(f"build: {', '.join(f'{k} {v:,} rows' for k, v in counts.items())} in {time.perf_counter() - t:.1f} s")
    return EXIT_OK


def _districts(args: argparse.Namespace) -> list[str] | None:
    """--district NAME (repeatable) and the older --districts A,B."""
    names = list(getattr(args, "district", None) or [])
    if getattr(args, "districts", None):
        names += args.districts.split(",")
    names = [n.strip() for n in names if n.strip()]
    return names or None


def _resolve_districts(store: Path, names: list[str] | None) -> list[str] | None:
    """District names as the store spells them, matched without regard to case, spacing or Unicode
    form (`farsta` is Farsta); a name that matches none is refused with the closest one."""
    if not names:
        return names
    from pipelines.codes import normalise_code
    from pipelines.report.render import ReportRefused, district_names
    from pipelines.store import connect_readonly

    try:
        con = connect_readonly(store)
        try:
            valid = district_names(con)
        finally:
            con.close()
    except Exception:  # no store or no marts yet: the report's own check says so
        return names
    by_key = {normalise_code(v).casefold(): v for v in valid}
    resolved, unknown = [], []
    for name in names:
        match = by_key.get(normalise_code(name).casefold())
        (resolved if match else unknown).append(match or name)
    if unknown:
        hint = "".join(_close(u, valid) for u in unknown[:1])
        raise ReportRefused(
            f"unknown district {', '.join(repr(u) for u in unknown)}{hint} The districts in the store are: "
            + ", ".join(valid)
        )
    return resolved


def _report(args: argparse.Namespace) -> int:
    from pipelines.report.render import ReportRefused, run_report

    t = time.perf_counter()
    try:
        districts = _resolve_districts(_store(args), _districts(args))
        html = run_report(
            args.year,
            _store(args),
            Path(args.out) if args.out else paths().reports,
            min_cell=args.min_cell,
            allow_rejected=args.allow_rejected,
            absence_threshold=args.absence_threshold,
            districts=districts,
            progress=lambda line: print(line, flush=True),
        )
    except ReportRefused as e:
        print(f"ppss report: {e}", file=sys.stderr)
        return EXIT_ERROR
    pdf = html.with_suffix(".pdf")
    print(f"report: {html}{f' and {pdf.name}' if pdf.exists() else ''} ({time.perf_counter() - t:.1f} s)")
    return EXIT_OK


def _reports(args: argparse.Namespace) -> int:
    from pipelines.report.render import ReportRefused, load_params, params_dir, run_param_sets

    t = time.perf_counter()
    try:
        sets = load_params(Path(args.params) if args.params else params_dir())
        index = run_param_sets(
            sets, _store(args), Path(args.out) if args.out else paths().reports, allow_rejected=args.allow_rejected
        )
    except ReportRefused as e:
        print(f"ppss reports: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(f"reports: {len(sets)} parameter sets, index {index} ({time.perf_counter() - t:.1f} s)")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from pipelines.ingest.status import status_lines

    print("\n".join(status_lines(_store(args))))
    return EXIT_OK


def _ledger(args: argparse.Namespace) -> int:
    """Every publication made from the store, oldest first; `--remove` forgets one."""
    from pipelines.analysis.ledger import Ledger

    ledger = Ledger.for_store(_store(args))
    if args.remove:
        target = ledger.folder / args.remove
        if not (target / "meta.json").exists() or target.parent != ledger.folder:
            print(
                f"ppss ledger: no publication {args.remove!r} in {ledger.folder} (see `ppss ledger`)", file=sys.stderr
            )
            return EXIT_ERROR
        import shutil

        shutil.rmtree(target)
        print(
            f"removed {args.remove}: later reports no longer protect what it published. Do this only for a "
            "publication that never left the building (a reader who holds it can still combine it with new ones)."
        )
        return EXIT_OK
    rows = ledger.publications()
    if not rows:
        print(f"no publications recorded beside {_store(args)}")
    for m in rows:
        where = ", ".join(m.get("districts") or []) or "alla stadsdelar"
        print(
            f"  {m['id']}  {m.get('written', '?')}  {m.get('what', '')} {m.get('year', '')} ({where}), "
            f"min_cell {m.get('min_cell')}: {m['shown']} counts shown, {m['hidden']} hidden"
            + (f", written to {m['out']}" if m.get("out") else "")
        )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    if args.demo:
        from pipelines.ingest.load import start_workers

        start_workers()  # the ingest's workers get ready while the demo data are written
        demo = argparse.Namespace(out=args.raw, seed=DEMO_SEED, scale=args.demo, effects="builtin", one_year=False)
        cmd_demo_data(demo)
    status = _ingest(args)
    _build(args)
    # The report follows the same rule as `ppss report`: refused after a rejected file unless allowed.
    if _report(args) != EXIT_OK and status == EXIT_OK:
        return EXIT_ERROR
    return status


def _threshold(text: str) -> float:
    """`--absence-threshold`: a share (0.15) or a percentage (15)."""
    value = float(text.replace(",", ".").rstrip("% "))
    value = value / 100 if value >= 1 else value
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1 or a percentage, not {text!r}")
    return value


def _command(sub, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose help ends with an example (`ppss <command> --help`)."""
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


STORE_HELP = "the DuckDB store (default data/processed/ppss.duckdb)"
YEAR_HELP = "the follow-up year: enrolments up to its end, absence in its terms, eligibility in its spring"
OUT_HELP = "where reports go: <out>/<year>/ (default reports/)"
MIN_CELL_HELP = (
    f"figures resting on fewer pupils show as `..` (default {DEFAULT_MIN_CELL}, never below {MIN_CELL_FLOOR})"
)
THRESHOLD_HELP = "the report's own threshold of high absence, shown beside 10, 15 and 20 %% (default 15 %%)"
REJECTED_HELP = "report on what loaded even if the latest load rejected a file"


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="FILE", help=STORE_HELP)
    p.add_argument("--out", metavar="DIR", help=OUT_HELP)
    p.add_argument("--min-cell", type=int, default=DEFAULT_MIN_CELL, metavar="N", help=MIN_CELL_HELP)
    p.add_argument(
        "--absence-threshold", type=_threshold, default=DEFAULT_ABSENCE_THRESHOLD, metavar="SHARE", help=THRESHOLD_HELP
    )
    p.add_argument("--allow-rejected", action="store_true", help=REJECTED_HELP)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ppss", description="PPSS follow-up: ingest exports, build the store, write the yearly report.")
    sub = p.add_subparsers(dest="command", required=True)
    d = _command(sub, "demo-data", "write the built-in demo data", "ppss demo-data --out data/raw/demo --seed 2016")
    d.add_argument("--out", metavar="DIR", help="folder (default data/raw/demo)")
    d.add_argument(
        "--seed", type=int, default=DEMO_SEED, metavar="N", help="random seed: the same seed writes the same files"
    )
    d.add_argument(
        "--scale",
        choices=DEMO_SCALES,
        default="demo",
        help="how many schools and pupils: demo 30 schools; city about 90,000 pupils; country about 1.05 million",
    )
    d.add_argument(
        "--effects",
        choices=["builtin", "none"],
        default="builtin",
        help="builtin: the programme works as built in; none: the same world with every effect off "
        "(the true effects are written to TRUE_EFFECTS.json beside the data)",
    )
    d.add_argument(
        "--world",
        choices=["demo", "trend", "crisis", "swings", "staggered"],
        default="demo",
        help="the kind of world (pipelines/demo/world.py, WORLDS): demo, or pupils chosen on a latent trend that "
        "continues, during a crisis that ends, schools whose absence swings, staggered entry with growing effects",
    )
    d.add_argument(
        "--one-year",
        action="store_true",
        help="attendance and grades of the last school year only (2016/17), with every person and register row: "
        "a fifth of the volume, for a country-scale benchmark on one machine",
    )
    d.set_defaults(func=cmd_demo_data)
    i = _command(sub, "ingest", "validate and load raw files into the store", "ppss ingest --raw data/raw/2017-01")
    i.add_argument(
        "--raw", required=True, metavar="DIR", help="folder of exports (any sub-folders); files are recognised by name"
    )
    i.add_argument("--store", metavar="FILE", help=STORE_HELP)
    i.set_defaults(func=_ingest)
    b = _command(sub, "build", "build the marts (public tables) from what is loaded", "ppss build")
    b.add_argument("--store", metavar="FILE", help=STORE_HELP)
    b.set_defaults(func=_build)
    r = _command(sub, "report", "write the yearly follow-up report", "ppss report --year 2016 --district Farsta")
    r.add_argument("--year", type=int, required=True, metavar="YYYY", help=YEAR_HELP)
    _report_options(r)
    r.add_argument(
        "--district",
        action="append",
        metavar="NAME",
        help="a report on this district only, in reports/<year>/stadsdelar_<names>/ (repeat for several; "
        "audited with every earlier publication of the store)",
    )
    r.add_argument("--districts", metavar="A,B", help="comma-separated districts (the same as repeating --district)")
    r.set_defaults(func=_report)
    rs = _command(
        sub,
        "reports",
        "build every parameter set (notebooks/params/*.yaml) and an index page linking the reports",
        "ppss reports --store data/processed/ppss.duckdb",
    )
    rs.add_argument(
        "--params", metavar="DIR", help="folder of parameter sets (default: the repository's notebooks/params)"
    )
    rs.add_argument("--store", metavar="FILE", help=STORE_HELP)
    rs.add_argument("--out", metavar="DIR", help=OUT_HELP)
    rs.add_argument("--allow-rejected", action="store_true", help=REJECTED_HELP)
    rs.set_defaults(func=_reports)
    st = _command(sub, "status", "files, counts, quarantined rows by rule, and what to do next", "ppss status")
    st.add_argument("--store", metavar="FILE", help=STORE_HELP)
    st.set_defaults(func=_status)
    lg = _command(
        sub,
        "ledger",
        "every publication made from the store (what later reports are audited against)",
        "ppss ledger --store data/processed/ppss.duckdb",
    )
    lg.add_argument("--store", metavar="FILE", help=STORE_HELP)
    lg.add_argument("--remove", metavar="ID", help="forget a publication that never left the building (see the list)")
    lg.set_defaults(func=_ledger)
    u = _command(sub, "run", "ingest + build + report", "ppss run --raw data/raw/demo --year 2016")
    u.add_argument(
        "--raw", required=True, metavar="DIR", help="folder of exports (any sub-folders); files are recognised by name"
    )
    u.add_argument("--year", type=int, required=True, metavar="YYYY", help=YEAR_HELP)
    u.add_argument(
        "--demo",
        nargs="?",
        const="demo",
        choices=DEMO_SCALES,
        help=f"first write the built-in demo data (seed {DEMO_SEED}; scale demo unless given) to --raw, "
        "as `ppss demo-data` does, while the ingest's workers start (`make demo`)",
    )
    _report_options(u)
    u.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    mistake = _mistyped(p, argv)
    if mistake:
        print(mistake, file=sys.stderr)
        return EXIT_ERROR
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # --help, or a usage mistake already named on one line
        return int(e.code or 0)
    from pipelines.store import StoreBusy

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
