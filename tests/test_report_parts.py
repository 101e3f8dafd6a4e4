"""The report's parts without a kernel: charts (offline, named by their title, nothing hidden
in their data), coverage and provenance, Swedish rule explanations and units, grouped table
headers, parameter sets, and notebooks kept without outputs."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest

from pipelines.analysis.disclosure import Publication, keyed, members
from pipelines.analysis.suppress import fmt_num, fmt_pct
from pipelines.cli import _districts, parser
from pipelines.config import paths
from pipelines.ingest.readers import READER_RULES
from pipelines.report import charts
from pipelines.report.export import _parse_tables
from pipelines.report.provenance import Coverage, absence_terms, banner, refusal, years_text
from pipelines.report.render import ReportRefused, load_params, params_dir
from pipelines.report.tables import col, html_table, rule_explanations
from pipelines.rules.identity import IDENTITY_RULES

ROOT = Path(__file__).resolve().parents[1]


def _event_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_month": [-1, 0, 1, -1, 0, 1],
            "pupil_group": ["Inskrivna i PPSS"] * 3 + ["Övriga elever i samma skolor"] * 3,
            "mean": [0.10, 0.12, 0.31, 0.08, 0.09, 0.10],
            "lo": [0.05, 0.07, 0.2, 0.07, 0.08, 0.09],
            "hi": [0.15, 0.17, 0.4, 0.09, 0.10, 0.11],
            "n": [40, 41, 3, 400, 410, 420],
        }
    )


def _protected_event() -> pl.DataFrame:
    pub = Publication(10)
    frame = _event_frame()
    pupils = [
        [f"{g}{m}-{i}" for i in range(n)]
        for g, m, n in zip(frame["pupil_group"], frame["event_month"], frame["n"], strict=True)
    ]
    pub.table(
        "event",
        frame.with_columns(pl.Series(members("n"), pupils)),
        counts={"n": keyed("event_month_pupils", "pupil_group", "event_month")},
        labels=["event_month"],
    )
    return pub.protect()["event"]


def _datasets(spec: dict) -> list[dict]:
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def test_chart_data_come_from_protected_frames_and_never_hold_a_hidden_value() -> None:
    prot = _protected_event()
    hidden = prot.filter(pl.col("n__hidden"))
    assert hidden.height >= 1 and hidden["mean"].is_null().all()
    spec = charts.attendance_event_time(prot, 10).to_dict()
    rows = _datasets(spec)
    assert 0.31 not in [r.get("mean") for r in rows] and 3 not in [r.get("n") for r in rows]
    # a hidden month stays in the data (its line breaks there) with every figure of it null
    hidden_rows = [r for r in rows if r.get("n__hidden")]
    assert hidden_rows and all(r[c] is None for r in hidden_rows for c in ("mean", "lo", "hi", "n"))
    tips = [layer.get("encoding", {}).get("tooltip", []) for layer in spec["layer"]]
    tooltip_fields = {t["field"] for tip in tips for t in (tip if isinstance(tip, list) else [tip]) if "field" in t}
    assert tooltip_fields and tooltip_fields <= set(prot.columns)


def test_every_chart_is_named_by_its_title_and_an_empty_one_says_why() -> None:
    prot = _protected_event()
    chart = charts.attendance_event_time(prot, 10)
    assert chart.to_dict()["description"] == "Frånvaro före och efter inskrivning"
    bundle = charts.report_mimebundle(chart.to_dict())
    html = bundle["text/html"]
    assert 'aria-label="Frånvaro före och efter inskrivning"' in html and "<svg" in html
    spec = json.loads(re.search(r'class="ppss-chart-spec">(.*?)</script>', html, re.S).group(1))
    assert spec["description"] == "Frånvaro före och efter inskrivning"
    all_hidden = prot.with_columns(pl.lit(None, pl.Float64).alias("mean"))
    empty = charts.attendance_event_time(all_hidden, 10)
    assert isinstance(empty, charts.NoData) and "färre än 10 elever" in empty._repr_html_()
    nothing = charts.attendance_event_time(prot.clear(), 10)
    assert "inga uppgifter att visa" in nothing.text()


def test_changes_are_charted_in_percentage_points_with_a_real_minus() -> None:
    group = pl.DataFrame({"gender_label": ["Samtliga"], "change": [-0.035], "lo": [-0.06], "hi": [-0.01]})
    spec = charts.pass_change_group(group, 10).to_dict()
    assert _datasets(spec)[0]["change_pp"] == pytest.approx(-3.5)
    assert "procentenheter" in json.dumps(spec, ensure_ascii=False)
    assert fmt_num(-3.51, 1) == "−3,5" and fmt_pct(-0.035, 1) == "−3,5\u00a0%" and fmt_num(-0.01, 1) == "0,0"


def test_coverage_refuses_years_without_data_and_marks_a_partial_year() -> None:
    cov = Coverage(
        attendance=(dt.date(2012, 8, 1), dt.date(2017, 6, 30)),
        grades=(2012, 2017),
        last_grade_term=("VT", 2017),
        first_enrolment=dt.date(2013, 9, 1),
    )
    assert cov.reportable_years() == [2013, 2014, 2015, 2016, 2017]
    assert refusal(cov, 2016) is None
    assert refusal(cov, 2030) == "the store has no data for 2030; years that can be reported: 2013–2017"
    assert "2013–2017" in refusal(cov, 2012)
    assert banner(cov, 2016) == ""
    assert "närvaro finns till och med 2017-06-30" in banner(cov, 2017)
    assert absence_terms(cov, 2017) == "vårterminen 2017 (till och med 2017-06-30)"
    assert absence_terms(cov, 2016) == "vårterminen och höstterminen 2016"
    assert years_text([2013, 2014, 2016]) == "2013–2014, 2016"


def _all_rule_ids() -> set[str]:
    ids = set(IDENTITY_RULES) | set(READER_RULES)
    for suite in (ROOT / "expectations").glob("*.json"):
        ids |= {e["meta"]["rule"] for e in json.loads(suite.read_text())["expectations"] if "rule" in e.get("meta", {})}
    ids |= set(re.findall(r"'([a-z_]+)' as rule", (ROOT / "pipelines/transform/sql/checks.sql").read_text()))
    ids |= set(re.findall(r"rule\s*=\s*'([a-z_]+)'", (ROOT / "pipelines/transform/sql/checks.sql").read_text()))
    return ids


def test_every_quarantine_rule_has_a_swedish_explanation() -> None:
    ids = _all_rule_ids()
    assert len(ids) > 40
    missing = ids - set(rule_explanations())
    assert not missing, f"rules without a Swedish explanation in pipelines/data/rule_explanations.csv: {missing}"


def test_grouped_headers_reach_the_published_csv_as_one_header_row() -> None:
    df = pl.DataFrame({"label": ["Frånvaro"], "a": [311], "b": [3264]})
    html = html_table(
        df,
        {"label": ("Utfall", col("label")), "a": ("Inskrivna", col("a", "int")), "b": ("Jämförelse", col("b", "int"))},
        "Effekter",
        groups=[("", 1), ("Elever", 2)],
    )
    assert '<th colspan="2" class="group">Elever</th>' in html
    assert _parse_tables(html) == [
        ("Effekter", [["Utfall", "Elever: Inskrivna", "Elever: Jämförelse"], ["Frånvaro", "311", "3\u00a0264"]])
    ]


def test_parameter_sets_load_and_bad_ones_are_named(tmp_path) -> None:
    sets = load_params(params_dir())
    assert any(s.districts for s in sets) and any(not s.districts for s in sets)
    (tmp_path / "typo.yaml").write_text("year: 2016\ndistrict: [Farsta]\n", encoding="utf-8")
    with pytest.raises(ReportRefused, match=r"typo.yaml.*unknown: district"):
        load_params(tmp_path)
    (tmp_path / "typo.yaml").write_text("year: [2016\n", encoding="utf-8")
    with pytest.raises(ReportRefused, match=r"typo\.yaml: not valid YAML"):
        load_params(tmp_path)


def test_the_overview_lists_every_report_on_disk_and_the_years_side_by_side(tmp_path) -> None:
    """reports/index.html: every report folder with a state file (full, district, another
    threshold), with its files, and each full report's headline effects as it states them."""
    from pipelines.report import overview

    effects = (
        "outcome,group,estimate,ci_low,ci_high,n_enrolled,verdict\n"
        "absence_rate,,{e},-0.11,-0.08,{n},effect\nshare_passed_change,,,,,,\n"
    )
    for year, districts, n in ((2015, None, 120), (2016, None, 285), (2016, ["Farsta"], 40)):
        folder = tmp_path / str(year) / ("stadsdelar_farsta" if districts else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"uppfoljning_{year}.html").write_text("<html></html>", encoding="utf-8")
        (folder / "effects.csv").write_text(effects.format(e=-0.09 - year / 1e5, n=n), encoding="utf-8")
        overview.write_state(folder, {"params": {"year": year, "districts": districts, "min_cell": 10}, "store": {}})
    (tmp_path / "2014").mkdir()  # a folder without a report is not one
    page = overview.write_overview(tmp_path).read_text(encoding="utf-8")
    assert page.count('">rapport</a>') == 3 and "Farsta" in page and "Hela staden" in page
    years = overview.side_by_side(overview.scan(tmp_path))
    assert years.filter(pl.col("estimate").is_not_null())["year"].to_list() == [2015, 2016]  # full reports only
    assert "−11,0" in page and "<svg" in page and "Effekt" in page
    assert not re.search(r'(src|href)="https?:', page)  # opens offline
    state = {"params": {"year": 2016, "districts": None, "min_cell": 10}, "store": {}}
    assert overview.same_state(tmp_path / "2016", state)
    assert not overview.same_state(tmp_path / "2016", {**state, "store": {"built_at": "later"}})


def test_district_is_repeatable() -> None:
    args = parser().parse_args(["report", "--year", "2016", "--district", "Farsta", "--district", "Skarpnäck"])
    assert _districts(args) == ["Farsta", "Skarpnäck"]
    args = parser().parse_args(["report", "--year", "2016", "--districts", "Farsta, Skarpnäck"])
    assert _districts(args) == ["Farsta", "Skarpnäck"]


def test_reports_and_data_hold_no_tracked_output() -> None:
    """reports/ and data/ are output (and may hold pupil data): git keeps only their READMEs."""
    tracked = subprocess.run(
        ["git", "ls-files", "reports", "data"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(tracked) == ["data/processed/README.md", "data/raw/README.md", "reports/README.md"]


def test_tracked_notebooks_have_no_outputs() -> None:
    """Outputs never reach git (they can hold figures that break suppression): the tracked
    notebooks are stripped, as `nbstripout` leaves them (`make lab` does not commit them)."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked
    for name in tracked:
        nb = json.loads((ROOT / name).read_text(encoding="utf-8"))
        dirty = [
            i
            for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
        ]
        assert not dirty, f"{name}: cells {dirty} have outputs; run `.venv/bin/nbstripout {name}`"
        assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{name}: papermill needs a kernelspec"


def test_explore_notebook_speaks_swedish() -> None:
    nb = json.loads((paths().notebooks / "explore.ipynb").read_text(encoding="utf-8"))
    prose = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "Utforska" in prose and "This notebook" not in prose
    code = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "use_interactive()" in code and "replace_strict(ABSENCE_GROUP)" in code


def test_make_help_documents_remote_jupyterlab() -> None:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lab = next(line for line in out.splitlines() if line.strip().startswith("lab"))
    assert "--no-browser" in lab and "--port" in lab and "token" in lab


def test_ingest_progress_is_plain_lines_when_not_on_a_terminal(capsys) -> None:
    from pipelines.cli import _progress

    with _progress() as progress:
        for done, name in enumerate(["persons_001.json", "betyg_export_2016-06-30.xml"]):
            progress(name, done, 2)
        progress("", 2, 2)
    out = capsys.readouterr().out
    assert out == "ingest: file 1 of 2: persons_001.json\ningest: file 2 of 2: betyg_export_2016-06-30.xml\n"


def test_report_kernel_runs_over_ipc_without_the_tcp_warning(tmp_path, capfd) -> None:
    import nbformat
    import papermill

    from pipelines.report.render import IPCKernelManager

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "t.ipynb")
    papermill.execute_notebook(
        str(tmp_path / "t.ipynb"),
        str(tmp_path / "out.ipynb"),
        progress_bar=False,
        kernel_manager_class=IPCKernelManager,
    )
    err = capfd.readouterr().err
    assert "without encryption" not in err and "eavesdropping" not in err


def test_percentages_are_written_the_swedish_way_in_charts() -> None:
    """The report's static SVG (what prints): 1 234,5 % with a decimal comma and spaces, not
    1,234.5% (the locale was once passed under names vl-convert ignores)."""
    import altair as alt

    from pipelines.report.charts import report_mimebundle

    chart = alt.Chart(pl.DataFrame({"a": [12.345]})).mark_text().encode(text=alt.Text("a:Q", format=",.1%"))
    html = report_mimebundle(chart.to_dict())["text/html"]
    static = html.split('class="chart-live"')[0]
    assert "1\u00a0234,5\u00a0%" in static


def test_a_file_name_that_looks_like_personal_data_is_not_shown_in_the_report() -> None:
    """The first page names each delivery; a hand-kept register named after a pupil's
    personnummer (or a platform id) must not carry it into the report."""
    from pipelines.report.provenance import shown_name

    assert shown_name("/data/raw/2016/ppss_register_2016.xlsx") == "ppss_register_2016.xlsx"
    assert shown_name("/data/raw/betyg_export_2017-06-30.xml") == "betyg_export_2017-06-30.xml"
    for leaky in (
        "ppss_20050101-1234.xlsx",
        "ppss 0501011234.csv",
        "persons_3f2504e0-4f89-11d3-9a0c-0305e82c3301.json",
    ):
        name = shown_name(f"/data/raw/{leaky}")
        assert name != leaky and not any(ch.isdigit() for ch in name)


def test_a_chart_title_is_found_on_top_in_a_layer_or_nowhere() -> None:
    from pipelines.report.sections.base import chart_title

    assert chart_title({"title": {"text": ["Två", "rader"]}}) == "Två rader"
    assert chart_title({"layer": [{"mark": "bar"}, {"title": "Lagret"}]}) == "Lagret"
    assert chart_title({"facet": {}, "spec": {"layer": [{"title": {"text": "Inre"}}]}}) == "Inre"
    assert chart_title({}) == "" and chart_title({"layer": [{}], "spec": {}}) == ""


def test_a_hidden_attrition_step_shows_the_interval_its_shown_neighbours_give() -> None:
    from pipelines.report.tables import attrition_group_table, attrition_table, nested_bands

    assert nested_bands([330, 290, 285], [False, True, False]) == [None, "285–330", None]
    assert nested_bands([164, 149, 149], [True, False, False]) == ["≥ 149", None, None]
    assert nested_bands([330, 300, 285], [False, True, True]) == [None, None, None]  # nothing shown below
    assert nested_bands([40, 30, 20], [True, True, True]) == [None, None, None]
    assert nested_bands([12000, 11000, 10500], [False, True, False]) == [None, "10\u00a0500–12\u00a0000", None]
    # Two outcomes, steps out of order in the frame: the interval is taken within each outcome.
    att = pl.DataFrame(
        {
            "outcome": ["a", "b", "a", "b", "a", "b"],
            "measure": ["A", "B", "A", "B", "A", "B"],
            "step_no": [2, 0, 0, 1, 1, 2],
            "step": ["i skattningen", "inskrivna", "inskrivna", "med uppgifter", "med uppgifter", "i skattningen"],
            "n": [285, 330, 330, None, None, 141],
            "n__hidden": [False, False, False, True, True, False],
            "share": [0.86, 1.0, 1.0, None, None, 0.43],
            "share__hidden": [False, False, False, True, True, False],
        }
    )
    rows = _parse_tables(attrition_table(att))[0][1]
    cells = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert cells[("A", "med uppgifter")] == "285–330" and cells[("B", "med uppgifter")] == "141–330"
    groups = pl.DataFrame(
        {
            "label": ["Kön", "Stadsdel"],
            "reason": ["Pojkar", "Älvsjö"],
            "n": [166, None],
            "n__hidden": [False, True],
            "n_eligible": [None, None],
            "n_eligible__hidden": [True, True],
            "n_matched": [136, None],
            "n_matched__hidden": [False, True],
            "share": [None, None],
            "share__hidden": [True, True],
        }
    )
    rows = _parse_tables(attrition_group_table(groups))[0][1]
    assert rows[1][2:] == ["166", "136–166", "136", ".."]
    assert rows[2][2:] == ["..", "..", "..", ".."]  # nothing shown in the row: nothing to give
