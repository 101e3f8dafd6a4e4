"""Prose is filled from the constants it states: change a constant and the sentence follows."""

from __future__ import annotations

import json

import polars as pl

from pipelines.analysis import estimands as est
from pipelines.analysis import evaluation as ev
from pipelines.analysis import followup as fu
from pipelines.config import REPO_DIR
from pipelines.rules import reference


def test_enrolment_targets_sentence_follows_the_documented_figures(monkeypatch) -> None:
    assert "150" in reference.targets_sentence() and "127" in reference.targets_sentence()
    targets = [(*t[:3], t[3] + 7, t[4]) for t in reference.ENROLMENT_TARGETS]
    monkeypatch.setattr(reference, "ENROLMENT_TARGETS", targets)
    text = reference.targets_sentence()
    assert all(f" {t[3]} " in text for t in targets) and " 150 " not in text


def test_the_2015_followup_share_is_the_constant(monkeypatch) -> None:
    indiv = pl.DataFrame(
        {"gender_label": ["Samtliga"], "direction": ["Ökat"], "share": [0.5], "lo": [0.4], "hi": [0.6], "n": [40]}
    )
    group = pl.DataFrame({"gender_label": ["Samtliga"], "change": [0.01], "lo": [-0.02], "hi": [0.04]})
    assert "56\u00a0%" in fu.text_pass_change(indiv, group)
    monkeypatch.setattr(fu, "FOLLOWUP_2015_SHARE_INCREASED", 0.61)
    text = fu.text_pass_change(indiv, group)
    assert "61\u00a0%" in text and "56" not in text


def test_the_methods_appendix_states_the_windows_and_limits_in_force(monkeypatch) -> None:
    text = ev.text_methods()
    assert "0,05 och 0,25" in text and "Månaderna 9–14" in text and "minst tre rapporterade månader av de åtta" in text
    monkeypatch.setattr(est, "WWC_ADJUSTABLE", 0.3)
    monkeypatch.setattr(est, "PRE_MONTHS", 6)
    monkeypatch.setattr(est, "ANTICIPATION_MONTHS", 2)
    text = ev.text_methods()
    assert "0,05 och 0,30" in text and "0,25" not in text
    assert "av de sex före" in text and "5–6 före" in text and "fram till två månader" in text
    assert "de sex månaderna före" in ev.text_design() and "fram till två månader" in ev.text_design()


def test_the_report_notebook_states_no_constant_by_hand() -> None:
    nb = json.loads((REPO_DIR / "notebooks" / "yearly_followup.ipynb").read_text(encoding="utf-8"))
    prose = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    from pipelines.report.sections import SECTIONS  # the sections' own prose

    prose += "\n".join(str(getattr(m, a, "")) for m in SECTIONS.values() for a in ("TITLE", "INTRO", "CONTEXT"))
    for stated in ("150", "127", "56 %", "0,25", "0,05", "åtta månader", "tre månader"):
        assert stated not in prose, stated


def test_the_absence_threshold_is_among_the_computed_ones() -> None:
    assert fu.absence_levels(0.15) == (0.10, 0.15, 0.20)
    assert fu.absence_levels(0.12) == (0.10, 0.12, 0.15, 0.20)
    for bad in (0, 1, 15):
        try:
            fu.absence_levels(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_the_summary_names_each_measure_once_and_a_hidden_share_plainly() -> None:
    from types import SimpleNamespace

    from pipelines.labels import ALL, ENROLLED, MEASURES
    from pipelines.report.sections import summary

    effect = {"measure": "Frånvaro 3–12 månader efter inskrivning", "difference": -0.097, "n_treated": 40}
    effect |= {"n_eligible": 50, "lo": -0.15, "hi": -0.04, "n_schools": 12, "pretrend_p": 0.6}
    effect |= {"robust_lo": -0.14, "robust_hi": -0.05, "verdict": "effect"}
    frames = {
        "attrition": pl.DataFrame({"step_no": [0], "n": [60]}),
        "effects": pl.DataFrame([effect]),
        "grade9_eligibility": pl.DataFrame(
            {"measure": [MEASURES["eligible_vocational"]], "gender_label": [ALL], "pupil_group": [ENROLLED]}
            | {"share": [None], "lo": [None], "hi": [None], "n": [None]},
            schema_overrides={"share": pl.Float64, "lo": pl.Float64, "hi": pl.Float64, "n": pl.Int64},
        ),
    }
    prot = type("P", (), {"__getitem__": lambda self, k: frames[k], "row": lambda self, k: {}})()
    lines = summary.findings(prot, SimpleNamespace(year=2016))
    effect_line = next(x for x in lines if "Frånvaro" in x)
    assert effect_line.count("Frånvaro 3–12 månader") == 1, effect_line
    eligibility = next(x for x in lines if "yrkesprogram" in x)
    assert "döljs av röjandekontrollen" in eligibility and ")(" not in eligibility.replace(" ", "")
    assert "ingen effekt" not in eligibility, eligibility


def test_a_hidden_pass_change_is_called_hidden_not_too_few_when_a_group_shows() -> None:
    """The 2015 report drew the boys' change beside a sentence saying there were too few pupils."""
    f = pl.Float64
    indiv = pl.DataFrame(
        {"gender_label": ["Samtliga", "Pojkar"], "direction": ["Ökat", "Ökat"], "share": [None, 0.5]}
        | {"lo": [None, 0.4], "hi": [None, 0.6], "n": [None, 62]},
        schema_overrides={"share": f, "lo": f, "hi": f, "n": pl.Int64},
    )
    group = pl.DataFrame(
        {"gender_label": ["Samtliga", "Pojkar"], "change": [None, 0.019], "lo": [None, -0.03], "hi": [None, 0.069]},
        schema_overrides={"change": f, "lo": f, "hi": f},
    )
    text = fu.text_pass_change(indiv, group)
    assert "döljs av röjandekontrollen" in text and "För få elever" not in text
    assert "diagrammen ovan" in text
    assert "För få elever" in fu.text_pass_change(indiv.clear(), group.clear())
