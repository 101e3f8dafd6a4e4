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
