"""The yearly report: papermill runs the follow-up notebook, nbconvert writes offline HTML.

Output in `<out>/<year>/`: the executed notebook, a self-contained HTML file without
code cells, the same page as PDF for print (`uppfoljning_<year>.pdf`, through headless
Chromium), and `tables/` (one CSV per published table).
Each chart is a static SVG (what prints) and a Vega-Lite spec that the page's one embedded
Vega bundle draws with tooltips; the page loads nothing from the network. A report on some
districts goes to `<out>/<year>/stadsdelar_<names>/`. Every report is audited together with
every earlier publication of the store (its ledger, `<store>.ledger/`), wherever written.

The store's coverage is checked first: a year without data is refused with the years that
can be reported. The kernel runs over IPC sockets (no TCP port, so no unencrypted traffic).
"""

from __future__ import annotations

import html as html_mod
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

import papermill
import yaml
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from nbconvert import HTMLExporter
from traitlets import default

from pipelines.analysis.suppress import DEFAULT_MIN_CELL, check_min_cell
from pipelines.config import DEFAULT_ABSENCE_THRESHOLD, PACKAGE_DIR, paths
from pipelines.labels import report_title
from pipelines.report import overview
from pipelines.report.overview import same_state
from pipelines.report.provenance import refusal, store_coverage
from pipelines.store import connect_readonly

# The kernel computes the report. This process only checks the store, runs the kernel and
# writes HTML and PDF, so the analysis and chart modules (scipy, statsmodels, altair) are
# imported where a function needs a name of theirs, not when the CLI starts.

NOTEBOOK = "yearly_followup.ipynb"


class ReportRefused(RuntimeError):
    pass


class IPCKernelManager(AsyncKernelManager):
    """The report's kernel talks over local IPC sockets: no TCP port is opened, so nothing
    travels unencrypted and the kernel does not warn about it.

    The sockets and the connection file sit in a temporary folder of this kernel's own, removed
    when the kernel is cleaned up. jupyter_client's default for IPC without a connection file is
    `kernel-ipc-1` to `-5` in the working directory (papermill's `cwd`: notebooks/), so kernels of
    reports running at the same time bound the same paths and received each other's messages
    (kernels logging "Invalid Signature", a kernel that never answered, errors at shutdown)."""

    def __init__(self, **kwargs) -> None:
        # Short (a socket path has at most 107 bytes) and private to this kernel.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="ppss-kernel-", dir=_short_temp_dir()))
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", str(self._socket_dir / "kernel.json"))
        kwargs.setdefault("ip", str(self._socket_dir / "kernel-ipc"))
        super().__init__(**kwargs)
        IPCKernelManager._made.add(self)

    _made: ClassVar[weakref.WeakSet[IPCKernelManager]] = weakref.WeakSet()

    @classmethod
    def close_all(cls) -> None:
        """Every kernel's context closed once its report is done (reports run one at a time)."""
        for km in list(cls._made):
            km.close_context()
        cls._made.clear()

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        """A context of this kernel's own whose sockets never linger. With the default (wait
        forever for undelivered messages), a socket left with a message for a kernel that had
        gone made the context's `term()` block; when the garbage collector met that context
        later, in whatever the process was doing then, the process hung for good."""
        self._created_context = True
        ctx = zmq.asyncio.Context()
        ctx.linger = 0
        return ctx

    def close_context(self) -> None:
        """Closes the context and its sockets now (nbclient leaves them open when it never got
        to clean the kernel up, e.g. after a failed start)."""
        if self._created_context and not self.context.closed:
            self.context.destroy(linger=0)
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def _async_interrupt_kernel(self) -> None:
        """No interrupt on the way to shutdown. jupyter_client sends SIGINT before every shutdown
        request; the report's kernel is idle by then, and the signal landed wherever the kernel
        was: under load inside a message handler ("KeyboardInterrupt caught in kernel") or its own
        shutdown (pending asyncio tasks destroyed, "--- Logging error --- ... I/O operation on
        closed file"), printed on the report's stderr after a successful run."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        """The kernel's own stderr goes to a file beside its sockets, not to the report's: a
        cell's error reaches papermill as a message (and fails the report), while the kernel
        process still wrote asyncio's shutdown noise ("Task was destroyed but it is pending",
        "--- Logging error ---") now and then under load."""
        self._stderr = (self._socket_dir / "kernel-stderr.log").open("wb")
        kw["stderr"] = self._stderr
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            if getattr(self, "_stderr", None) is not None:
                self._stderr.close()
            shutil.rmtree(self._socket_dir, ignore_errors=True)


def _short_temp_dir() -> str | None:
    """The temporary folder, or /tmp where its path is too long for the kernel's socket paths
    (`<dir>/ppss-kernel-xxxxxxxx/kernel-ipc-5` must stay under 107 bytes)."""
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) <= 60 or not os.access("/tmp", os.W_OK):
        return None
    return "/tmp"


def district_names(con) -> list[str]:
    return [r[0] for r in con.execute("select distinct district from programme_enrolments order by 1").fetchall()]


def check_store(store: Path, allow_rejected: bool, year: int | None = None, districts: list[str] | None = None) -> None:
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
                    "select path from load_log where status = 'rejected' order by path"  # as `ppss status` lists
                ).fetchall()
            ]
            raise ReportRefused(
                f"the latest load rejected {len(rejected) or 'a'} file(s) ({', '.join(rejected)}); "
                "correct them and run `ppss ingest` again, or pass --allow-rejected to report on what loaded"
            )
        if year is not None and (why := refusal(store_coverage(con), year)):
            raise ReportRefused(why)
        if districts:
            valid = district_names(con)
            unknown = [d for d in districts if d not in valid]
            if unknown:
                raise ReportRefused(
                    f"unknown district {', '.join(repr(d) for d in unknown)}; the districts in the store are: "
                    + ", ".join(valid)
                )
    finally:
        con.close()


# Drawn once the bundle has loaded: each figure's spec becomes a live chart with tooltips; the
# static SVG stays for print (and for readers without scripts). On a narrow screen (a phone) a
# chart of one view fits the screen's width with its text at full size, instead of the whole
# drawing shrinking (text about 5 px at 390 px), and its title lines are wrapped; a faceted
# chart or a heatmap keeps its size and scrolls sideways inside its figure (report.css).
_LIVE = """
const locale = %s;
// Vega never wraps a title: on a screen narrower than the drawing its lines are wrapped here.
function wrap(lines, chars) {
  const out = [];
  for (const line of [].concat(lines || [])) {
    let cur = "";
    for (const word of String(line).split(" ")) {
      if (cur && (cur + " " + word).length > chars) { out.push(cur); cur = word; }
      else { cur = cur ? cur + " " + word : word; }
    }
    if (cur) out.push(cur);
  }
  return out;
}
for (const fig of document.querySelectorAll("figure.chart")) {
  const spec = JSON.parse(fig.querySelector("script.%s").textContent);
  const live = fig.querySelector(".chart-live");
  const drawn = fig.querySelector(".chart-static svg");
  live.style.display = "block";  // measured (and for "container") before the chart is drawn
  const room = live.clientWidth;
  const narrow = drawn && room < Number(drawn.getAttribute("width"));
  for (const part of narrow ? [spec, ...(spec.layer || [])] : []) {  // a layered chart's title is on its layers
    if (!part.title) continue;
    const title = typeof part.title === "string" ? {text: part.title} : {...part.title};
    title.text = wrap(title.text, Math.floor(room / 8.5));
    if (title.subtitle) title.subtitle = wrap(title.subtitle, Math.floor(room / 6.5));
    part.title = title;
  }
  // Long row labels (the baseline chart's measures) leave the plot at least half the room;
  // a cut label is whole in the tooltip and in the table beside the chart.
  for (const part of narrow ? [spec, ...(spec.layer || [])] : []) {
    const axis = part.encoding && part.encoding.y && part.encoding.y.axis;
    if (axis && axis.labelLimit > room * 0.4) axis.labelLimit = Math.floor(room * 0.4);
  }
  // A chart with a discrete x axis (a heatmap's columns) keeps the width of its steps.
  const x = (spec.encoding || (spec.layer && spec.layer[0].encoding) || {}).x;
  const stepped = x && (x.type === "nominal" || x.type === "ordinal");
  if (typeof spec.width === "number" && drawn && !stepped) {
    live.style.maxWidth = drawn.getAttribute("width") + "px";  // never wider than in print
    spec.width = "container";
    spec.autosize = {type: "fit-x", contains: "padding"};
  }
  window.vegaEmbed(live, spec, {renderer: "svg", actions: false, formatLocale: locale}).then(() => {
    live.style.display = "";
    fig.classList.add("is-live");
    live.removeAttribute("aria-hidden");
    const svg = live.querySelector("svg");  // the chart's accessible name is its title
    if (svg) { svg.setAttribute("role", "img"); svg.setAttribute("aria-label", fig.getAttribute("aria-label")); }
    fig.querySelector(".chart-static").setAttribute("aria-hidden", "true");
  }).catch((err) => { live.style.display = ""; console.error("chart", err); });
}
"""


def _style() -> str:
    return (PACKAGE_DIR / "static" / "report.css").read_text(encoding="utf-8")


_BUNDLE = "import sys, vl_convert; sys.stdout.buffer.write(vl_convert.javascript_bundle().encode('utf-8'))"


@dataclass
class VegaBundle:
    """A bundle being built: the process and the temporary file it writes to."""

    proc: subprocess.Popen
    out: IO[bytes]


def start_vega_bundle() -> VegaBundle:
    """Start building the page's Vega bundle in a process of its own. vl-convert takes seconds
    to bundle it (on its first call in a process) and holds the GIL meanwhile, so `run_report`
    starts it before the kernel runs and collects it for the HTML (`vega_bundle`). It writes
    to a temporary file, not a pipe: the process then ends when the bundle is built instead
    of holding its memory, blocked on a full pipe, until the report collects it."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `vega_bundle`)
    return VegaBundle(subprocess.Popen([sys.executable, "-c", _BUNDLE], stdout=out), out)


def vega_bundle(started: VegaBundle | None = None) -> str:
    """The bundle from a `start_vega_bundle` process, or built here (also if that process failed)."""
    if started is not None:
        with started.out as out:
            started.proc.wait()
            out.seek(0)
            text = out.read()
        if started.proc.returncode == 0 and text:
            return text.decode("utf-8")
    import vl_convert

    return vl_convert.javascript_bundle()


def _page_scripts(bundle: VegaBundle | None = None) -> str:
    """One Vega bundle for the whole page (from vl-convert-python, no network), then the charts."""
    from pipelines.report.charts import SPEC_CLASS, format_locale

    bundle = vega_bundle(bundle)
    live = _LIVE % (json.dumps(format_locale()), SPEC_CLASS)
    return f'<script type="module">{bundle}</script>\n<script type="module">{live}</script>'


def export_html(notebook: Path, html_path: Path, title: str, bundle: VegaBundle | None = None) -> Path:
    """HTML without code cells or prompts; no MathJax or require.js from a CDN. `bundle`: the
    Vega bundle's process, if one was started (`start_vega_bundle`)."""
    from pipelines.report.charts import SPEC_CLASS

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
    head = f"<style>{_style()}</style>"
    if f'class="{SPEC_CLASS}"' in body:
        head += _page_scripts(bundle)
    body = body.replace("</head>", head + "\n</head>", 1)
    remote = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(https?:[^"]+)"', body)
    if remote:
        raise RuntimeError(f"the report would load {remote[0]} from the network; it must open offline")
    html_path.write_text(body, encoding="utf-8")
    return html_path


def notebook_sections(notebook: Path) -> dict[str, str]:
    """Each code cell's step, by cell id (which papermill keeps; the parameters it injects
    belong to no step): a cell `sections.show("<name>", …)` is that section, named by its
    module's TITLE (read from the source: this process does not import the analysis), the
    cells computing and protecting the figures are steps of their own."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    folder = PACKAGE_DIR / "report" / "sections"
    step, out = "kernel started", {}
    for cell in nb.cells:
        if cell.cell_type != "code" or "id" not in cell:
            continue
        if m := re.search(r'sections\.show\("(\w+)"', cell.source):
            module = folder / f"{m.group(1)}.py"
            title = re.search(r'^TITLE = "(.*)"', module.read_text(encoding="utf-8"), re.M) if module.exists() else None
            step = title.group(1) if title and title.group(1) else "titelsida, sammanfattning och innehåll"
        elif "register_all" in cell.source:
            step = "alla avsnitts siffror beräknas"
        elif ".protect()" in cell.source:
            step = "röjandekontroll"
        out[cell["id"]] = step
    return out


class Progress:
    """What `ppss report` shows while the kernel works: each section of the notebook as its
    first cell starts (the notebook's own headings), then the HTML and the PDF, each with the
    seconds since the report started."""

    def __init__(self, notebook: Path, say: Callable[[str], None], prefix: str) -> None:
        self.sections, self.say, self.prefix = notebook_sections(notebook), say, prefix
        self.start, self.current = time.perf_counter(), ""

    def step(self, what: str) -> None:
        self.say(f"{self.prefix}{time.perf_counter() - self.start:6.1f} s  {what}")

    def on_cell_start(self, cell, cell_index: int) -> None:  # nbclient's hook (keywords)
        section = self.sections.get(cell.get("id", ""), "")
        if section and section != self.current:
            self.current = section
            self.step(section)


def subset_folder(districts: list[str]) -> str:
    names = "_".join(sorted(districts))
    ascii_ = unicodedata.normalize("NFKD", names).encode("ascii", "ignore").decode()
    return "stadsdelar_" + re.sub(r"[^a-z0-9_]+", "-", ascii_.lower()).strip("-")


def run_report(
    year: int,
    store: Path,
    out_dir: Path,
    min_cell: int = DEFAULT_MIN_CELL,
    allow_rejected: bool = False,
    districts: list[str] | None = None,
    absence_threshold: float = DEFAULT_ABSENCE_THRESHOLD,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write the report (see the module's docstring). `progress`: called with a line of text as
    each section of the notebook starts, and for the HTML and the PDF (None: nothing shown)."""
    check_min_cell(min_cell)
    store = Path(store).resolve()
    check_store(store, allow_rejected, year, districts)
    state = report_state(store, year, min_cell, districts, absence_threshold)
    # What earlier publications of the store published or hid stands: the notebook audits
    # against the store's ledger (pipelines.analysis.ledger), wherever they were written.
    target = Path(out_dir) / str(year)
    if districts:
        target = target / subset_folder(districts)
    tables = target / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for old in [*tables.glob("*.csv"), *(target / "data").glob("*")]:  # nothing this run does not publish lingers
        old.unlink()
    (target / overview.STATE_FILE).unlink(missing_ok=True)  # written again once the report is whole
    executed = target / f"uppfoljning_{year}.ipynb"
    source = paths().notebooks / NOTEBOOK
    shown = Progress(source, progress or (lambda _: None), f"report {year}: ")
    shown.step("starting the kernel")
    bundle = start_vega_bundle()  # built meanwhile, on the core the kernel leaves free
    try:
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters={
                    "year": year,
                    "store": str(store),
                    "min_cell": min_cell,
                    "districts": districts,
                    "absence_threshold": absence_threshold,
                    "tables_dir": str(tables),
                    "out_dir": str(target),
                },
                progress_bar=False,
                cwd=str(paths().notebooks),
                kernel_manager_class=IPCKernelManager,
                on_cell_start=shown.on_cell_start,
            )
        except papermill.PapermillExecutionError as e:
            if e.ename == "DisclosureError":  # nothing is published: no HTML, no tables
                executed.unlink(missing_ok=True)
                shutil.rmtree(tables, ignore_errors=True)
                shutil.rmtree(target / "data", ignore_errors=True)
                if target.exists() and not any(target.iterdir()):
                    target.rmdir()
                raise ReportRefused(
                    f"disclosure control: {e.evalue}. What was published from this store before is listed by "
                    "`ppss ledger`; a draft that never left the building can be forgotten with "
                    "`ppss ledger --remove ID`, or publish at a higher --min-cell or for more districts"
                ) from None
            raise
        shown.step("writing the HTML page")
        html = export_html(executed, target / f"uppfoljning_{year}.html", report_title(year, districts), bundle)
    finally:
        IPCKernelManager.close_all()
        if bundle.proc.poll() is None:  # not collected (the run failed, or was interrupted while collecting)
            bundle.proc.kill()
            bundle.proc.wait()
        bundle.out.close()
    shown.step("printing the PDF")
    write_pdf(html, target / f"uppfoljning_{year}.pdf")
    overview.write_state(target, state)
    overview.write_overview(Path(out_dir))
    return html


def report_state(store: Path, year: int, min_cell: int, districts: list[str] | None, absence_threshold: float) -> dict:
    return overview.state(
        store,
        year=year,
        min_cell=min_cell,
        districts=sorted(districts) if districts else None,
        absence_threshold=absence_threshold,
    )


def chromium_path() -> str | None:
    """Debian's chromium (or $PPSS_CHROMIUM): Playwright drives it; nothing is downloaded."""
    return os.environ.get("PPSS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


_FOOTER = (
    '<div style="font-size:8px;width:100%;padding:0 14mm;color:#555;display:flex;justify-content:space-between">'
    '<span class="title"></span><span>Sida <span class="pageNumber"></span> av <span class="totalPages"></span></span>'
    "</div>"
)


def write_pdf(html: Path, pdf: Path) -> Path | None:
    """The same page printed to A4 by headless Chromium (print stylesheet, page numbers)."""
    exe = chromium_path()
    if exe is None:
        pdf.unlink(missing_ok=True)  # never a PDF of an older run beside a new HTML
        print(
            f"note: {pdf.name} not written: chromium is not installed "
            "(apt-get install chromium, or set PPSS_CHROMIUM to a Chromium executable)",
            file=sys.stderr,
        )
        return None
    # In a thread of its own: Playwright's sync API must not share a thread (and its event
    # loop) with a caller that already drives a browser or a notebook kernel.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print_pdf, exe, html, pdf).result()


def _print_pdf(exe: str, html: Path, pdf: Path) -> Path:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(html.as_uri(), wait_until="load")
            page.emulate_media(media="print")
            page.pdf(
                path=str(pdf),
                format="A4",
                print_background=True,
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=_FOOTER,
                margin={"top": "14mm", "bottom": "18mm", "left": "14mm", "right": "14mm"},
                tagged=True,  # an accessible PDF: structure tags from the page, its language and title
                outline=True,  # bookmarks from the headings
            )
        finally:
            browser.close()
    return pdf


# --- parameter sets (notebooks/params/*.yaml) and the index page ----------------------------
PARAM_KEYS = {"title", "year", "districts", "min_cell", "absence_threshold"}


@dataclass(frozen=True)
class ParamSet:
    """One report to build: a YAML file in notebooks/params/ (the file's stem names the set)."""

    name: str
    title: str
    year: int
    districts: tuple[str, ...] = ()
    min_cell: int = DEFAULT_MIN_CELL
    absence_threshold: float = DEFAULT_ABSENCE_THRESHOLD


def params_dir() -> Path:
    """The version-controlled parameter sets: part of the code, always the repository's."""
    return paths().notebooks / "params"  # parameters of the yearly notebook: code, not output


def load_params(folder: Path) -> list[ParamSet]:
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ReportRefused(f"no parameter sets (*.yaml) in {folder}")
    sets = []
    for f in files:
        try:
            raw = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ReportRefused(f"{f.name}: not valid YAML ({str(e).splitlines()[0]})") from None
        unknown = set(raw) - PARAM_KEYS
        if unknown or "year" not in raw or not isinstance(raw.get("year"), int):
            raise ReportRefused(
                f"{f.name}: a parameter set has an integer `year` and may have "
                + ", ".join(sorted(PARAM_KEYS - {"year"}))
                + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else "")
            )
        districts = raw.get("districts") or []
        if isinstance(districts, str):
            districts = [districts]
        sets.append(
            ParamSet(
                name=f.stem,
                title=str(raw.get("title") or report_title(raw["year"], districts)),
                year=raw["year"],
                districts=tuple(str(d) for d in districts),
                min_cell=int(raw.get("min_cell", DEFAULT_MIN_CELL)),
                absence_threshold=float(raw.get("absence_threshold", DEFAULT_ABSENCE_THRESHOLD)),
            )
        )
    return sets


def run_param_sets(sets: list[ParamSet], store: Path, out_dir: Path, allow_rejected: bool = False, log=print) -> Path:
    """Every set (each audited with every earlier publication of the store), then the overview
    `<out>/index.html`. A report already written from the same store state with the same
    parameters is reused, not computed again."""
    store = Path(store).resolve()
    for s in sorted(sets, key=lambda s: (s.year, bool(s.districts))):
        districts = list(s.districts) or None
        target = Path(out_dir) / str(s.year) / (subset_folder(districts) if districts else "")
        if same_state(target, report_state(store, s.year, s.min_cell, districts, s.absence_threshold)):
            log(f"report {s.name}: {s.title} (reused: written from the same store state)")
            continue
        log(f"report {s.name}: {s.title}")
        run_report(
            s.year,
            store,
            out_dir,
            min_cell=s.min_cell,
            allow_rejected=allow_rejected,
            districts=districts,
            absence_threshold=s.absence_threshold,
            progress=log,
        )
    return overview.write_overview(Path(out_dir))
