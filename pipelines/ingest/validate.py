"""Great Expectations validation of every input before it is loaded.

One suite per input kind lives as JSON in `expectations/`. Suites run on each file's
frame in bounded batches (GX's SQL data source does not work on DuckDB, GX issues
#10738 and #11579, so frames are validated, not the store). Each expectation's `meta`
names the quarantine rule, the message and what to do; `scope: enrolment` quarantines
one enrolment of a person rather than the person.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
import jinja2
import jinja2.bccache
import polars as pl
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.render.view.view import DefaultJinjaView

from pipelines import codes
from pipelines.config import VALIDATION_BATCH_ROWS
from pipelines.ingest.datadocs import make_offline, record_runs, write_run_index
from pipelines.ingest.kinds import BY_NAME
from pipelines.ingest.readers import STRUCTURAL_RULES, FileRejected, rule_message
from pipelines.rules.identity import IDENTITY_RULES


class _TemplateCache(jinja2.BytecodeCache):
    """GX's Data Docs views each make a jinja environment and compile every template again, which
    is most of the time an ingest spends on Data Docs; compiled templates are kept per process."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _TemplateCache()


def _cached_templates() -> None:
    if getattr(DefaultJinjaView, "_ppss_cached", False):
        return
    original = DefaultJinjaView.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self.env.bytecode_cache = _TEMPLATES

    DefaultJinjaView.__init__ = init
    DefaultJinjaView._ppss_cached = True


GX_SITE = ".gx-site"  # GX's own render of one ingest, inside the Data Docs folder while it is written


def _with_code_lists(doc: dict) -> dict:
    """A suite with each `"value_set": "codes:NAME"` replaced by that list of `pipelines.codes`,
    so the SS 12000 code lists live in one place with their source."""
    for exp in doc.get("expectations", []):
        ref = exp.get("kwargs", {}).get("value_set")
        if isinstance(ref, str) and ref.startswith("codes:"):
            exp["kwargs"]["value_set"] = list(getattr(codes, ref.removeprefix("codes:")))
    return doc


@dataclass(frozen=True)
class RowIssue:
    index: int  # position in the validated frame
    column: str
    rule: str
    message: str
    scope: str  # "row", or "enrolment" for a person's single enrolment


class Validator:
    """Holds one ephemeral GX context for a whole ingest; optionally renders Data Docs."""

    def __init__(self, expectations_dir: Path, docs_dir: Path | None = None) -> None:
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        # An ephemeral context comes with a docs site in a temporary folder that GX never removes:
        # every ingest would leave a second, world-readable copy of the Data Docs there.
        for site in list(self.context.list_data_docs_sites()):
            self.context.delete_data_docs_site(site)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            self.context.add_data_docs_site(
                "validation",
                {
                    "class_name": "SiteBuilder",
                    # GX rebuilds its site from this ingest's results alone, removing earlier pages:
                    # it renders beside the Data Docs, and build_docs moves the pages in.
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir / GX_SITE),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self.source = self.context.data_sources.add_pandas("frames")
        self.suites: dict[str, gx.ExpectationSuite] = {}
        self.batches: dict[str, object] = {}
        for path in sorted(Path(expectations_dir).glob("*.json")):
            doc = _with_code_lists(json.loads(path.read_text(encoding="utf-8")))
            self.suites[doc["name"]] = self.context.suites.add(gx.ExpectationSuite(**doc))
            asset = self.source.add_dataframe_asset(doc["name"])
            self.batches[doc["name"]] = asset.add_batch_definition_whole_dataframe("frame")
        self._runs = 0
        self._parts: dict[str, int] = {}  # batches validated per run prefix (file)
        self.seconds = 0.0  # time spent validating, for the ingest summary
        self.runs: list[dict] = []  # one entry per validated batch, for the offline index

    def validate(self, kind: str, frame: pl.DataFrame, label: str, run_prefix: str = "") -> list[RowIssue]:
        """Row issues for `frame`; FileRejected if a rule cannot even be evaluated. `run_prefix`
        names the runs of one file apart from other processes' (their results meet in Data Docs)."""
        started = time.perf_counter()
        try:
            return self._validate(kind, frame, label, run_prefix)
        finally:
            self.seconds += time.perf_counter() - started

    def take_results(self) -> tuple[list[dict], list[tuple]]:
        """The runs so far and their results with every value removed, taken out of this context
        (a worker hands them to the process that renders Data Docs)."""
        store = self.context.validation_results_store
        results = []
        for key in store.list_keys():
            result = store.get(key)
            _scrub(result)
            results.append((key, result))
            store.remove_key(key)
        runs, self.runs = self.runs, []
        return runs, results

    def add_results(self, runs: list[dict], results: list[tuple]) -> None:
        """Results of validations run elsewhere (by workers), for Data Docs."""
        store = self.context.validation_results_store
        for key, result in results:
            store.set(key, result)
        self.runs.extend(runs)
        self._runs += len(runs)

    def _validate(self, kind: str, frame: pl.DataFrame, label: str, run_prefix: str) -> list[RowIssue]:
        suite = self.suites[kind]
        part_loc = BY_NAME[kind].part_location if kind in BY_NAME else None
        issues: list[RowIssue] = []
        plain = frame.select([c for c, t in frame.schema.items() if not isinstance(t, pl.List)])
        plain = plain.with_row_index("_i")
        n_batches = max(1, -(-plain.height // VALIDATION_BATCH_ROWS))
        for b in range(n_batches):
            part = plain.slice(b * VALIDATION_BATCH_ROWS, VALIDATION_BATCH_ROWS).to_pandas()
            self._runs += 1
            if run_prefix:  # numbered within its file, so a file's runs are named alike wherever they ran
                self._parts[run_prefix] = self._parts.get(run_prefix, 0) + 1
                run = f"run-{run_prefix}-{self._parts[run_prefix]:04d}"
            else:
                run = f"run-{self._runs:05d}"
            name = label
            first, last = (int(part["_row"].iloc[0]), int(part["_row"].iloc[-1])) if len(part) else (0, -1)
            if n_batches > 1 or first > 0:  # a part of a large file: say which rows
                name = f"{label} (rows {first + 1:,}–{last + 1:,})"
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{self._runs:05d} {name}", data=self.batches[kind], suite=suite)
            )
            result = definition.run(
                batch_parameters={"dataframe": part},
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_i"]},
                run_id=RunIdentifier(run_name=run),
            )
            if run_prefix:  # a context that validates file after file keeps only their results
                self.context.validation_definitions.delete(definition.name)
            failed = [r for r in result.results if not r.success]
            first_issue = len(issues)
            self.runs.append(
                {
                    "run": run,
                    "suite": kind,
                    "label": name,
                    "rows": len(part),
                    "success": result.success,
                    "failed_rules": sorted(
                        {(r.expectation_config.meta or {}).get("rule", r.expectation_config.type) for r in failed}
                    ),
                    "checked_at": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
                    "check_unit_sv": BY_NAME[kind].check_unit if kind in BY_NAME else "",
                    "row_unit_sv": BY_NAME[kind].row_unit if kind in BY_NAME else "",
                }
            )
            for r in result.results:
                cfg = r.expectation_config
                meta = cfg.meta or {}
                if r.exception_info and r.exception_info.get("raised_exception"):
                    # GX's exception text can quote a value: name the rule and column only.
                    raise FileRejected(
                        "validation_error",
                        f"rule {meta.get('rule', cfg.type)} could not be checked on column "
                        f"{meta.get('column') or cfg.kwargs.get('column', '')}: its values are of an unexpected "
                        "type. Please report this to the maintainers of the pipeline",
                    )
                if r.success:
                    continue
                checked = cfg.kwargs.get("column") or cfg.kwargs.get("column_A") or ""
                column = meta.get("column") or checked  # the name the user knows from the raw file
                for hit in r.result.get("unexpected_index_list") or []:
                    rule, message, where = meta["rule"], f"{meta['message']}; {meta['action']}", column
                    if meta.get("rule_from_value") == "reader":
                        found = rule_message(str(hit.get(checked)))
                        if found:
                            rule, where, message = found
                    elif meta.get("rule_from_value"):
                        rule = str(hit.get(checked, rule))
                        message = f"{IDENTITY_RULES.get(rule, meta['message'])}; {meta['action']}"
                    issues.append(RowIssue(int(hit["_i"]), where, rule, message, meta.get("scope", "row")))
            # The same names and places as the quarantine table and `ppss status`: each issue's
            # rule as quarantined, and the file's own location (row, JSON or XML element path).
            self.runs[-1]["issues"] = [(i.rule, i.column, _location(plain, i, part_loc)) for i in issues[first_issue:]]
            if self.runs[-1]["issues"]:
                self.runs[-1]["failed_rules"] = sorted({r for r, _, _ in self.runs[-1]["issues"]})
            del part, result
            _release_memory()
        # A row whose cells could not be told apart is reported for that alone.
        unreadable = {(i.index, i.scope) for i in issues if i.rule in STRUCTURAL_RULES}
        return [i for i in issues if i.rule in STRUCTURAL_RULES or (i.index, i.scope) not in unreadable]

    def build_docs(self) -> Path | None:
        """Data Docs of this ingest's validations; kept as they were when nothing was validated."""
        if self.docs_dir is None:
            return None
        if self._runs == 0:
            index = self.docs_dir / "index.html"
            return index if index.exists() else None
        # Pages of earlier ingests stay: the index (datadocs.write_index) lists every delivery.
        _cached_templates()
        scrub_results(self.context)
        site = self.docs_dir / GX_SITE
        shutil.rmtree(site, ignore_errors=True)
        self.context.build_data_docs(site_names=["validation"])
        shutil.copytree(site, self.docs_dir, dirs_exist_ok=True)
        shutil.rmtree(site, ignore_errors=True)
        make_offline(self.docs_dir, self.runs)
        record_runs(self.docs_dir, self.runs)
        write_run_index(self.docs_dir, self.runs)
        return self.docs_dir / "index.html"


try:  # glibc: freed memory is kept for reuse unless trimmed
    _LIBC = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None


def _release_memory() -> None:
    """Hand the memory a batch's pandas copy and GX's work freed back to the system. glibc keeps
    it for reuse, so a worker's resident memory stayed at its high-water mark (1.5-1.7 GB per
    worker on a city, whose sum over the workers is the ingest's peak)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _location(frame: pl.DataFrame, issue: RowIssue, part_location: str | None) -> str:
    part = issue.scope != "row" and part_location is not None and part_location in frame.columns
    column = part_location if part else "_loc"
    if column not in frame.columns:
        return f"row {issue.index + 1}"
    value = frame[column][issue.index]
    return str(value) if value is not None else f"row {issue.index + 1}"


# Result fields that carry the failing values themselves: a personnummer typed into the wrong
# column would otherwise be printed in Data Docs. Counts and percentages stay; the locations are
# in the store's quarantine table and `ppss status`.
VALUE_FIELDS = (
    "unexpected_list",
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_index_list",
    "unexpected_index_query",
    "unexpected_rows",
    "observed_value",
    "details",
)


def scrub_results(context) -> None:
    """Remove every value-carrying field from the stored validation results before Data Docs render."""
    store = context.validation_results_store
    for key in store.list_keys():
        result = store.get(key)
        _scrub(result)
        store.set(key, result)


def _scrub(result) -> None:
    for r in result.results:
        for name in VALUE_FIELDS:
            r.result.pop(name, None)
