"""The demo generator: the declared planted defects are where they say, and only they fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.demo import world as demo
from pipelines.demo.world import DEFECTS, PLANTED_DEFECTS, DemoWorld, planted_quarantine, write_demo
from pipelines.rules.identity import InvalidIdentity, luhn_digit, luhn_ok, parse_identity

SEED, SCALE = 3, "tiny"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, DemoWorld]:
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, seed=SEED, scale=SCALE)
    return out, DemoWorld(SEED, SCALE)


def test_the_check_digit_is_the_identity_modules() -> None:
    assert not hasattr(demo, "_luhn_digit")
    assert luhn_digit("811218987") == 6 and luhn_ok("8112189876")  # Skatteverket's example
    world = DemoWorld(SEED, SCALE)
    for p in world.pupils:
        parse_identity(p.civic)  # every demo identity number is valid before the planted typos


def test_persons_with_a_planted_typo_and_only_they_fail_their_check_digit(written) -> None:
    out, world = written
    persons = []
    for page in sorted((out / "ss12000").glob("persons_*.json")):
        persons += json.loads(page.read_text(encoding="utf-8"))["data"]
    failing = []
    for i, person in enumerate(persons):
        try:
            parse_identity(person["civicNo"]["value"])
        except InvalidIdentity as e:
            assert e.rule == "civic_no_check_digit"
            failing.append(i)
    assert failing == DEFECTS["person_check_digit"].places(world)
    assert len(failing) == 2  # 1203 is beyond the tiny world's pupils


def test_every_defect_has_a_place_in_the_demo_world_and_a_rule() -> None:
    world = DemoWorld(2016, "demo")
    for defect in PLANTED_DEFECTS:
        assert defect.places(world), defect.name
        assert defect.rules and all(defect.quarantined(world).values())
    assert planted_quarantine(world)["civic_no_check_digit"] == 4  # three persons and a register row
    lost = set().union(*(d.pupils(world) for d in PLANTED_DEFECTS))
    assert len(lost) == 5 and all(world.pupils[i].index == i for i in lost)
