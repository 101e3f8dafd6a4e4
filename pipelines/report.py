"""The yearly report: papermill runs the follow-up notebook, nbconvert writes offline HTML.

Output in `<out>/<year>/`: the executed notebook, a self-contained HTML file without
code cells, and `tables/` (one CSV per published table, plus the suppression pattern).
Charts are inline SVG, so the page loads nothing from the network. A report on some
districts goes to `<out>/<year>/stadsdelar_<names>/` and starts from the full report's
suppression pattern, so it never reveals what the full report hides.
"""

from __future__ import annotations

import base64
import html as html_mod
import re
import unicodedata
from pathlib import Path

import papermill
from nbconvert import HTMLExporter

from .config import DEFAULT_ABSENCE_THRESHOLD, paths
from .disclosure import PATTERN_FILE
from .store import connect_readonly
from .suppress import check_min_cell

NOTEBOOK = "yearly_followup.ipynb"


class ReportRefused(RuntimeError):
    pass


def check_store(store: Path, allow_rejected: bool) -> None:
    try:
        con = connect_readonly(store)
    except FileNotFoundError as e:
        raise ReportRefused(str(e)) from None
    try:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        if "pupil_term_outcomes" not in tables:
            raise ReportRefused(f"{store} has no marts yet: run `ppss build` first")
        meta = dict(con.execute("select key, value from meta").fetchall())
        if meta.get("last_ingest_rejected") == "true" and not allow_rejected:
            rejected = [
                r[0]
                for r in con.execute(
                    "select path from load_log where status = 'rejected' and ingest_id = ?",
                    [int(meta.get("last_ingest_id", 0))],
                ).fetchall()
            ]
            raise ReportRefused(
                f"the latest load rejected {len(rejected) or 'a'} file(s) ({', '.join(rejected)}); "
                "correct them and run `ppss ingest` again, or pass --allow-rejected to report on what loaded"
            )
    finally:
        con.close()


_IMG_SVG = re.compile(r'<img alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"\s*/?>')


def _inline_svg(match: re.Match) -> str:
    """Charts inline as SVG: text stays selectable and searchable, with the chart title as label."""
    svg = base64.b64decode(match.group(1)).decode("utf-8")
    texts = re.findall(r"<text[^>]*>([^<]+)</text>", svg)
    label = next((t for t in texts if len(t) > 12), "Diagram")
    return f'<figure class="chart" role="img" aria-label="{html_mod.escape(label, quote=True)}">{svg}</figure>'


def export_html(notebook: Path, html_path: Path, title: str) -> Path:
    """HTML without code cells or prompts; no MathJax or require.js from a CDN."""
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        mathjax_url="",
        require_js_url="",
        language_code="sv",
    )
    body, _ = exporter.from_filename(str(notebook), resources={"metadata": {"name": title}})
    body = re.sub(r"<title>.*?</title>", f"<title>{html_mod.escape(title)}</title>", body, count=1, flags=re.S)
    # Empty src attributes left by mathjax_url="" and require_js_url="" would fetch the page itself.
    body = re.sub(r'<script src="">\s*</script>', "", body)
    body = _IMG_SVG.sub(_inline_svg, body)
    remote = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(https?:[^"]+)"', body)
    if remote:
        raise RuntimeError(f"the report would load {remote[0]} from the network; it must open offline")
    html_path.write_text(body, encoding="utf-8")
    return html_path


def subset_folder(districts: list[str]) -> str:
    names = "_".join(sorted(districts))
    ascii_ = unicodedata.normalize("NFKD", names).encode("ascii", "ignore").decode()
    return "stadsdelar_" + re.sub(r"[^a-z0-9_]+", "-", ascii_.lower()).strip("-")


def run_report(
    year: int,
    store: Path,
    out_dir: Path,
    min_cell: int = 10,
    allow_rejected: bool = False,
    districts: list[str] | None = None,
    absence_threshold: float = DEFAULT_ABSENCE_THRESHOLD,
) -> Path:
    check_min_cell(min_cell)
    store = Path(store).resolve()
    check_store(store, allow_rejected)
    target = Path(out_dir) / str(year)
    # What earlier reports published or hid stands: the full reports of other years, and for
    # a report on some districts the full report of the same year.
    priors = sorted(p for p in Path(out_dir).glob(f"*/tables/{PATTERN_FILE}") if p.parts[-3] != str(year))
    if districts:
        full = target / "tables" / PATTERN_FILE
        if not full.exists():
            raise ReportRefused(
                f"a report on some districts starts from the full {year} report's suppression pattern ({full}); "
                f"write the full report first: ppss report --year {year}"
            )
        priors.append(full)
        target = target / subset_folder(districts)
    tables = target / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for old in tables.glob("*.csv"):  # a table this run does not publish must not linger
        old.unlink()
    executed = target / f"uppfoljning_{year}.ipynb"
    try:
        papermill.execute_notebook(
            str(paths().notebooks / NOTEBOOK),
            str(executed),
            parameters={
                "year": year,
                "store": str(store),
                "min_cell": min_cell,
                "districts": districts,
                "absence_threshold": absence_threshold,
                "tables_dir": str(tables),
                "prior_patterns": [str(p) for p in priors],
                "out_dir": str(target),
            },
            progress_bar=False,
            cwd=str(paths().notebooks),
        )
    except papermill.PapermillExecutionError as e:
        if e.ename == "DisclosureError":  # nothing is published: no HTML, no tables
            executed.unlink(missing_ok=True)
            for old in tables.glob("*"):
                old.unlink()
            raise ReportRefused(f"disclosure control: {e.evalue}") from None
        raise
    return export_html(executed, target / f"uppfoljning_{year}.html", f"Uppföljning av PPSS {year}")
