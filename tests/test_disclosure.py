"""Disclosure control: every leak found in the landed report reproduced on small tables,
and shown closed by the layer; the audit checked against an independent attack."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from pipelines.analysis import evaluation as ev
from pipelines.analysis import figures
from pipelines.analysis import followup as fu
from pipelines.analysis.disclosure import ALL, DisclosureError, Publication, key, keyed, read_table_csv
from pipelines.report.tables import ci, col, enrolled_table, html_table

DISTRICTS = ["Enskede-Årsta-Vantör", "Farsta", "Skarpnäck", "Älvsjö"]
# Enrolled per district and year; Enskede-Årsta-Vantör 2013 = 50 - (10 + 10 + 25) = 5 (the example).
ENROLLED = {
    "Enskede-Årsta-Vantör": [5, 10, 10, 25],
    "Farsta": [5, 6, 8, 30],
    "Skarpnäck": [5, 5, 14, 34],
    "Älvsjö": [5, 4, 10, 12],
}
YEARS = [2013, 2014, 2015, 2016]


def attack(published: dict, hidden: list, equations: list[tuple[list, list]]) -> dict:
    """An attacker's integer program, independent of the layer: each equation is
    (plus-terms, minus-terms) over cell names; published values are constants, hidden
    cells unknown integers >= 1 (zeros are shown). Returns hidden cell -> (min, max)."""
    var = {h: i for i, h in enumerate(hidden)}
    rows, rhs = [], []
    for plus, minus in equations:
        row, const = np.zeros(len(var)), 0.0
        for sign, cells in ((1, plus), (-1, minus)):
            for c in cells:
                if c in var:
                    row[var[c]] += sign
                else:
                    const += sign * published[c]
        if row.any():
            rows.append(row)
            rhs.append(-const)
    cons = [LinearConstraint(np.array(rows), rhs, rhs)] if rows else []
    out = {}
    for h, i in var.items():
        c = np.zeros(len(var))
        c[i] = 1
        lo = milp(c, integrality=np.ones(len(var)), bounds=Bounds(1, np.inf), constraints=cons)
        hi = milp(-c, integrality=np.ones(len(var)), bounds=Bounds(1, np.inf), constraints=cons)
        out[h] = (lo.fun if lo.status == 0 else -np.inf, -hi.fun if hi.status == 0 else np.inf)
    return out


def enrolled_frame(districts=DISTRICTS) -> pl.DataFrame:
    rows = [(d, y, ENROLLED[d][i]) for d in districts for i, y in enumerate(YEARS)]
    rows += [(fu.TOTAL, y, sum(ENROLLED[d][i] for d in districts)) for i, y in enumerate(YEARS)]
    return pl.DataFrame(rows, schema=["district", "year", "n_pupils"], orient="row")


def register_enrolled(pub: Publication, frame: pl.DataFrame, marker: str = ALL) -> None:
    """As the report does: the district x year table, and each district's total in another table."""
    pub.table(
        "enrolled",
        frame,
        counts={
            "n_pupils": lambda r: key(
                "enrolled", district=marker if r["district"] == fu.TOTAL else r["district"], year=r["year"]
            )
        },
        labels=["year"],
    )
    names = [d for d in frame["district"].unique().to_list() if d != fu.TOTAL]
    pub.sum_over("enrolled", "district", total=marker, members=names)
    pub.sum_over("enrolled", "year", total=ALL, members=YEARS)


def district_totals(districts=DISTRICTS) -> pl.DataFrame:
    return pl.DataFrame({"district": districts, "n": [sum(ENROLLED[d]) for d in districts]})


def test_min_cell_never_below_five() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        Publication(4)


def test_enrolled_cell_recoverable_from_both_margins_is_protected() -> None:
    """Leak: secondary suppression protected the year totals only, while district totals were
    published elsewhere; 50 - (10 + 10 + 25) gave 5 exactly."""
    pub = Publication(10)
    register_enrolled(pub, enrolled_frame())
    pub.table(
        "district_totals", district_totals(), counts={"n": lambda r: key("enrolled", district=r["district"], year=ALL)}
    )
    prot = pub.protect()
    shown = prot["enrolled"]
    assert (
        shown.filter((pl.col("district") == "Enskede-Årsta-Vantör") & (pl.col("year") == 2013))["n_pupils"][0] is None
    )
    assert prot.audit_passed and prot.n_primary == 8
    # the attacker's own program over what is shown: every hidden cell keeps a range of at least 10
    published, hidden = {}, []
    for r in shown.iter_rows(named=True):
        name = (r["district"], r["year"])
        (hidden.append(name) if r["n_pupils__hidden"] else published.__setitem__(name, r["n_pupils"]))
    for r in prot["district_totals"].iter_rows(named=True):
        published[(r["district"], "all")] = r["n"]
    eqs = [([(fu.TOTAL, y)], [(d, y) for d in DISTRICTS]) for y in YEARS]
    eqs += [([(d, "all")], [(d, y) for y in YEARS]) for d in DISTRICTS]
    for cell, (lo, hi) in attack(published, hidden, eqs).items():
        assert hi - lo >= 10, (cell, lo, hi)


def test_the_attack_finds_the_leak_without_the_layer() -> None:
    """The independent attack is not a test that cannot fail: on primary suppression alone it
    recovers the 5."""
    published = {(d, y): ENROLLED[d][i] for d in DISTRICTS for i, y in enumerate(YEARS) if ENROLLED[d][i] >= 10}
    hidden = [(d, y) for d in DISTRICTS for i, y in enumerate(YEARS) if ENROLLED[d][i] < 10]
    published |= {(fu.TOTAL, y): sum(ENROLLED[d][i] for d in DISTRICTS) for i, y in enumerate(YEARS)}
    published |= {(d, "all"): sum(ENROLLED[d]) for d in DISTRICTS}
    eqs = [([(fu.TOTAL, y)], [(d, y) for d in DISTRICTS]) for y in YEARS]
    eqs += [([(d, "all")], [(d, y) for y in YEARS]) for d in DISTRICTS]
    ranges = attack(published, hidden, eqs)
    assert ranges[("Enskede-Årsta-Vantör", 2013)] == (5, 5)


def test_attrition_row_recoverable_from_gender_rows_and_the_overall_table_is_protected() -> None:
    """Leak: the Älvsjö row was `..` but followed from the gender rows, the overall attrition
    table and the seven other districts (330 - 299 = 31, 130 - 120 = 10, 126 - 117 = 9)."""
    rows = [
        ("Kön", "Flickor", 154, 67, 65),
        ("Kön", "Pojkar", 176, 63, 61),
        ("Stadsdel", "A", 299 - 31 * 0, 120, 117),
        ("Stadsdel", "Älvsjö", 31, 10, 9),
    ]
    df = pl.DataFrame(rows, schema=["label", "reason", "n", "n_matched", "n_complete"], orient="row")
    df = df.with_columns((pl.col("n_complete") / pl.col("n")).alias("share"))
    pub = Publication(10)
    pub.table(
        "attrition_by_group",
        df,
        counts={
            "n": figures.group_key("pupils", 2016),
            "n_matched": figures.group_key("matched", 2016),
            "n_complete": figures.group_key("complete", 2016),
        },
        rests_on={"share": ["n", "n_complete"]},
    )
    overall = pl.DataFrame({"step": ["inskrivna", "matchade", "kompletta"], "n": [330, 130, 126]})
    keys = [key(p, gender=ALL, district=ALL, through=2016) for p in ("pupils", "matched", "complete")]
    pub.table("attrition", overall.with_row_index("i"), counts={"n": lambda r: keys[r["i"]]}, labels=["i"])
    for population in ("pupils", "matched", "complete"):
        pub.sum_over(population, "gender", total=ALL)
        pub.sum_over(population, "district", total=ALL)
    prot = pub.protect()
    out = prot["attrition_by_group"]
    assert out.filter(pl.col("reason") == "Älvsjö")["n_complete"][0] is None
    # with only one other district, hiding 9 means hiding its partner in the same column
    assert out.filter(pl.col("reason") == "A")["n_complete"][0] is None
    assert prot.audit_passed


def test_pojkar_as_samtliga_minus_flickor_is_protected_at_min_cell_37() -> None:
    """Leak: Samtliga/Flickor/Pojkar had primary suppression only; with --min-cell 37,
    Pojkar = Samtliga - Flickor gave n = 36, k = 16."""
    df = pl.DataFrame(
        {"gender_label": ["Samtliga", "Flickor", "Pojkar"], "n": [80, 44, 36], "k": [40, 24, 16]}
    ).with_columns((pl.col("k") / pl.col("n")).alias("share"))
    pub = Publication(37)
    pub.table("g", df, counts={"n": keyed("pupils", "gender_label"), "k": keyed("eligible", "gender_label")})
    for population in ("pupils", "eligible"):
        pub.sum_over(population, "gender_label", total="Samtliga", members=["Flickor", "Pojkar"])
    for g in ("Samtliga", "Flickor", "Pojkar"):
        pub.share(key("eligible", gender_label=g), key("pupils", gender_label=g))
    prot = pub.protect()
    out = prot["g"]
    pojkar = out.filter(pl.col("gender_label") == "Pojkar").row(0, named=True)
    assert pojkar["n"] is None and pojkar["k"] is None and pojkar["share"] is None
    # Samtliga - Flickor must not give Pojkar back: one of them is hidden too
    others = out.filter(pl.col("gender_label") != "Pojkar")
    assert others["n"].null_count() >= 1 and others["k"].null_count() >= 1
    assert all(hi - lo >= 37 for lo, hi in prot.ranges.values())


def test_heatmap_share_resting_on_one_pupil_is_hidden() -> None:
    """Leak: heatmaps suppressed by the district's denominator, so 1 of 37 ("Annat") showed."""
    df = pl.DataFrame(
        {
            "district": ["Farsta", "Farsta"],
            "term_value": ["Annat", "Hög frånvaro"],
            "n_pupils": [1, 30],
            "n_district": [37, 37],
        }
    ).with_columns((pl.col("n_pupils") / pl.col("n_district")).alias("share"))
    pub = Publication(10)
    pub.table(
        "reasons",
        df,
        counts={
            "n_pupils": keyed("reason", "district", "term_value"),
            "n_district": keyed("district_pupils", "district"),
        },
    )
    for r in df.iter_rows(named=True):
        pub.share(
            key("reason", district=r["district"], term_value=r["term_value"]),
            key("district_pupils", district="Farsta"),
            complement=False,
        )
    out = pub.protect()["reasons"]
    assert out["share"].to_list()[0] is None and out["share"].to_list()[1] == pytest.approx(30 / 37)


def test_subset_report_keeps_the_full_reports_pattern(tmp_path) -> None:
    """Leak: a district-subset report published its own total; 22 minus the full report's
    Skarpnäck figure (14) gave Farsta 2015 = 8, hidden in both."""
    full = Publication(10)
    register_enrolled(full, enrolled_frame())
    full_prot = full.protect()
    assert (
        full_prot["enrolled"].filter((pl.col("district") == "Farsta") & (pl.col("year") == 2015))["n_pupils"][0] is None
    )
    pattern = full_prot.write_pattern(tmp_path)
    assert "8" not in [
        str(c["value"]) for c in full_prot.pattern()["cells"] if c["key"][0] == "enrolled" and c["value"] is None
    ]

    subset = ["Farsta", "Skarpnäck"]
    marker = figures.subset_marker(subset)
    pub = Publication(10, prior=pattern)
    register_enrolled(pub, enrolled_frame(subset), marker)
    prot = pub.protect()
    out = prot["enrolled"]
    cell = lambda d, y: out.filter((pl.col("district") == d) & (pl.col("year") == y)).row(0, named=True)  # noqa: E731
    assert cell("Farsta", 2015)["n_pupils"] is None  # hidden in the full report: hidden here
    assert cell("Skarpnäck", 2015)["n_pupils"] == 14  # shown in the full report: nothing to gain by hiding
    assert cell(fu.TOTAL, 2015)["n_pupils"] is None  # 22 would give Farsta away
    assert prot.audit_passed


def test_a_subset_without_the_full_reports_first_year_is_not_refused(tmp_path) -> None:
    """Bug: a subset with no enrolments in the first year summed the hidden all-district
    total over the subset's years only; with the full report's own relation that
    contradicted itself, and the report was refused as an infeasible audit."""
    full = Publication(10)
    register_enrolled(full, enrolled_frame())
    for d in DISTRICTS:  # as the report does: each district's total, implied but not shown
        full.count(key("enrolled", district=d, year=ALL), sum(ENROLLED[d]), internal=True)
    full.count(key("enrolled", district=ALL, year=ALL), sum(map(sum, ENROLLED.values())), internal=True)
    pattern = full.protect().write_pattern(tmp_path)
    frame = enrolled_frame(["Farsta", "Skarpnäck"]).filter(pl.col("year") > YEARS[0])
    pub = Publication(10, prior=pattern)
    pub.table(
        "enrolled",
        frame,
        counts={
            "n_pupils": lambda r: key(
                "enrolled", district="Farsta+Skarpnäck" if r["district"] == fu.TOTAL else r["district"], year=r["year"]
            )
        },
        labels=["year"],
    )
    pub.sum_over("enrolled", "district", total="Farsta+Skarpnäck", members=["Farsta", "Skarpnäck"])
    pub.sum_over("enrolled", "year", total=ALL, members=YEARS[1:])  # the subset's years
    prot = pub.protect()
    assert prot.audit_passed


def test_a_subset_of_one_district_is_not_refused(tmp_path) -> None:
    """Bug: with one district, the subset's total is that district's own cell; `total = total`
    made the cell look alone in its relation, and the report was refused."""
    full = Publication(10)
    register_enrolled(full, enrolled_frame())
    pattern = full.protect().write_pattern(tmp_path)
    pub = Publication(10, prior=pattern)
    marker = figures.subset_marker(["Älvsjö"])
    register_enrolled(pub, enrolled_frame(["Älvsjö"]), marker)
    prot = pub.protect()
    assert prot.audit_passed
    assert prot["enrolled"].filter(pl.col("year") == 2014)["n_pupils"].to_list() == [None, None]  # 4 pupils


def test_refuses_with_a_message_when_no_safe_pattern_is_found() -> None:
    """One round of the loop is not enough for the enrolment table with both margins: the
    layer refuses rather than publish a pattern the audit has not passed."""
    pub = Publication(10)
    register_enrolled(pub, enrolled_frame())
    pub.table(
        "district_totals",
        district_totals(),
        counts={"n": lambda r: key("enrolled", district=r["district"], year=ALL)},
    )
    with pytest.raises(DisclosureError, match="no safe suppression pattern"):
        pub.protect(max_rounds=1)


def test_what_an_earlier_report_gave_away_does_not_block_a_later_one(tmp_path) -> None:
    """An earlier publication showed a total and one part; the other part follows from it. A
    later report cannot take that back: it hides the part, protects everything else, and
    still publishes."""
    first = Publication(10)
    df = pl.DataFrame({"g": ["all", "a"], "n": [20, 12]})
    first.table("t", df, counts={"n": keyed("pupils", "g")})
    pattern = first.protect().write_pattern(tmp_path)
    second = Publication(10, prior=pattern)
    second.table("u", pl.DataFrame({"g": ["b", "c"], "n": [8, 3]}), counts={"n": keyed("pupils", "g")})
    second.equal_sum(key("pupils", g="all"), [key("pupils", g="a"), key("pupils", g="b")])
    prot = second.protect()
    assert prot["u"]["n"].to_list() == [None, None]


def test_one_name_for_two_populations_is_an_error() -> None:
    pub = Publication(10)
    pub.table("a", pl.DataFrame({"n": [12]}), counts={"n": lambda r: key("pupils")})
    with pytest.raises(ValueError, match="registered as 12 and as 13"):
        pub.table("b", pl.DataFrame({"n": [13]}), counts={"n": lambda r: key("pupils")})


def test_a_relation_that_does_not_hold_is_an_error() -> None:
    pub = Publication(10)
    pub.table("a", pl.DataFrame({"g": ["all", "x", "y"], "n": [30, 20, 15]}), counts={"n": keyed("p", "g")})
    pub.equal_sum(key("p", g="all"), [key("p", g="x"), key("p", g="y")])
    with pytest.raises(ValueError, match="smaller than the sum"):
        pub.protect()


def test_tables_show_dots_per_cell_and_csv_has_the_same_cells(tmp_path) -> None:
    pub = Publication(10)
    register_enrolled(pub, enrolled_frame())
    prot = pub.protect()
    html = enrolled_table(prot["enrolled"])
    prot.export("enrolled", html, tmp_path)
    caption, rows = read_table_csv(tmp_path / "enrolled.csv")
    assert caption.startswith("Elever inskrivna")
    assert rows[0] == ["Stadsdel", "2013", "2014", "2015", "2016"]
    cells = [c for r in rows[1:] for c in r[1:]]
    assert cells.count("..") == html.count('<td class="num">..</td>') >= 6
    assert "5" not in cells and "4" not in cells and "8" not in cells  # no small count anywhere


def test_a_ci_resting_on_a_hidden_count_shows_dots() -> None:
    df = pl.DataFrame({"label": ["a"], "n": [40], "k": [3], "share": [0.075], "lo": [0.02], "hi": [0.2]})
    pub = Publication(10)
    pub.table(
        "t",
        df,
        counts={"n": keyed("n", "label"), "k": keyed("k", "label")},
        rests_on={"share": ["k", "n"], "lo": ["k", "n"], "hi": ["k", "n"]},
    )
    out = pub.protect()["t"]
    html = html_table(
        out,
        {
            "label": ("", col("label")),
            "n": ("n", col("n", "int")),
            "share": ("s", col("share", "pct")),
            "ci": ("ci", ci()),
        },
    )
    assert ">40<" in html and html.count(">..<") == 2 and "8 %" not in html


# --- sentences are written from protected numbers only ------------------------------------
def test_text_says_too_small_when_the_effect_rests_on_five_pupils() -> None:
    """Leak: the 2013 report printed "Skattningen bygger på 5 inskrivna och 16
    jämförelseelever i 3 skolor" and "en minskning som inte förklaras av slumpen" beside `..`."""
    row = {
        "outcome": "absence_rate",
        "measure": "Frånvaro",
        "n_eligible": 6,
        "n_treated": 5,
        "n_comparison": 16,
        "difference": -0.04,
        "lo": -0.07,
        "hi": -0.01,
        "effect_size": -0.3,
        "size_kind": "Hedges g",
        "evalue": 2.0,
        "evalue_ci": 1.2,
        "baseline": "uppfyllt",
    }
    pub = Publication(10)
    pub.table(
        "s",
        pl.DataFrame([row]),
        counts={
            "n_eligible": lambda r: key("eligible"),
            "n_treated": lambda r: key("in_estimate"),
            "n_comparison": lambda r: key("cmp"),
        },
        rests_on={
            c: ["n_treated", "n_comparison"] for c in ("difference", "lo", "hi", "effect_size", "evalue", "evalue_ci")
        },
    )
    text = ev.text_effect(pub.protect().row("s"))
    assert "för få elever" in text
    assert "5 inskrivna" not in text and "16" not in text and "slumpen" not in text


def test_text_generators_with_hidden_inputs() -> None:
    event = pl.DataFrame(
        {
            "event_month": [-3, 5],
            "pupil_group": [fu.ENROLLED] * 2,
            "mean": [None, None],
            "lo": [None, None],
            "hi": [None, None],
            "n": [None, None],
        },
        schema={
            "event_month": pl.Int64,
            "pupil_group": pl.String,
            "mean": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
            "n": pl.Int64,
        },
    )
    assert "för få elever" in fu.text_attendance(event)
    indiv = pl.DataFrame(
        {
            "gender_label": [fu.ALL],
            "direction": ["Ökat"],
            "k": [None],
            "n": [None],
            "share": [None],
            "lo": [None],
            "hi": [None],
        },
        schema={
            "gender_label": pl.String,
            "direction": pl.String,
            "k": pl.Int64,
            "n": pl.Int64,
            "share": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
        },
    )
    group = pl.DataFrame(
        {"gender_label": [fu.ALL], "n": [None], "change": [None], "lo": [None], "hi": [None]},
        schema={"gender_label": pl.String, "n": pl.Int64, "change": pl.Float64, "lo": pl.Float64, "hi": pl.Float64},
    )
    assert "För få elever" in fu.text_pass_change(indiv, group)
    effects = pl.DataFrame(
        {
            "outcome": ["absence_rate"],
            "measure": ["x"],
            "n_eligible": [None],
            "n_treated": [None],
            "difference": [None],
            "lo": [None],
            "hi": [None],
            "evalue": [None],
            "evalue_ci": [None],
        },
        schema={
            "outcome": pl.String,
            "measure": pl.String,
            "n_eligible": pl.Int64,
            "n_treated": pl.Int64,
            "difference": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
            "evalue": pl.Float64,
            "evalue_ci": pl.Float64,
        },
    )
    assert "för få elever" in ev.text_headlines(effects, {"p_value": None})
    assert ev.text_sensitivity(effects) == "- Ingen skattning att pröva."
    left = pl.DataFrame(
        {"measure": ["x"], "n": [None], "absence": [None], "share_passed": [None]},
        schema={"measure": pl.String, "n": pl.Int64, "absence": pl.Float64, "share_passed": pl.Float64},
    )
    assert "färre än 10" in ev.text_left_out(left, 10)
    assert fu.describe_interval(None, None, None).startswith("För få elever")


def test_a_shown_share_with_a_hidden_numerator_never_reaches_a_sentence() -> None:
    """The share of pupils who improved rests on its count: hidden with it, the sentence says too few."""
    rows = pl.DataFrame(
        {"gender_label": [fu.ALL] * 3, "direction": list(fu.DIRECTIONS), "k": [30, 26, 4], "n": [60] * 3}
    )
    rows = fu.with_share_ci(rows)
    pub = Publication(10)
    pub.table("indiv", rows, counts={"k": keyed("pc", "gender_label", "direction"), "n": keyed("pcn", "gender_label")})
    group = pl.DataFrame({"gender_label": [fu.ALL], "n": [60], "change": [0.01], "lo": [-0.02], "hi": [0.04]})
    pub.table("group", group, counts={"n": keyed("pcn", "gender_label")})
    pub.equal_sum(key("pcn", gender_label=fu.ALL), [key("pc", gender_label=fu.ALL, direction=d) for d in fu.DIRECTIONS])
    prot = pub.protect()
    text = fu.text_pass_change(prot["indiv"], prot["group"])
    assert "För få elever" in text and "4" not in text.split("Stadens")[0]


def test_a_later_report_keeps_what_an_earlier_one_hid(tmp_path) -> None:
    """The 2015 and 2016 reports publish the same enrolment cells for 2013-2015: what one hid,
    the other hides too, and the audit covers both together."""
    first = Publication(10)
    frame_2015 = enrolled_frame().filter(pl.col("year") <= 2015)
    first.table(
        "enrolled",
        frame_2015,
        counts={
            "n_pupils": lambda r: key(
                "enrolled", district=ALL if r["district"] == fu.TOTAL else r["district"], year=r["year"]
            )
        },
        labels=["year"],
    )
    first.sum_over("enrolled", "district", total=ALL, members=DISTRICTS)
    hidden_2015 = first.protect()
    pattern = hidden_2015.write_pattern(tmp_path / "2015")
    later = Publication(10, prior=[pattern])
    register_enrolled(later, enrolled_frame())
    prot = later.protect()
    for k in hidden_2015.hidden_keys:
        assert prot.is_hidden(k) or later.cells[k].internal
    assert prot.audit_passed and len(hidden_2015.hidden_keys) >= 5


def test_changed_data_since_an_earlier_report_is_refused(tmp_path) -> None:
    first = Publication(10)
    first.table("t", pl.DataFrame({"g": ["a"], "n": [40]}), counts={"n": keyed("pupils", "g")})
    pattern = first.protect().write_pattern(tmp_path)
    later = Publication(10, prior=pattern)
    with pytest.raises(DisclosureError, match="published as 40 by an earlier report and is 41 now"):
        later.table("t", pl.DataFrame({"g": ["a"], "n": [41]}), counts={"n": keyed("pupils", "g")})


def test_a_headline_count_gives_way_when_the_other_bound_can_move() -> None:
    """Demo at min_cell 37: the pupils left out of the estimate (a small count) made the
    eligible total a hidden cell pinned from below by the headline count (eligible = in
    estimate + left out) and from above by the gender partition. Widening either bound is
    enough; the layer used to demand both and hid the count the estimate rests on."""
    pub = Publication(10)
    pub.table(
        "effects",
        pl.DataFrame({"n_eligible": [103], "n_treated": [100]}),
        counts={"n_eligible": lambda r: key("eligible"), "n_treated": lambda r: key("in_estimate")},
    )
    pub.table("left_out", pl.DataFrame({"n": [3]}), counts={"n": lambda r: key("left_out")})
    pub.equal_sum(key("eligible"), [key("in_estimate"), key("left_out")])
    pub.prefer_shown(key("in_estimate"))
    groups = pl.DataFrame({"g": ["Flickor", "Pojkar"], "eligible": [50, 53], "pupils": [55, 60]})
    pub.table(
        "groups",
        groups,
        counts={"eligible": lambda r: key("eligible_g", g=r["g"]), "pupils": lambda r: key("pupils_g", g=r["g"])},
    )
    pub.equal_sum(key("eligible"), [key("eligible_g", g="Flickor"), key("eligible_g", g="Pojkar")], gap=False)
    for g in ("Flickor", "Pojkar"):
        pub.at_most(key("eligible_g", g=g), key("pupils_g", g=g))
    prot = pub.protect()
    assert prot.audit_passed
    assert prot.is_hidden(key("left_out")) and prot.is_hidden(key("eligible"))
    assert not prot.is_hidden(key("in_estimate"))  # the estimate's own count stays
