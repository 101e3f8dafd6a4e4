"""Charts as published: every category a chart's data holds has a place in its colour scale
(in the report and in the executed explore notebook), the explore notebook's absence
chart draws both groups under labels that say what its query takes, and a figure hidden by
disclosure control leaves its place empty (said in words or `..`) while every other figure
stays under its own facet headers, and lines break at it."""

from __future__ import annotations

import itertools
import json
import re
import shutil

import altair as alt
import papermill
import polars as pl
import pytest

from pipelines.config import paths
from pipelines.labels import DIRECTIONS, ENROLLED, GENDER_ORDER, MEASURES, OTHERS
from pipelines.report import charts
from pipelines.report.render import IPCKernelManager

from .chart_specs import facet_cells, label_fields, notebook_specs, outside_domain, report_specs, rows
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
    # A copy of the store without its ledger: what the notebook draws then depends on the store
    # alone, not on which reports other tests of this worker published from it before.
    store = tmp_path / "ppss.duckdb"
    shutil.copyfile(run["store"], store)
    papermill.execute_notebook(
        str(paths().notebooks / "explore.ipynb"),
        str(out),
        parameters={"store": str(store)},
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


def _hide(df: pl.DataFrame, where: pl.Expr, figures: tuple[str, ...]) -> pl.DataFrame:
    """What disclosure control hands a chart: the hidden figures null, with their flags."""
    return df.with_columns(
        *(pl.when(where).then(None).otherwise(pl.col(c)).alias(c) for c in figures),
        *(where.alias(f"{c}__hidden") for c in figures),
        where.alias("suppressed"),
    )


def _eligibility(where: pl.Expr) -> pl.DataFrame:
    combos = list(itertools.product(MEASURES.values(), GENDER_ORDER, [ENROLLED, OTHERS]))
    share = [0.10 + 0.03 * i for i in range(len(combos))]  # one share per row: a point names its row
    df = pl.DataFrame(
        {
            "measure": [m for m, _, _ in combos],
            "gender_label": [g for _, g, _ in combos],
            "pupil_group": [p for _, _, p in combos],
            "n": [60] * len(combos),
            "k": [round(60 * s) for s in share],
            "share": share,
            "lo": [s - 0.05 for s in share],
            "hi": [s + 0.05 for s in share],
        }
    )
    return _hide(df, where, ("k", "share", "lo", "hi"))


def _thresholds(where: pl.Expr) -> pl.DataFrame:
    combos = list(itertools.product([("VT 2016", 0), ("HT 2016", 1)], [0.10, 0.15, 0.20], [ENROLLED, OTHERS]))
    share = [0.40 - 0.02 * i for i in range(len(combos))]
    df = pl.DataFrame(
        {
            "term_label": [t for (t, _), _, _ in combos],
            "term_index": [i for (_, i), _, _ in combos],
            "threshold": [t for _, t, _ in combos],
            "pupil_group": [p for _, _, p in combos],
            "n": [80] * len(combos),
            "k": [round(80 * s) for s in share],
            "share": share,
            "lo": [s - 0.04 for s in share],
            "hi": [s + 0.04 for s in share],
        }
    )
    return _hide(df, where, ("k", "share", "lo", "hi"))


def _static_svg(chart) -> str:
    """The drawing the report prints (and shows without scripts), as `report_mimebundle` makes it."""
    html = charts.report_mimebundle(chart.to_dict())["text/html"]
    return re.search(r"<svg.*</svg>", html, re.S).group(0)


def _figure_items(cells: list[dict], row_key: str, column_key: str) -> list[tuple[dict, dict]]:
    """(cell, the item's label fields) for every drawn item that names its facet categories."""
    return [
        (cell, fields)
        for cell in cells
        for item in cell["items"]
        if row_key in (fields := label_fields(item["label"])) and column_key in fields
    ]


FACETED = {
    # chart, frame, a cell hidden whole, one group hidden in another cell, row and column keys
    "eligibility": (
        lambda df: charts.grade9_eligibility(df, 10),
        _eligibility,
        ("Behörig till yrkesprogram", "Flickor"),
        ("Behörig till NA, TE", "Samtliga", OTHERS),
        ("measure", "gender_label", "Mått", "Kön"),
    ),
    "thresholds": (
        lambda df: charts.absence_thresholds(df, 0.15, 10),
        _thresholds,
        ("HT 2016", 0.10),
        ("VT 2016", 0.15, ENROLLED),
        ("term_label", "threshold", "Termin", "Frånvarogräns"),
    ),
}


@pytest.mark.parametrize("name", FACETED)
def test_a_hidden_facet_cell_stays_empty_and_every_figure_stays_under_its_headers(name) -> None:
    """Vega's facet grid fills its slots in order with the cells its data have: with a hidden
    cell filtered out of the data, every later point was drawn under the next header (the tiny
    demo's eligibility chart drew "Behörig till yrkesprogram, Samtliga" in the row of "NA, TE")."""
    make, frame, whole, part, (row, column, row_title, column_title) = FACETED[name]
    hidden = ((pl.col(row) == whole[0]) & (pl.col(column) == whole[1])) | (
        (pl.col(row) == part[0]) & (pl.col(column) == part[1]) & (pl.col("pupil_group") == part[2])
    )
    df = frame(hidden)
    spec = make(df).to_dict()
    data = rows(spec)
    # every facet cell has rows in the data, and the facet's order names every category
    cells_in_data = {(r[row], r[column]) for r in data}
    assert cells_in_data == set(df.select(row, column).iter_rows())
    for channel, key in (("row", row), ("column", column)):
        sort = spec["facet"][channel]["sort"]
        assert {r[f"{key}_label" if key == "threshold" else key] for r in data} <= set(sort)
    # no row of the chart's data carries a hidden figure
    assert all(r["share"] is None and r["lo"] is None for r in data if r.get("share__hidden"))

    cells = facet_cells(_static_svg(make(df)))
    assert len(cells) == len(cells_in_data), "one drawn cell per facet cell"
    figures = _figure_items(cells, row_title, column_title)
    misplaced = [
        (c["row"], c["column"], f) for c, f in figures if (f[row_title], f[column_title]) != (c["row"], c["column"])
    ]
    assert not misplaced, misplaced[:3]
    # every shown figure is drawn (its point or bar, and its error bar: each share is its
    # row's own); each hidden one is said to be hidden, once, and nothing else is drawn of it
    drawn = {f["Andel"] for _, f in figures} - {charts.HIDDEN}
    assert len(drawn) == df.filter(~hidden).height
    said_hidden = [f for _, f in figures if f["Andel"] == charts.HIDDEN]
    assert len(said_hidden) == df.filter(hidden).height
    # the cell hidden whole draws no figure: only the note that it is hidden
    whole_cell = [c for c in cells if (c["row"], c["column"]) == (whole[0], _header(name, whole[1]))]
    assert len(whole_cell) == 1
    marks = {i["mark"] for i in whole_cell[0]["items"]}
    assert marks == {"mark-text"}, marks


def _header(name: str, value):
    return charts._pct_label(value) + (" (huvudgräns)" if value == 0.15 else "") if name == "thresholds" else value


def _months(groups: list[str], months: range, hide: tuple[str, int]) -> pl.DataFrame:
    rows_ = [(g, m) for g in groups for m in months]
    mean = [0.08 + 0.002 * i for i in range(len(rows_))]
    df = pl.DataFrame(
        {
            "pupil_group": [g for g, _ in rows_],
            "event_month": [m for _, m in rows_],
            "mean": mean,
            "lo": [v - 0.02 for v in mean],
            "hi": [v + 0.02 for v in mean],
            "n": [40] * len(rows_),
        }
    )
    return _hide(df, (pl.col("pupil_group") == hide[0]) & (pl.col("event_month") == hide[1]), ("mean", "lo", "hi", "n"))


def _paths(svg: str, mark: str, colour: str) -> list[str]:
    """The `d` of each drawn path of a mark class in one colour (a line's stroke, a band's fill)."""
    items = re.findall(rf'<g class="{mark} role-mark[^"]*"[^>]*>(.*?)</g>', svg, re.S)
    return [d for body in items for d, attrs in re.findall(r'<path[^>]*?d="([^"]+)"([^>]*)', body) if colour in attrs]


def test_lines_and_bands_break_at_a_hidden_month_and_draw_no_point_there() -> None:
    """A line drawn from the month before a hidden one to the month after showed a trend
    through a figure that is not published; it breaks there now, as does its interval band."""
    attendance = _months([ENROLLED, OTHERS], range(-6, 13), (ENROLLED, 3))
    svg = _static_svg(charts.attendance_event_time(attendance, 10))
    red = charts.GROUP_COLORS.to_dict()["range"][0]
    (line,) = _paths(svg, "mark-line", red)
    assert line.count("M") == 2, "the enrolled pupils' line breaks at month 3"
    (band,) = _paths(svg, "mark-area", red)
    assert band.count("M") == 2, "so does their interval"
    (other,) = _paths(svg, "mark-line", charts.GROUP_COLORS.to_dict()["range"][1])
    assert other.count("M") == 1, "the other pupils' line has no hidden month"
    points = [label_fields(a) for a in re.findall(r'aria-label="([^"]*Månad: [^"]*)"', svg)]
    assert {(p["Grupp"], p["Månad"]) for p in points} == {
        (g, str(m).replace("-", "−"))
        for g, m in attendance.filter(~pl.col("suppressed")).select("pupil_group", "event_month").iter_rows()
    }

    curve = _months(["x"], range(-14, 13), ("x", -2)).drop("pupil_group").rename({"mean": "att", "n": "n_treated"})
    curve = curve.rename({"mean__hidden": "att__hidden", "n__hidden": "n_treated__hidden"})
    svg = _static_svg(charts.effect_event_curve(curve, 10))
    (line,) = _paths(svg, "mark-line", "#c0392b")
    (band,) = _paths(svg, "mark-area", "#c0392b")
    assert line.count("M") == 2 and band.count("M") == 2
    assert "Månad: −2" not in svg and "Månad: −3" in svg


def test_a_heatmap_shows_its_hidden_cells_as_dots_and_says_why() -> None:
    """A hidden cell of "Insatser per stadsdel" was an empty square among coloured ones, and a
    district whose every cell was hidden lost its row without a word."""
    districts, terms = ["Farsta", "Skarpnäck", "Enskede"], ["Mentor", "Läxhjälp", "Samtal"]
    grid = list(itertools.product(districts, terms))
    share = [0.05 + 0.1 * i for i in range(len(grid))]
    df = pl.DataFrame(
        {
            "district": [d for d, _ in grid],
            "term_value": [t for _, t in grid],
            "n_pupils": [round(40 * s) for s in share],
            "n_district": [40] * len(grid),
            "share": share,
        }
    )
    hidden = (pl.col("district") == "Enskede") | ((pl.col("district") == "Farsta") & (pl.col("term_value") == "Samtal"))
    df = _hide(df, hidden, ("n_pupils", "share"))
    chart = charts.vocabulary_heatmap(df, "Insatser per stadsdel", 10)
    assert "”..” betyder att uppgiften döljs av röjandekontrollen." in json.dumps(chart.to_dict(), ensure_ascii=False)
    svg = _static_svg(chart)
    cells = [label_fields(a) for a in re.findall(r'<path aria-label="([^"]*)"', svg)]
    shown = df.filter(~hidden).select("district", "term_value").iter_rows()
    assert {(c["Stadsdel"], c["Kategori"]) for c in cells if "Stadsdel" in c} == set(shown), "a square per shown cell"
    dots = [
        label_fields(a)
        for a, text in re.findall(r'<text aria-label="([^"]*)"[^>]*>([^<]*)</text>', svg)
        if text == ".."
    ]
    assert {(d["Stadsdel"], d["Kategori"]) for d in dots} == set(
        df.filter(hidden).select("district", "term_value").iter_rows()
    )
    assert all(d["Andel"] == charts.HIDDEN for d in dots)
    assert "Enskede" in re.sub(r"<[^>]+>", " ", svg), "a district hidden whole keeps its row"
    # no subtitle line where nothing is hidden
    plain = charts.vocabulary_heatmap(df.filter(~hidden).drop("share__hidden", "n_pupils__hidden"), "x", 10)
    assert "”..”" not in json.dumps(plain.to_dict(), ensure_ascii=False)


def test_a_stacked_share_keeps_its_own_length_when_the_others_are_hidden() -> None:
    """The normalised stack drew the one shown share of a row (Minskat, 20 %) across the whole
    row; each share now keeps its place and length, and the hidden ones' room shows `..`."""
    girls, all_ = GENDER_ORDER[1], GENDER_ORDER[0]
    rows_ = [(g, d) for g in (all_, girls) for d in DIRECTIONS]
    share = {all_: [0.3, 0.5, 0.2], girls: [0.2, 0.45, 0.35]}
    df = pl.DataFrame(
        {
            "gender_label": [g for g, _ in rows_],
            "direction": [d for _, d in rows_],
            "n": [50 if g == all_ else 20 for g, _ in rows_],
            "share": [share[g][DIRECTIONS.index(d)] for g, d in rows_],
        }
    ).with_columns((pl.col("share") * pl.col("n")).round().cast(pl.Int64).alias("k"))
    df = _hide(df, (pl.col("gender_label") == girls) & (pl.col("direction") != DIRECTIONS[0]), ("k", "share"))
    svg = _static_svg(charts.pass_change_individual(df, 10))
    widths = {
        (f["Grupp"], f["Förändring"]): float(re.search(r"h([\d.]+)", d).group(1))
        for a, d in re.findall(r'<path aria-label="([^"]*)"[^>]*?d="([^"]+)"', svg)
        if "Förändring" in (f := label_fields(a))
    }
    assert widths == {
        (all_, DIRECTIONS[0]): pytest.approx(0.3 * 480),
        (all_, DIRECTIONS[1]): pytest.approx(0.5 * 480),
        (all_, DIRECTIONS[2]): pytest.approx(0.2 * 480),
        (girls, DIRECTIONS[0]): pytest.approx(0.2 * 480),
    }
    dots = re.findall(r'<text aria-label="([^"]*)"[^>]*>\.\.</text>', svg)
    assert sorted(label_fields(a)["Förändring"] for a in dots) == sorted(DIRECTIONS[1:])


def test_a_district_chart_names_its_hidden_years_and_districts() -> None:
    """A district whose every year was hidden vanished from "Inskrivna elever per stadsdel och
    år" without a word; the subtitle names what is hidden, and no bar is drawn for it."""
    grid = list(itertools.product(["Farsta", "Skarpnäck", "Enskede"], [2015, 2016]))
    df = pl.DataFrame(
        {"district": [d for d, _ in grid], "year": [y for _, y in grid], "n_pupils": [31 + i for i in range(len(grid))]}
    )
    hidden = (pl.col("district") == "Farsta") | ((pl.col("district") == "Enskede") & (pl.col("year") == 2015))
    chart = charts.enrolled_by_district(_hide(df, hidden, ("n_pupils",)), 10)
    subtitle = chart.to_dict()["title"]["subtitle"]
    assert "Döljs av röjandekontrollen: Farsta 2015, 2016; Enskede 2015." in " ".join(subtitle)
    # wrapped: one long line made the printed chart as wide as the line, then scaled it down
    long_names = df.with_columns(pl.col("district") + " stadsdelsområde")
    many = _hide(long_names, pl.col("district") != "Farsta stadsdelsområde", ("n_pupils",))
    assert all(len(line) <= 90 for line in charts.enrolled_by_district(many, 10).to_dict()["title"]["subtitle"])
    cells = facet_cells(_static_svg(chart))
    bars = {(c["column"], label_fields(i["label"])["År"]) for c in cells for i in c["items"]}
    assert bars == {("Skarpnäck", "2015"), ("Skarpnäck", "2016"), ("Enskede", "2016")}
    assert not any("Döljs" in line for line in charts.enrolled_by_district(df, 10).to_dict()["title"]["subtitle"])


def hidden_chart_examples() -> dict[str, object]:
    """Every chart whose figures disclosure control can hide, with some of them hidden (for
    the browser test that hovers every mark), by title."""
    eligibility = _eligibility(
        ((pl.col("measure") == MEASURES["eligible_hp_es"]) & (pl.col("gender_label") == GENDER_ORDER[1]))
        | ((pl.col("measure") == MEASURES["eligible_vocational"]) & (pl.col("pupil_group") == ENROLLED))
    )
    thresholds = _thresholds((pl.col("term_label") == "HT 2016") & (pl.col("threshold") == 0.10))
    attendance = _months([ENROLLED, OTHERS], range(-6, 13), (ENROLLED, 3))
    curve = _months(["x"], range(-14, 13), ("x", -2)).drop("pupil_group").rename({"mean": "att", "n": "n_treated"})
    curve = curve.rename({"mean__hidden": "att__hidden", "n__hidden": "n_treated__hidden"})
    grid = list(itertools.product(["Farsta", "Skarpnäck"], ["Mentor", "Läxhjälp"]))
    vocabulary = _hide(
        pl.DataFrame(
            {
                "district": [d for d, _ in grid],
                "term_value": [t for _, t in grid],
                "n_pupils": [12, 3, 20, 15],
                "n_district": [30, 30, 40, 40],
                "share": [0.4, 0.1, 0.5, 0.375],
            }
        ),
        (pl.col("district") == "Farsta") & (pl.col("term_value") == "Läxhjälp"),
        ("n_pupils", "share"),
    )
    girls = GENDER_ORDER[1]
    indiv = _hide(
        pl.DataFrame(
            {
                "gender_label": [g for g in GENDER_ORDER[:2] for _ in DIRECTIONS],
                "direction": list(DIRECTIONS) * 2,
                "n": [50] * 3 + [20] * 3,
                "k": [15, 25, 10, 4, 9, 7],
                "share": [0.3, 0.5, 0.2, 0.2, 0.45, 0.35],
            }
        ),
        (pl.col("gender_label") == girls) & (pl.col("direction") != DIRECTIONS[0]),
        ("k", "share"),
    )
    group = _hide(
        pl.DataFrame({"gender_label": GENDER_ORDER, "n": [50, 20, 30], "change": [0.03, -0.02, 0.05]}).with_columns(
            (pl.col("change") - 0.04).alias("lo"), (pl.col("change") + 0.04).alias("hi")
        ),
        pl.col("gender_label") == girls,
        ("n", "change", "lo", "hi"),
    )
    enrolled = _hide(
        pl.DataFrame(
            {
                "district": ["Farsta", "Farsta", "Skarpnäck", "Skarpnäck"],
                "year": [2015, 2016] * 2,
                "n_pupils": [31, 40, 22, 25],
            }
        ),
        (pl.col("district") == "Farsta") & (pl.col("year") == 2015),
        ("n_pupils",),
    )
    examples = [
        charts.grade9_eligibility(eligibility, 10),
        charts.absence_thresholds(thresholds, 0.15, 10),
        charts.attendance_event_time(attendance, 10),
        charts.effect_event_curve(curve, 10),
        charts.vocabulary_heatmap(vocabulary, "Insatser per stadsdel", 10),
        charts.pass_change_individual(indiv, 10),
        charts.pass_change_group(group, 10),
        charts.enrolled_by_district(enrolled, 10),
    ]
    return {c.to_dict()["description"]: c for c in examples}
