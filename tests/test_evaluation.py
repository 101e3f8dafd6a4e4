"""The evaluation's estimators on data with known answers (simulation and hand-computed)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from pipelines.evaluation import (
    EVENT_MONTHS,
    EventPanel,
    cem,
    cluster_bootstrap,
    cox_index,
    did_event,
    hedges_g,
    wwc_class,
)


def test_hedges_g_hand_computed() -> None:
    # means 3 and 2, sample variances 2.5 and 2.5 -> pooled sd 1.5811; J = 1 - 3/(4*10-9) = 0.90323
    g = hedges_g(np.array([1, 2, 3, 4, 5.0]), np.array([0, 1, 2, 3, 4.0]))
    assert g == pytest.approx(0.90323 * 1 / 1.58114, rel=1e-4)


def test_cox_index_and_wwc_classes() -> None:
    assert cox_index(0.5, 0.5) == 0
    assert cox_index(0.6, 0.5) == pytest.approx(np.log(1.5) / 1.65)
    assert [wwc_class(d) for d in (0.05, -0.2, 0.3)] == ["uppfyllt", "kräver justering", "ej uppfyllt"]


def test_cem_weights_hand_example() -> None:
    month = date(2016, 3, 1)
    rows = [  # stratum A: 1 enrolled, 2 others; stratum B: 2 enrolled, 1 other; stratum C: only others
        ("t1", 1, "A", 0.15, 0.6, month),
        ("c1", 0, "A", 0.12, 0.7, None),
        ("c2", 0, "A", 0.18, 0.5, None),
        ("t2", 1, "B", 0.02, 1.0, month),
        ("t3", 1, "B", 0.03, 1.0, month),
        ("c3", 0, "B", 0.01, 1.0, None),
        ("c4", 0, "C", 0.01, 1.0, None),
    ]
    frame = pl.DataFrame(
        [
            {
                "pupil_key": k,
                "treated": t,
                "school_unit_code": s,
                "absence_rate": a,
                "share_passed": p,
                "enrolment_month": m,
                "term_index": 4031,
                "school_year": 8,
                "gender": "F",
            }
            for k, t, s, a, p, m in rows
        ]
    )
    matched = cem(frame)
    w = dict(zip(matched["pupil_key"], matched["weight"], strict=True))
    assert "c4" not in w  # no enrolled pupil in its stratum
    # matched: 3 enrolled, 3 others; weight = n_t/n_c * N_c/N_t
    assert w["t1"] == 1 and w["c1"] == pytest.approx(0.5) and w["c3"] == pytest.approx(2.0)
    assert sum(v for k, v in w.items() if k.startswith("c")) == pytest.approx(3.0)


def simulate(effect: float, seed: int, n_schools: int = 20, per_school: int = 30) -> EventPanel:
    """Pupils with school-level shocks, staggered entry, a common trend and a known effect."""
    rng = np.random.default_rng(seed)
    rows, treated, cluster = [], [], []
    for school in range(n_schools):
        shock = rng.normal(0, 0.02, len(EVENT_MONTHS))  # months hit a whole school alike
        for i in range(per_school):
            is_treated = i < per_school // 4
            level = rng.normal(0.16 if is_treated else 0.10, 0.04)
            trend = 0.001 * EVENT_MONTHS
            y = level + trend + shock + rng.normal(0, 0.02, len(EVENT_MONTHS))
            if is_treated:
                y = y + np.where(EVENT_MONTHS >= 0, effect, 0.0)
            y[rng.random(len(EVENT_MONTHS)) < 0.05] = np.nan  # months never reported
            rows.append(y)
            treated.append(is_treated)
            cluster.append(school)
    n = len(rows)
    return EventPanel(np.array(rows), np.array(treated), np.ones(n), np.array(cluster))


@pytest.mark.parametrize("effect", [-0.04, 0.0])
def test_event_did_recovers_a_known_effect_within_its_interval(effect: float) -> None:
    panel = simulate(effect, seed=7)
    att, overall = did_event(panel.y, panel.treated, panel.weight)
    _, draws = cluster_bootstrap(panel, reps=300, seed=1)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert lo <= effect <= hi
    assert abs(overall - effect) < 0.01
    assert np.all(np.abs(att[EVENT_MONTHS < 0]) < 0.02)  # no effect before enrolment
    if effect == 0.0:
        assert lo < 0 < hi  # no effect: the interval says so
    else:
        assert hi < 0  # a real effect: the interval excludes zero


def test_event_did_coverage_over_many_simulations() -> None:
    """Across 30 independent simulations the 95 % interval covers the truth in most of them."""
    covered = 0
    for seed in range(30):
        panel = simulate(-0.03, seed=100 + seed, n_schools=12, per_school=20)
        _, draws = cluster_bootstrap(panel, reps=150, seed=seed)
        lo, hi = np.percentile(draws, [2.5, 97.5])
        covered += lo <= -0.03 <= hi
    assert covered >= 25  # 95 % nominal; allow for bootstrap noise with 30 runs
