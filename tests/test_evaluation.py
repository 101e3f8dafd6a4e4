"""The evaluation's estimators: hand-computed pieces, and simulated worlds with known truth.

The simulation has what defeats naive designs: absence that persists from month to month,
pupils chosen on their latest recorded absence (so it falls afterwards anyway), cohorts in
different calendar months with a seasonal swing, and school clusters. The estimator must
find nothing where there is no effect and recover the effect where there is one. The real
pipeline on generated demo worlds is tested in `test_methods.py`.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.analysis import evaluation as ev
from pipelines.analysis.sample import CELL, COVARIATES, analytics, entropy_weights


def test_hedges_g_hand_computed() -> None:
    # means 3 and 2, sample variances 2.5 and 2.5 -> pooled sd 1.5811; J = 1 - 3/(4*10-9) = 0.90323
    g = ev.hedges_g(np.array([1, 2, 3, 4, 5.0]), np.array([0, 1, 2, 3, 4.0]))
    assert g == pytest.approx(0.90323 * 1 / 1.58114, rel=1e-4)


def test_cox_index_and_wwc_classes() -> None:
    assert ev.cox_index(0.5, 0.5) == 0
    assert ev.cox_index(0.6, 0.5) == pytest.approx(np.log(1.5) / 1.65)
    assert [ev.wwc_class(d) for d in (0.05, -0.2, 0.3)] == ["uppfyllt", "kräver justering", "ej uppfyllt"]


def test_clustered_mean_hand_computed() -> None:
    # mean 2.5; cluster sums of deviations -2 and +2; CR1: sqrt(2/1 * 8) / 4 = 1
    mean, se, g = ev.clustered_mean(np.array([1.0, 2, 3, 4]), np.array(["a", "a", "b", "b"]))
    assert (mean, se, g) == (2.5, pytest.approx(1.0), 2)


def test_evalue_hand_computed() -> None:
    # VanderWeele & Ding: RR + sqrt(RR (RR - 1)); a protective RR is inverted first
    assert ev.evalue_rr(2.0) == pytest.approx(2 + np.sqrt(2))
    assert ev.evalue_rr(0.5) == pytest.approx(2 + np.sqrt(2))
    assert ev.evalue_rr(1.0) == 1.0


def test_entropy_weights_balance_each_cell_on_its_own_calendar_month() -> None:
    rng = np.random.default_rng(3)
    n = 400
    frame = pl.DataFrame(
        {
            "row": np.arange(n, dtype=np.int64),
            "cohort_month": np.where(np.arange(n) < 200, 24000, 24001),
            "school_year": 8,
            "gender": "F",
            "treated": np.isin(np.arange(n), [0, 1, 2, 200, 201]),
            **{
                c: rng.normal(size=n) * np.where(np.isin(np.arange(n), [0, 1, 2, 200, 201]), 0.3, 1) for c in COVARIATES
            },
        }
    ).with_columns(pl.concat_str([pl.col(c).cast(pl.String) for c in CELL], separator="|").alias("cell"))
    members, weights = entropy_weights(frame, COVARIATES)
    assert sorted(members["row"]) == [0, 1, 2, 200, 201]
    assert not set(weights["row"]) & {0, 1, 2, 200, 201}  # an enrolled pupil is never its own comparison
    for cell, part in weights.group_by("cell"):
        assert part["w"].sum() == pytest.approx(1.0)
        rows = frame.join(part, on="row")
        t = frame.filter(pl.col("treated") & (pl.col("cell") == cell[0]))
        for c in COVARIATES:  # weighted means meet the enrolled pupils' means
            assert (rows[c] * rows["w"]).sum() == pytest.approx(t[c].mean(), abs=0.05 * frame[c].std())


def test_a_pupil_beyond_every_comparison_is_left_out_not_forced() -> None:
    frame = pl.DataFrame(
        {
            "row": np.arange(50, dtype=np.int64),
            "cohort_month": 24000,
            "school_year": 8,
            "gender": "F",
            "treated": np.arange(50) == 0,
            **{c: np.r_[9.0, np.linspace(0, 1, 49)] for c in COVARIATES},
        }
    ).with_columns(pl.lit("24000|8").alias("cell"))
    members, _ = entropy_weights(frame, COVARIATES)
    assert members.is_empty()


def simulate(effect: float, seed: int, schools: int = 24, per_cell: int = 220) -> pl.DataFrame:
    """Evaluation candidates as `evaluation_candidates.sql` returns them, from a world with an
    AR(1) absence path, selection on last month's recorded absence, seasonal cohorts and
    school shocks; the enrolled pupils' absence falls by `effect` (a fraction) afterwards."""
    rng = np.random.default_rng(seed)
    frames = []
    for cohort in range(6):
        n = per_cell * 2
        school = rng.integers(0, schools, n)
        level = np.log(rng.lognormal(np.log(0.08), 0.6, n)) + rng.normal(0, 0.15, schools)[school]
        z = np.zeros((n, 20))
        z[:, 0] = rng.normal(0, 0.45, n)
        for k in range(1, 20):
            z[:, k] = 0.75 * z[:, k - 1] + rng.normal(0, 0.3, n)
        season = 0.15 * np.sin(np.arange(20) + cohort)  # calendar months differ between cohorts
        rate = np.clip(np.exp(level[:, None] + z + season + rng.normal(0, 0.1, (n, 20))), 0, 0.95)
        pre, post = rate[:, :8], rate[:, 11:20]  # months -8..-1 and +3..+11
        weight = np.exp(5.0 * pre[:, -1])  # chosen on last month's recorded absence, as social services do
        treated = np.zeros(n, bool)
        treated[rng.choice(n, n // 40, replace=False, p=weight / weight.sum())] = True
        y_post = np.where(treated, post.mean(axis=1) - effect, post.mean(axis=1))
        share = np.clip(0.95 - 1.5 * pre.mean(axis=1) + rng.normal(0, 0.05, n), 0, 1)
        prior = np.clip(share + rng.normal(0, 0.05, n), 0, 1)
        frames.append(
            pl.DataFrame(
                {
                    "cohort_month": 24_000 + cohort,
                    "cohort_term": 4_000,
                    "pupil_key": [f"p{cohort}-{i}" for i in range(n)],
                    "gender": rng.choice(["F", "M"], n),
                    "school_year": np.where(np.arange(n) < per_cell, 8, 9),
                    "school_unit_code": [f"s{s}" for s in school],
                    "own_month": pl.Series([24_000 + cohort if t else None for t in treated], dtype=pl.Int32),
                    "own_term": pl.Series([None] * n, dtype=pl.Int32),
                    "treated": treated,
                    "n_pre": 8,
                    "pre_mean": pre.mean(axis=1),
                    "pre_1": pre[:, 7],
                    "pre_2": pre[:, 6],
                    "pre_34": pre[:, 4:6].mean(axis=1),
                    "pre_5plus": pre[:, :4].mean(axis=1),
                    "base_share_passed": share,
                    "prior_share_passed": prior,
                    "base_merit": 200 * share + rng.normal(0, 10, n),
                    "prior_merit": 200 * prior + rng.normal(0, 10, n),
                    "base_absence": pre.mean(axis=1),
                    "post_mean": y_post,
                    "n_post": 9,
                    "later_share_passed": None,
                    "eligible_vocational": None,
                },
                schema_overrides={"later_share_passed": pl.Float64, "eligible_vocational": pl.Float64},
            )
        )
    return pl.concat(frames)


@pytest.mark.parametrize(("effect", "seed"), [(0.0, 11), (0.05, 12)])
def test_matched_did_recovers_truth_with_selection_on_a_peak(effect: float, seed: int) -> None:
    candidates = simulate(effect, seed)
    a = analytics(candidates)["absence_rate"]
    e = ev.estimate(a)
    assert e.n_enrolled / e.n_eligible >= 0.9  # the estimate covers the pupils served
    assert e.ci_low <= -effect <= e.ci_high
    assert abs(e.estimate + effect) < 3 * e.se
    if effect == 0:
        assert not e.certain  # no effect: no finding
    else:
        assert e.ci_high < 0  # a real effect is found


def test_naive_before_after_would_find_a_false_effect() -> None:
    """The simulated world is hard: the enrolled pupils' absence falls with no programme at
    all (regression to the mean after the peak they were chosen at)."""
    c = simulate(0.0, 11).filter(pl.col("treated"))
    assert (c["post_mean"] - c["pre_1"]).mean() < -0.03


def test_matched_did_coverage_over_many_worlds() -> None:
    covered = found_nothing = 0
    for seed in range(12):
        e = ev.estimate(analytics(simulate(0.0, 100 + seed, per_cell=150))["absence_rate"])
        covered += e.ci_low <= 0 <= e.ci_high
        found_nothing += not e.certain
    assert covered >= 10 and found_nothing >= 10
