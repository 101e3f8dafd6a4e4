"""End to end, as a user runs it: `ppss` on small generated data, notebooks executed by a
real kernel, the report opened in headless Chromium, and a privacy scan of every output."""

from __future__ import annotations

import csv
import hashlib
import html as html_mod
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import papermill
import polars as pl
import pytest

from pipelines.cli import main
from pipelines.config import paths
from pipelines.demo.world import DemoWorld, planted_quarantine
from pipelines.report import tables as tables_mod
from pipelines.report.render import run_report

from .attack import attack_report, protected
from .conftest import E2E_YEAR

pytestmark = pytest.mark.e2e
YEAR = E2E_YEAR
SEED, SCALE = 11, "tiny"  # as the session fixture `run` in conftest.py


def _copy(run, name: str) -> tuple[Path, Path]:
    """A private copy of the raw folder, loaded into a store of its own (files are known
    by their path, so a copy elsewhere is a new set of files)."""
    dst = run["root"] / name
    shutil.copytree(run["raw"], dst / "raw")
    assert main(["ingest", "--raw", str(dst / "raw"), "--store", str(dst / "ppss.duckdb")]) == 0
    return dst / "raw", dst / "ppss.duckdb"


def _q(store: Path, sql: str):
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_run_writes_report_and_validation_docs(run) -> None:
    assert run["status"] == 0
    html = (run["out"] / YEAR / f"uppfoljning_{YEAR}.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 4  # the tiny store: charts hidden whole show a note instead
    assert "Uppföljning av PPSS 2016" in html and 'lang="sv"' in html
    for section in (
        "Dataunderlag och datakvalitet",
        "Effekter jämfört med liknande elever",
        "Bortfall",
        "Baslinjens likvärdighet",
        "Förstudiens frågor",
        "återskapad",
        "Metodbilaga",
    ):
        assert section in html, section
    assert not re.search(r'<(script|link|img)\b[^>]*(src|href)="https?:', html)
    assert "<pre" not in html or "ppss" not in html.split("<pre")[1][:200]  # no code cells
    # page 1: the summary and the contents; provenance in an appendix
    assert html.index("Sammanfattning") < html.index("Innehåll") < html.index("Dataunderlag och datakvalitet")
    assert html.index("Metodbilaga") < html.index("kontrollsummor")
    # every table and chart links its data, and the files are there (tidy CSV, Excel, dictionary)
    data = run["out"] / YEAR / "data"
    for name in ("enrolled", "effects", "attendance_event_time"):
        assert (
            f'href="data/{name}.csv"' in html and (data / f"{name}.csv").exists() and (data / f"{name}.xlsx").exists()
        )
    assert (data / "datakatalog.csv").exists()
    overview = (run["out"] / "index.html").read_text(encoding="utf-8")
    assert f"{YEAR}/uppfoljning_{YEAR}.html" in overview and "År för år" in overview
    docs = run["out"] / "validation" / "index.html"
    index = docs.read_text(encoding="utf-8")
    assert "persons_001.json" in index and "betyg_export_2017-06-30.xml" in index
    assert "grade_value (" in index and "subject_code_unknown (" in index  # the planted bad grades, by rule
    for page in (run["out"] / "validation").rglob("*.html"):
        assert not re.search(r'<(script|link)\b[^>]*(src|href)="https?:', page.read_text(encoding="utf-8")), page


def _hidden_ranges_are_wide(folders: list[Path], min_cell: int) -> int:
    ranges = attack_report(*folders)
    narrow = {c: r for c, r in ranges.items() if not protected(*r, min_cell)}
    assert not narrow, f"hidden cells an outsider can narrow down: {narrow}"
    return len(ranges)


def _table_cells(html: str) -> list[str]:
    return re.findall(r'<td class="(?:num|lab)">([^<]*)</td>', html)


def test_published_tables_are_the_html_cells_and_survive_an_outside_attack(run) -> None:
    """Every table is also a CSV with the same cells; an attacker's own integer program over
    the CSV files recovers no hidden cell (to within min_cell)."""
    folder = run["out"] / YEAR / "tables"
    html = (run["out"] / YEAR / f"uppfoljning_{YEAR}.html").read_text(encoding="utf-8")
    csv_cells = []
    for path in sorted(folder.glob("*.csv")):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ") and text.encode("utf-8")  # caption first, UTF-8
        csv_cells += [c for row in csv.reader(text.splitlines()[2:]) for c in row]
    shown = [html_mod.unescape(c) for c in _table_cells(html)]
    assert sorted(csv_cells) == sorted(shown)  # the same cells as the HTML, `..` included
    assert shown.count("..") >= 5
    assert _hidden_ranges_are_wide([folder], 10) >= 5
    assert "Röjandekontroll" in html and "Granskningen godkände mönstret" in html
    # A hidden attrition step shows as the interval of its shown neighbours, and only that.
    rows = list(csv.reader((folder / "attrition.csv").read_text(encoding="utf-8").splitlines()[2:]))
    bands = 0
    for outcome in dict.fromkeys(r[0] for r in rows):
        steps = [r[2].replace("\u00a0", "") for r in rows if r[0] == outcome]
        for i, text in enumerate(steps):
            if "–" in text or "≥" in text:
                bands += 1
                below = next(t for t in steps[i + 1 :] if t.isdigit())
                above = next((t for t in reversed(steps[:i]) if t.isdigit()), None)
                assert text == (f"{below}–{above}" if above else f"≥ {below}"), (outcome, steps)
            else:
                assert text.isdigit() or text == "..", (outcome, steps)
    assert (tables_mod.BAND_NOTE in html_mod.unescape(html)) == (bands > 0)


def test_a_district_report_at_min_cell_37_reveals_nothing_beside_the_full_report(run, tmp_path) -> None:
    """Written to another folder, with no full report beside it: the store's ledger holds what
    the full report published, and the district report is audited with it. (The full report
    at min_cell 37 is checked without papermill in test_disclosure_stores.)"""
    out = tmp_path / "reports"
    html = run_report(2016, run["store"], out, min_cell=37, districts=["Farsta", "Skarpnäck"])
    full = run["out"] / YEAR / "tables"
    subset = html.parent / "tables"
    assert subset.parent.name == "stadsdelar_farsta_skarpnack"
    # the subset's own totals, read together with the full report, give nothing away
    # (ranges are bounded by totals the full report showed at 10, so 10 is what can be asked)
    _hidden_ranges_are_wide([full, subset], 10)
    assert "Granskningen godkände mönstret" in html.read_text(encoding="utf-8")


def test_every_file_reconciles_and_bad_rows_are_located(run) -> None:
    rows = _q(run["store"], "select path, rows_read, rows_loaded, rows_quarantined, rows_unused, status from load_log")
    assert rows and all(r[1] == r[2] + r[3] + r[4] for r in rows)
    assert {r[5] for r in rows} == {"loaded"}
    # every planted defect, and nothing else, is quarantined by the rules of its own file
    rules = dict(_q(run["store"], "select rule, count(*) from quarantine where not is_cross_file group by rule"))
    assert rules == planted_quarantine(DemoWorld(SEED, SCALE))
    locations = [r[0] for r in _q(run["store"], "select location from quarantine where rule = 'grade_value'")]
    assert re.fullmatch(r"/betyg/elev\[\d+\]/ämnesbetyg\[\d+\]", locations[0])


def test_public_tables_have_the_contract_columns(run) -> None:
    cols = {
        r[0]
        for r in _q(
            run["store"], "select column_name from information_schema.columns where table_name = 'pupil_term_outcomes'"
        )
    }
    contract = {
        "pupil_key",
        "term",
        "term_year",
        "school_year",
        "school_unit_code",
        "gender",
        "n_graded",
        "n_passed",
        "share_passed",
        "merit_value_16",
        "merit_value_17",
        "eligible_vocational",
        "eligible_hp_ek_hu_sa",
        "eligible_hp_na_te",
        "eligible_hp_es",
        "offered_minutes",
        "absence_rate",
        "invalid_absence_rate",
        "in_programme",
    }
    assert contract <= cols
    grain = _q(run["store"], "select count(*) - count(distinct (pupil_key, term, term_year)) from pupil_term_outcomes")
    assert grain == [(0,)]


def test_ingesting_the_same_files_again_changes_nothing(run) -> None:
    raw, store = _copy(run, "again")
    before = _q(store, "select count(*), sum(rows_loaded) from load_log") + _q(store, "select count(*) from src_grades")
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 0
    after = _q(store, "select count(*), sum(rows_loaded) from load_log") + _q(store, "select count(*) from src_grades")
    assert before == after


def test_same_content_under_another_name_changes_nothing(run, capsys) -> None:
    raw, store = _copy(run, "renamed")
    page = next((raw / "ss12000").glob("persons_*.json"))
    shutil.copyfile(page, page.with_name("persons_copy.json"))
    before = _q(store, "select count(*) from load_log") + _q(store, "select count(*) from src_persons")
    capsys.readouterr()
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 0
    first = _q(store, f"select path from load_log where path like '%{page.name}'")[0][0]
    assert f"same content already loaded as {first}" in capsys.readouterr().out
    assert _q(store, "select count(*) from load_log") + _q(store, "select count(*) from src_persons") == before


def test_status_explains_without_personal_data(run, capsys) -> None:
    capsys.readouterr()
    assert main(["status", "--store", str(run["store"])]) == 0
    out = capsys.readouterr().out
    assert "civic_no_check_digit" in out and "unknown_pupil" in out and "next:" in out
    assert "data[" in out and "/betyg/elev[" in out  # locations point into the raw files
    assert not re.search(r"(?<!\d)(\d{2})?\d{6}[-+]?\d{4}(?!\d)", out)  # no identity number
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}", out, re.I)  # no guid


def test_changed_file_is_a_new_version_and_the_old_one_superseded(run) -> None:
    raw, store = _copy(run, "changed")
    page = next((raw / "ss12000").glob("attendance_*.json"))
    doc = json.loads(page.read_text(encoding="utf-8"))
    doc["data"] = doc["data"][:-10]
    page.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 0
    versions = _q(store, f"select status, rows_read from load_log where path like '%{page.name}' order by file_id")
    assert [v[0] for v in versions] == ["superseded", "loaded"]
    assert versions[0][1] - versions[1][1] == 10
    n_src = _q(store, "select count(*) from src_attendance")[0][0]
    n_log = _q(
        store,
        "select sum(rows_loaded + rows_held) from load_log where kind = 'attendance' and status = 'loaded'",
    )[0][0]
    assert n_src == n_log  # held rows stay in src_* (left out downstream) until their reference arrives


def test_rejected_file_exit_2_and_report_refuses(run, capsys) -> None:
    raw, store = _copy(run, "rejected")
    (raw / "ss12000" / "persons_999.json").write_text("<html><body>Gateway Timeout</body></html>")
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 2
    err = capsys.readouterr()
    assert "HTML page" in err.out and "rejected" in err.out
    row = _q(store, "select status, rows_read, message from load_log where path like '%persons_999.json'")[0]
    assert row[0] == "rejected" and "HTML page" in row[2]
    assert main(["build", "--store", str(store)]) == 0
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 2  # still rejected, nothing new logged
    assert _q(store, "select count(*) from load_log where path like '%persons_999.json'") == [(1,)]
    capsys.readouterr()
    assert main(["report", "--year", YEAR, "--store", str(store), "--out", str(run["root"] / "r2")]) == 1
    assert "--allow-rejected" in capsys.readouterr().err
    # `run` keeps the rule: exit 2 for the rejected file, and no report without --allow-rejected
    out = run["root"] / "r3"
    assert main(["run", "--raw", str(raw), "--year", YEAR, "--store", str(store), "--out", str(out)]) == 2
    assert "--allow-rejected" in capsys.readouterr().err and not (out / YEAR).exists()


def test_export_cut_off_after_loaded_chunks_loads_nothing(run) -> None:
    from pipelines.ingest.load import ingest

    raw, store = _copy(run, "cutoff")
    newest = sorted((raw / "skolplattformen").glob("*.xml"))[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) * 3 // 4])  # a transfer that broke off
    summary = ingest(raw, store, chunk_rows=1000)  # chunks of 1,000 grades: several pass before the break
    assert summary.rejected
    assert any("breaks off" in f.message for f in summary.files if f.status == "rejected")
    file_id, status = _q(
        store, f"select file_id, status from load_log where path like '%{newest.name}' order by file_id"
    )[-1]
    assert status == "rejected"
    assert _q(store, f"select count(*) from src_grades where file_id = {file_id}") == [(0,)]
    assert _q(store, f"select count(*) from quarantine where file_id = {file_id}") == [(1,)]
    # the version loaded before stays current
    assert _q(store, f"select count(*) from load_log where path like '%{newest.name}' and status = 'loaded'") == [(1,)]


def test_killed_load_leaves_the_store_as_it_was(run) -> None:
    raw, store = _copy(run, "killed")
    for page in (raw / "skolplattformen").glob("*.xml"):
        page.write_text(page.read_text(encoding="utf-8").replace("<prövning>false", "<prövning>true"), encoding="utf-8")
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ingest", "--raw", str(raw), "--store", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not list(store.parent.glob(".*.building")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the load finished before it could be killed"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest
    left = list(store.parent.glob(".ppss-ingest-*"))  # the killed load's Parquet parts
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) == 0  # the next writer cleans up
    assert not list(store.parent.glob(".*.building"))
    assert left and not any(p.exists() for p in left)


def test_readers_never_block_a_rebuild(run) -> None:
    store = run["root"] / "reader.duckdb"
    shutil.copyfile(run["store"], store)
    reader = duckdb.connect(str(store), read_only=True)
    try:
        assert main(["build", "--store", str(store)]) == 0
        assert reader.execute("select count(*) from pupil_term_outcomes").fetchall()[0][0] > 0
    finally:
        reader.close()


def test_no_identity_number_guid_or_name_reaches_processed_or_reports(run) -> None:
    forbidden: set[str] = set()
    for page in (run["raw"] / "ss12000").glob("persons_*.json"):
        for p in json.loads(page.read_text(encoding="utf-8"))["data"]:
            digits = re.sub(r"\D", "", p["civicNo"]["value"])
            forbidden |= {
                p["civicNo"]["value"],
                digits[-10:],
                p["id"],
                p["id"].upper(),
                p["givenName"] + " " + p["familyName"],
            }
            if len(p["familyName"]) > 6:
                forbidden.add(p["familyName"])
    con = duckdb.connect(str(run["store"]), read_only=True)
    try:
        con.execute("create temp table forbidden as select unnest(?::varchar[]) as v", [sorted(forbidden)])
        columns = con.execute("""select table_name, column_name from information_schema.columns
                                 where data_type like 'VARCHAR%' and table_catalog <> 'temp'""").fetchall()
        assert len(columns) > 20
        for table, column in columns:
            hits = con.execute(
                f'select count(*) from "{table}" as t join forbidden as f on contains(t."{column}", f.v)'
            ).fetchall()[0][0]
            assert hits == 0, f"{table}.{column} holds personal data"
    finally:
        con.close()
    pnr = re.compile(r"(?<!\d)(\d{2})?\d{6}[-+]?\d{4}(?!\d)")
    for path in run["out"].rglob("*"):
        if path.is_file() and path.suffix in (".html", ".ipynb", ".json", ".css"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for value in forbidden:
                assert value not in text, f"{path} contains personal data"
            for m in pnr.finditer(text):
                assert re.sub(r"\D", "", m.group(0))[-10:] not in forbidden, f"{path}: identity number"


def test_explore_notebook_runs_with_a_real_kernel(run, tmp_path) -> None:
    out = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(paths().notebooks / "explore.ipynb"),
        str(out),
        parameters={"store": str(run["store"])},
        progress_bar=False,
        cwd=str(paths().notebooks),
    )
    nb = json.loads(out.read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    charts = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(charts) >= 2, "charts are interactive widgets (alt.JupyterChart, offline)"
    assert not [o for o in outputs if o.get("name") == "stderr"], "the notebook runs quietly"


def test_report_renders_in_headless_chromium(run, tmp_path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    html = run["out"] / YEAR / f"uppfoljning_{YEAR}.html"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,4000",
    ]
    dom = subprocess.run([chromium, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.stdout.count("<svg") >= 4 and "Behörighet till gymnasiet" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_usage_errors_exit_1_with_a_message(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("PPSS_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("PPSS_PSEUDONYM_KEY_FILE", raising=False)
    (tmp_path / "persons_1.json").write_text('{"data": []}')
    assert main(["ingest", "--raw", str(tmp_path), "--store", str(tmp_path / "s.duckdb")]) == 1
    assert "PPSS_PSEUDONYM_KEY" in capsys.readouterr().err
    assert main(["report", "--year", YEAR, "--store", str(tmp_path / "none.duckdb")]) == 1
    assert "no store" in capsys.readouterr().err
    assert main(["report", "--year", YEAR, "--store", str(tmp_path / "none.duckdb"), "--min-cell", "3"]) == 1


def test_jupyterlab_serves_the_notebooks(tmp_path) -> None:
    """`make lab`: a real JupyterLab server lists the notebooks and offers the python3 kernel."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "ppss-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--notebook-dir={paths().notebooks}",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=5) as r:
                    contents = json.load(r)
                break
            except OSError:
                if time.time() > deadline or lab.poll() is not None:
                    raise
                time.sleep(0.5)
        names = {c["name"] for c in contents["content"]}
        assert {"yearly_followup.ipynb", "explore.ipynb"} <= names
        with urllib.request.urlopen(f"{base}/api/kernelspecs?token={token}", timeout=10) as r:
            assert "python3" in json.load(r)["kernelspecs"]
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
    finally:
        lab.terminate()
        lab.wait(timeout=30)


def test_every_downloaded_column_is_described_in_the_data_dictionary(run) -> None:
    """An analyst opening a download finds each column explained in Swedish, not by its name."""
    catalogue = pl.read_csv(run["out"] / YEAR / "data" / "datakatalog.csv")
    assert catalogue.height > 100
    bare = catalogue.filter(pl.col("description") == pl.col("column"))
    assert bare.is_empty(), bare.select("table", "column").rows()
    uncaptioned = catalogue.filter(pl.col("table_caption").fill_null("") == "")["table"].unique().to_list()
    assert not uncaptioned, f"tables without a caption (a layered chart's title): {uncaptioned}"
