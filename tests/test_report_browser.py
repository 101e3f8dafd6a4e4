"""The report and the notebooks as readers use them, in a real browser: Chromium (Debian's,
driven by Playwright) hovers charts in the report and in JupyterLab, prints the PDF's page
width, and opens Data Docs. One demo run and one browser serve every test here."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.config import paths
from pipelines.report import charts as report_charts

from .chart_specs import facet_cells, fields, label_fields, report_specs
from .conftest import E2E_YEAR

pytestmark = pytest.mark.e2e
A4_CONTENT_PX = round((210 - 2 * 14) / 25.4 * 96)  # A4 less the 14 mm side margins, in CSS pixels


@pytest.fixture(scope="module")
def partial_year(run):
    """The report for the demo's last year, which the data cover only to 2017-06-30."""
    assert main(["report", "--year", "2017", "--store", str(run["store"]), "--out", str(run["out"])]) == 0
    return run["out"] / "2017"


def _notebook_noise(executed: Path) -> list[str]:
    nb = json.loads(executed.read_text(encoding="utf-8"))
    noise = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            if out.get("output_type") == "error" or out.get("name") == "stderr" or re.search(r"\w+Warning\b", text):
                noise.append(text[:200] or out.get("ename", ""))
    return noise


def test_report_refuses_a_year_without_data(run, capsys) -> None:
    assert main(["report", "--year", "2030", "--store", str(run["store"]), "--out", str(run["out"])]) == 1
    err = capsys.readouterr().err
    assert "no data for 2030" in err and "years that can be reported: 2013–2017" in err
    assert not (run["out"] / "2030").exists()


def test_unknown_district_is_an_error_listing_the_valid_ones(run, capsys) -> None:
    args = ["report", "--year", E2E_YEAR, "--store", str(run["store"]), "--out", str(run["out"])]
    assert main([*args, "--district", "Farsta", "--district", "Farstaa"]) == 1
    err = capsys.readouterr().err
    assert "unknown district 'Farstaa'" in err and "Skarpnäck" in err and "Farsta," in err


def test_partial_year_has_a_banner_and_nothing_after_it(partial_year) -> None:
    html = (partial_year / "uppfoljning_2017.html").read_text(encoding="utf-8")
    assert "närvaro finns till och med 2017-06-30" in html
    assert "frånvaro under vårterminen 2017 (till och med 2017-06-30)" in html
    assert "höstterminen 2017" not in html
    html_2016 = (partial_year.parent / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html").read_text(encoding="utf-8")
    assert "ofullständiga" not in html_2016
    assert "januari–juli 2016" in html_2016
    for folder in (partial_year, partial_year.parent / E2E_YEAR):
        assert not _notebook_noise(next(folder.glob("uppfoljning_*.ipynb")))


def test_report_first_page_records_provenance_without_paths(run) -> None:
    html = (run["out"] / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html").read_text(encoding="utf-8")
    assert "Rapporten framställd" in html and "Kontrollsumma" in html
    checksums = [
        c
        for (c,) in duckdb.connect(str(run["store"]), read_only=True)
        .execute("select checksum from load_log where status = 'loaded'")
        .fetchall()
    ]
    assert checksums and all(c.split(":")[-1][:12] in html for c in checksums)
    assert str(run["raw"]) not in html and "pipelines/" not in html


def test_report_charts_have_tooltips_one_bundle_and_titles(run, browser) -> None:
    html = run["out"] / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html"
    text = html.read_text(encoding="utf-8")
    assert text.count("window.vegaEmbed=") == 1, "one Vega bundle for the whole page"
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    try:
        page.goto(html.as_uri())
        n_charts = page.locator("figure.chart").count()
        assert n_charts >= 4  # the tiny store: the rest are hidden whole (a note, not a chart)
        page.wait_for_function(
            f"document.querySelectorAll('figure.chart.is-live').length == {n_charts}", timeout=60_000
        )
        figures = page.locator("figure.chart")
        titles = figures.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
        assert {"Frånvaro före och efter inskrivning", "Behörighet till gymnasiet efter årskurs 9"} <= set(titles)
        for fig_title in titles:  # each chart's accessible name is its title, on screen as in print
            fig = page.locator(f'figure.chart[aria-label="{fig_title}"]').first
            assert fig.locator(".chart-live svg").first.get_attribute("aria-label") == fig_title
            assert fig.locator(".chart-static").get_attribute("aria-label") == fig_title
        # a chart with nothing left to draw says so in Swedish, never an empty frame
        for empty in page.locator("p.chart-empty").all_inner_texts():
            assert "döljs av röjandekontrollen" in empty or "inga uppgifter" in empty
        chart = 'figure.chart[aria-label="Frånvaro före och efter inskrivning"]'
        points = page.locator(f"{chart} .chart-live .mark-symbol.role-mark path")  # data, not legend
        assert points.count() >= 2  # the tiny store hides most months; the rest carry tooltips
        points.nth(points.count() // 2).hover(force=True)
        tip = page.locator("#vg-tooltip-element.visible")
        tip.wait_for(timeout=5_000)
        assert "Månad" in tip.inner_text() and "Frånvaro" in tip.inner_text()
        page.screenshot(path=str(html.parent / "hover.png"))
        assert not errors, errors
    finally:
        page.close()


def test_eligibility_points_stay_under_their_own_headers_when_cells_are_hidden(run, browser) -> None:
    """The tiny demo hides most of the eligibility chart: its live chart (and its static one)
    drew "Behörig till yrkesprogram, Samtliga" in the row of "Behörig till NA, TE", because
    Vega's facet grid fills its slots with the cells it has. Every cell keeps its slot now;
    a hidden figure is said to be hidden, and a drawn one sits under its own headers."""
    html = run["out"] / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html"
    title = "Behörighet till gymnasiet efter årskurs 9"
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(html.as_uri())
        fig = page.locator(f'figure.chart[aria-label="{title}"]')
        fig.locator(".chart-live svg").wait_for(timeout=60_000)
        drawings = {
            "live": fig.locator(".chart-live svg").first.evaluate("s => s.outerHTML"),
            "static": fig.locator(".chart-static svg").first.evaluate("s => s.outerHTML"),
        }
    finally:
        page.close()
    spec = next(s for s in report_specs(html.read_text(encoding="utf-8")) if s.get("description") == title)
    data = [r for values in spec["datasets"].values() for r in values]
    n_hidden = sum(bool(r.get("share__hidden")) for r in data)
    assert len(data) == 24 and 0 < n_hidden < 24, "the tiny store hides some of the chart's figures, not all"
    for kind, svg in drawings.items():
        cells = facet_cells(svg)
        assert len(cells) == 12, f"{kind}: a cell for each of 4 measures and 3 genders"
        items = [(c, label_fields(i["label"])) for c in cells for i in c["items"]]
        placed = [(c["row"], c["column"], f["Mått"], f["Kön"]) for c, f in items if "Mått" in f]
        assert placed and all(row == m and column == g for row, column, m, g in placed), (kind, placed)
        said = [f for _, f in items if f.get("Andel") == "döljs av röjandekontrollen"]
        assert len(said) == n_hidden, f"{kind}: each hidden figure is said to be hidden, once"


# Each drawn item of every mark (a bar, a point, a cap, a number label, a band, a reference
# line) gets the pointer event Vega listens to, at its centre; what the tooltip then shows is
# read back. The event goes to the item itself, so a mark under another one (a bar under its
# error bar, a cell under its number label) is tried too. Line paths are left out: a line's
# tooltip needs the pointer on a vertex, where its point lies on top and carries the figures.
_HOVER_EVERY_MARK = """() => {
  const out = [];
  const tip = () => document.getElementById("vg-tooltip-element");
  for (const fig of document.querySelectorAll("figure.chart")) {
    const items = fig.querySelectorAll(".chart-live g.role-mark:not(.mark-line) > *");
    for (const [i, el] of items.entries()) {
      if (tip()) { tip().classList.remove("visible"); tip().innerHTML = ""; }
      const r = el.getBoundingClientRect();
      el.dispatchEvent(new PointerEvent("pointermove",
        {bubbles: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2}));
      const t = tip();
      const shown = !!t && t.classList.contains("visible") && t.textContent.trim() !== "";
      out.push({chart: fig.getAttribute("aria-label"), mark: el.parentNode.getAttribute("class"), item: i,
        pairs: shown ? [...t.querySelectorAll("tr")].map(tr =>
          [tr.querySelector(".key")?.textContent ?? "", tr.querySelector(".value")?.textContent ?? ""]) : null,
        text: shown ? t.textContent : null});
    }
  }
  return out;
}"""
SHARE_KEYS = ("Andel", "Frånvaro", "konfidensintervall", "till")


def _tooltip_faults(tip: dict, raw_names: set[str]) -> list[str]:
    """What is wrong with one tooltip as a reader sees it (nothing: an empty list)."""
    if tip["text"] is None:
        return ["no tooltip"]
    faults = []
    pairs = tip["pairs"] or [("", tip["text"])]
    # shares are percentages, except in a tooltip of changes in procentenheter
    shares = not any("procentenheter" in k for k, _ in pairs)
    for k, v in pairs:
        if k and k.strip() in raw_names:
            faults.append(f"raw column name {k!r}")
        if re.search(r"\d[.,]\d{3,}", v) or re.search(r"\d\.\d", v):
            faults.append(f"unformatted number {v!r}")
        if re.fullmatch(r"0,\d+", v.strip()):
            faults.append(f"a share as a fraction {v!r}")
        if re.search(r"\b(null|NaN|undefined|true|false)\b", v):
            faults.append(f"raw value {v!r}")
        if shares and k.startswith(SHARE_KEYS) and re.search(r"\d", v) and "%" not in v:
            faults.append(f"{k}: {v!r} is not a percentage")
    return faults


def test_every_mark_of_every_chart_has_a_formatted_tooltip(run, browser) -> None:
    html = run["out"] / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html"
    specs = report_specs(html.read_text(encoding="utf-8"))
    raw_names = set().union(*(fields(s) for s in specs))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console: list[str] = []  # Vega-Lite's warnings (say a legend conflict) go to the console
    page.on("console", lambda m: console.append(m.text) if m.type in ("warning", "error") else None)
    try:
        page.goto(html.as_uri())
        n_charts = page.locator("figure.chart").count()
        assert n_charts == len(specs) >= 4
        page.wait_for_function(
            f"document.querySelectorAll('figure.chart.is-live').length == {n_charts}", timeout=60_000
        )
        tips = page.evaluate(_HOVER_EVERY_MARK)
        charts = {t["chart"] for t in tips}
        assert len(charts) == n_charts, "every chart has marks to hover"
        kinds = {t["mark"].split()[0] for t in tips}
        # the tiny store hides the charts with number labels whole; every mark that is drawn is hovered
        assert {"mark-rect", "mark-symbol", "mark-rule", "mark-area"} <= kinds
        faults = [
            f"{t['chart']} / {t['mark']} #{t['item']}: {f} ({t['text']!r})"
            for t in tips
            for f in _tooltip_faults(t, raw_names)
        ]
        assert not faults, f"{len(faults)} of {len(tips)} marks: " + "\n".join(faults[:15])
        assert not console, console
    finally:
        page.close()


def test_charts_with_hidden_figures_draw_no_value_of_them_and_every_mark_has_a_tooltip(browser, tmp_path) -> None:
    """Every chart whose figures can be hidden, drawn live with some of them hidden (the tiny
    demo hides these charts whole or not at all): Vega-Lite warns of nothing, each drawn mark
    has a formatted tooltip, and no mark, tooltip or label shows a hidden figure: where one is
    hidden, the chart says so."""
    from pipelines.report.render import _page_scripts

    from .test_charts import hidden_chart_examples

    examples = hidden_chart_examples()
    body = "".join(report_charts.report_mimebundle(c.to_dict())["text/html"] for c in examples.values())
    page_file = tmp_path / "hidden.html"
    page_file.write_text(f"<!doctype html><html><body>{body}{_page_scripts()}</body></html>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("warning", "error") else None)
    try:
        page.goto(page_file.as_uri())
        page.wait_for_function(
            f"document.querySelectorAll('figure.chart.is-live').length == {len(examples)}", timeout=60_000
        )
        tips = page.evaluate(_HOVER_EVERY_MARK)
        texts = page.locator("figure.chart .chart-live svg").evaluate_all("ss => ss.map(s => s.textContent)")
    finally:
        page.close()
    assert not console, console
    assert {t["chart"] for t in tips} == set(examples)
    faults = [
        f"{t['chart']} / {t['mark']} #{t['item']}: {f} ({t['text']!r})" for t in tips for f in _tooltip_faults(t, set())
    ]
    assert not faults, "\n".join(faults[:15])
    # each chart says that something is hidden: at its place (`..` or words, with a tooltip) or,
    # where a line breaks or a district's year is left out, in the subtitle
    said = {t["chart"] for t in tips if "döljs av röjandekontrollen" in (t["text"] or "")}
    assert said >= {"Behörighet till gymnasiet efter årskurs 9", "Elever med hög frånvaro", "Insatser per stadsdel"}
    assert all("röjandekontrollen" in text for text in texts)
    assert not [t for t in texts if re.search(r"\b(null|NaN|undefined)\b", t)]


def test_charts_are_readable_on_a_phone(run, browser) -> None:
    """At 390 px the page does not scroll sideways and no chart text is drawn smaller than
    9 px (a chart scaled down to the screen drew its labels at about 5 px)."""
    html = run["out"] / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html"
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        page.goto(html.as_uri())
        n_charts = page.locator("figure.chart").count()
        page.wait_for_function(
            f"document.querySelectorAll('figure.chart.is-live').length == {n_charts}", timeout=60_000
        )
        sizes = page.locator("figure.chart .chart-live svg").evaluate_all(
            """svgs => svgs.map(svg => {
                const scale = svg.getBoundingClientRect().width / svg.width.baseVal.value;
                const px = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim())
                    .map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
                return [svg.getAttribute("aria-label"), Math.min(...px)];
            })"""
        )
        assert len(sizes) == n_charts
        small = [(title, round(px, 1)) for title, px in sizes if px < 9]
        assert not small, f"chart text below 9 px on a phone: {small}"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
        cut = page.locator(".chart-live .role-title-text text, .chart-live .role-title-subtitle text").evaluate_all(
            """ts => ts.filter(t => !t.closest('.role-column-header, .role-row-header'))  // a chart's own title
                .filter(t => t.getBoundingClientRect().right > 391).map(t => t.textContent)"""
        )
        assert not cut, f"title lines wider than the phone: {cut}"
        fitted = page.locator("figure.chart .chart-live").evaluate_all(
            "ls => ls.filter(l => l.scrollWidth <= l.clientWidth + 1).length"
        )
        assert fitted >= n_charts // 2, "charts of one view fit the screen without scrolling"
    finally:
        page.close()


def test_pdf_is_written_and_every_table_fits_the_printed_page(partial_year, browser) -> None:
    pdf = partial_year / "uppfoljning_2017.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 50_000
    page = browser.new_page(viewport={"width": A4_CONTENT_PX, "height": 1000})
    try:
        page.emulate_media(media="print")
        page.goto((partial_year / "uppfoljning_2017.html").as_uri())
        widths = page.locator("table.ppss").evaluate_all(
            "ts => ts.map(t => [t.querySelector('caption')?.textContent || '',"
            " Math.ceil(t.getBoundingClientRect().right)])"
        )
        assert len(widths) >= 10
        too_wide = [(c, r) for c, r in widths if r > A4_CONTENT_PX]
        assert not too_wide, f"tables wider than the A4 page ({A4_CONTENT_PX}px): {too_wide}"
        live = page.locator("figure.chart .chart-live").first
        assert not live.is_visible(), "print shows the static charts"
    finally:
        page.close()


def test_data_docs_page_names_its_file(run, browser) -> None:
    docs = run["out"] / "validation"
    page = browser.new_page()
    try:
        page.goto((docs / "index.html").as_uri())
        link = page.locator("a[href*='validations']").first
        link.click()
        page.wait_for_load_state("load")
        body = page.locator("body").inner_text()
        assert "Data asset: None" not in body
        assert re.search(
            r"(persons|attendance|organisations)_\d+\.json|betyg_export_[\d-]+\.xml|ppss_\w+\.(csv|xlsx)|skolenheter\.csv",
            body,
        )
    finally:
        page.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_explore_notebook_in_jupyterlab_shows_tooltips(run, browser, tmp_path) -> None:
    """A researcher opens explore.ipynb in a real JupyterLab, runs it and hovers a chart."""
    home = tmp_path / "home"
    (home / "data" / "processed").mkdir(parents=True)
    shutil.copy(run["store"], home / "data" / "processed" / "ppss.duckdb")
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    shutil.copy(paths().notebooks / "explore.ipynb", nbdir / "explore.ipynb")
    port, token = _free_port(), "ppss-test"
    env = {
        **os.environ,
        "PPSS_HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    lab = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--notebook-dir={nbdir}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5).close()
                break
            except OSError:
                if time.time() > deadline or lab.poll() is not None:
                    raise
                time.sleep(0.5)
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:")) else None)
        page.goto(f"{base}/lab/tree/explore.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=90_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
        for _attempt in range(3):  # a Run All sent while the kernel connects can be lost: ask again
            page.locator("li.lm-MenuBar-item", has_text="Run").click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            try:
                page.locator(".jp-InputPrompt", has_text="[1]:").wait_for(timeout=30_000)
                break
            except Exception:
                continue
        charts = page.locator(".jp-OutputArea-output .vega-embed")
        page.wait_for_function(
            "document.querySelectorAll('.jp-OutputArea-output .vega-embed .mark-symbol path').length > 10",
            timeout=180_000,
        )
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        widget = charts.last  # the report's own chart: absence before and after enrolment
        tip = page.locator("#vg-tooltip-element.visible")
        points = widget.locator(".mark-symbol path")
        for i in range(min(points.count(), 12)):  # the first mark on top that has a tooltip
            point = points.nth(i)
            point.scroll_into_view_if_needed()
            box = point.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            if tip.count():
                break
        tip.wait_for(timeout=5_000)
        assert "Frånvaro" in tip.inner_text()
        page.screenshot(path=str(tmp_path / "lab_hover.png"))
        assert "false" not in widget.inner_text().lower() and "true" not in widget.inner_text().lower()
        assert not outside, f"JupyterLab charts fetched from the network: {outside[:3]}"
    except Exception:
        page.screenshot(path=str(tmp_path / "lab_failure.png"))
        raise
    finally:
        page.close()
        lab.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(timeout=10)


def test_the_baseline_chart_keeps_room_to_plot_on_a_phone(browser, tmp_path) -> None:
    """Its long row labels (320 px) took all but about 40 px of a 390 px screen from the plot:
    on a phone the labels give way (whole in the tooltip and in the table beside it)."""
    from pipelines.report.render import _page_scripts, _style

    labels = [f"Frånvaro: Frånvaro {w} före inskrivning, jämfört med skolan" for w in ("månaden", "halvåret", "året")]
    import polars as pl

    bal = pl.DataFrame({"label": labels, "before": [0.4, 0.2, -0.1], "after": [0.02, 0.01, 0.0]})
    body = report_charts.report_mimebundle(report_charts.love_plot(bal).to_dict())["text/html"]
    page_file = tmp_path / "balance.html"
    head = f'<meta name="viewport" content="width=device-width"><style>{_style()}</style>'
    page_file.write_text(
        f"<!doctype html><html><head>{head}</head><body>{body}{_page_scripts()}</body></html>", "utf-8"
    )
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        page.goto(page_file.as_uri())
        page.wait_for_function("document.querySelectorAll('figure.chart.is-live').length == 1", timeout=60_000)
        plot = page.evaluate(
            """() => {
                const xs = [...document.querySelectorAll('.chart-live .mark-symbol path')]
                    .map(p => p.getBoundingClientRect()).map(r => r.left + r.width / 2);
                return {spread: Math.max(...xs) - Math.min(...xs)};
            }"""
        )
    finally:
        page.close()
    # the points from -0.1 to 0.4 spread over a readable part of the screen
    assert plot["spread"] >= 150, plot  # 85 px before
