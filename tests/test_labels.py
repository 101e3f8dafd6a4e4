"""Codes and their Swedish labels: one mapping per code set, complete and in the report's order."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipelines import labels as lb
from pipelines.codes import Direction, Gender, Programme, PupilGroup, Scope, Source
from pipelines.config import REPO_DIR, REPORT_SQL_DIR

META_KEYS = {"rule", "message", "action", "column", "scope", "rule_from_value"}  # what validate.py reads


@pytest.mark.parametrize(
    ("codes", "mapping"),
    [
        (Gender, lb.GENDER),
        (PupilGroup, lb.PUPIL_GROUP),
        (Direction, lb.DIRECTION),
        (Source, lb.SOURCE),
        (Programme, lb.PROGRAMME),
    ],
)
def test_every_code_has_one_label(codes, mapping) -> None:
    assert set(mapping) == set(codes)
    assert len(set(mapping.values())) == len(mapping)


def test_the_report_order_of_genders() -> None:
    assert lb.GENDER_ORDER == ["Samtliga", "Flickor", "Pojkar"]
    assert lb.GENDER_ORDER[1:] == lb.GENDERS
    df = pl.DataFrame({"gender_label": ["Pojkar", "Samtliga", "Flickor"]})
    assert df.sort(lb.order("gender_label", lb.GENDER_ORDER))["gender_label"].to_list() == lb.GENDER_ORDER


def test_an_unknown_code_is_an_error_not_a_blank() -> None:
    df = pl.DataFrame({"pupil_group": ["enrolled", "Inskrivna i PPSS"]})
    with pytest.raises(pl.exceptions.InvalidOperationError):
        df.with_columns(lb.label("pupil_group", lb.PUPIL_GROUP))
    ok = pl.DataFrame({"pupil_group": ["enrolled", "others"]}).with_columns(lb.label("pupil_group", lb.PUPIL_GROUP))
    assert ok["pupil_group"].to_list() == [lb.ENROLLED, lb.OTHERS]


def test_report_queries_return_codes_not_swedish_labels() -> None:
    """Labels are never produced in SQL and matched in Python."""
    swedish = [*lb.PUPIL_GROUP.values(), *lb.SOURCE.values(), *lb.DIRECTION.values(), lb.ALL, lb.GIRLS, lb.BOYS]
    for path in REPORT_SQL_DIR.glob("*.sql"):
        text = path.read_text(encoding="utf-8")
        assert not [w for w in swedish if w in text], path.name
        if "pupil_group" in text:
            assert all(f"'{c}'" in text for c in PupilGroup), path.name


def test_expectation_meta_holds_only_what_validation_reads() -> None:
    for path in (REPO_DIR / "expectations").glob("*.json"):
        for e in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            meta = e.get("meta", {})
            assert set(meta) <= META_KEYS, (path.name, set(meta) - META_KEYS)
            assert {"rule", "message", "action"} <= set(meta), path.name
            assert meta.get("scope", Scope.ROW) in set(Scope), path.name
