"""Charts as published: every category a chart's data holds has a place in its colour scale
(in the report and in the executed explore notebook), and the explore notebook's absence
chart draws both groups under labels that say what its query takes."""

from __future__ import annotations

import json

import altair as alt
import papermill
import polars as pl
import pytest

from pipelines.config import paths
from pipelines.labels import ENROLLED, OTHERS
from pipelines.report import charts
from pipelines.report.render import IPCKernelManager

from .chart_specs import notebook_specs, outside_domain, report_specs
from .conftest import E2E_YEAR


def test_outside_domain_finds_a_group_its_scale_lacks() -> None:
    """The explore chart's old mistake: the data say "Övriga elever", the scale's domain
    "Övriga elever i samma skolor"; Vega drew those points without a colour."""
    data = pl.DataFrame({"grupp": [ENROLLED, "Övriga elever"], "y": [0.1, 0.2], "x": ["HT 2016", "HT 2016"]})
    bad = alt.Chart(data).mark_point().encode(x="x:N", y="y:Q", color=alt.Color("grupp:N", scale=charts.GROUP_COLORS))
    assert outside_domain(bad.to_dict()) == [f"color grupp: ['Övriga elever'] not in {[ENROLLED, OTHERS]}"]
    layered = (bad + bad.mark_line()).to_dict()  # layers share the top-level data
    assert len(outside_domain(layered)) == 2
    good = data.with_columns(pl.lit(OTHERS).alias("grupp"))
    fixed = alt.Chart(good).mark_point().encode(color=alt.Color("grupp:N", scale=charts.GROUP_COLORS))
    assert outside_domain(fixed.to_dict()) == []


@pytest.mark.e2e
def test_report_charts_draw_every_category_in_their_scale(run) -> None:
    html = (run["out"] / E2E_YEAR / f"uppfoljning_{E2E_YEAR}.html").read_text(encoding="utf-8")
    specs = report_specs(html)
    assert len(specs) >= 4  # the tiny store: charts hidden whole show a note instead
    problems = {s.get("description"): outside_domain(s) for s in specs}
    assert not {t: p for t, p in problems.items() if p}, problems


@pytest.mark.e2e
def test_explore_notebook_draws_both_groups_with_tidy_tables(run, tmp_path) -> None:
    """explore.ipynb executed by a kernel: its charts' categories are all in their scales, the
    absence chart draws the enrolled pupils and the others of årskurs 7-9 (what its query takes),
    load_log sums are integers and shares percentages."""
    out = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(paths().notebooks / "explore.ipynb"),
        str(out),
        parameters={"store": str(run["store"])},
        progress_bar=False,
        cwd=str(paths().notebooks),
        kernel_manager_class=IPCKernelManager,
    )
    nb = json.loads(out.read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    specs = notebook_specs(nb)
    assert len(specs) >= 2, "the notebook's charts are saved with the notebook (widget state)"
    assert not [p for s in specs for p in outside_domain(s)]
    absence = next(s for s in specs if s.get("description") == "Genomsnittlig frånvaro, årskurs 7–9")
    rows = [r for values in absence["datasets"].values() for r in values]
    assert {r["grupp"] for r in rows} == {ENROLLED, "Övriga elever i åk 7–9"}
    assert absence["encoding"]["color"]["scale"]["domain"] == [ENROLLED, "Övriga elever i åk 7–9"]
    text = json.dumps(outputs, ensure_ascii=False)
    assert "decimal" not in text, "load_log sums show as integers"
    assert "\u00a0%" in text, "shares show as percentages"
