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
from pipelines.analysis import evidence as evd
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
    # mean 2.5; cluster sums of deviations -2 and +2, each half the pupils: CR2 scales each by
    # (1 - 1/2)^(-1/2), so sqrt(2 * 4 + 2 * 4) / 4 = 1; two equal clusters: 1 degree of freedom
    mean, se, g, df = ev.clustered_mean(np.array([1.0, 2, 3, 4]), np.array(["a", "a", "b", "b"]))
    assert (mean, se, g, df) == (2.5, pytest.approx(1.0), 2, pytest.approx(1.0))
    # unequal: mean 3.2, sums -3.4 (2 pupils) and +3.4 (3 pupils); CR2 divides the squares by
    # 1 - 2/5 and 1 - 3/5: sqrt(11.56 / 0.6 + 11.56 / 0.4) / 5 = 1.38805 (CR1 would give 1.36)
    mean, se, g, _ = ev.clustered_mean(np.array([1.0, 2, 3, 4, 6]), np.array(list("aabbb")))
    assert (mean, se) == (pytest.approx(3.2), pytest.approx(np.sqrt(11.56 / 0.6 + 11.56 / 0.4) / 5))


def _cr2_by_matrices(d: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """CR2 and Bell-McCaffrey df of a mean the long way: (I - H_gg)^(-1/2) by eigendecomposition,
    G's columns (I - H)_g' A_g X_g (X'X)^(-1), df = tr(G'G)^2 / tr((G'G)^2)."""
    n = len(d)
    x = np.ones((n, 1))
    h = x @ x.T / n
    e = d - d.mean()
    meat, cols = 0.0, []
    for g in np.unique(clusters):
        idx = np.flatnonzero(clusters == g)
        vals, vecs = np.linalg.eigh(np.eye(len(idx)) - h[np.ix_(idx, idx)])
        a_g = vecs @ np.diag(vals**-0.5) @ vecs.T
        meat += float((x[idx].T @ a_g @ e[idx]).item() ** 2)
        cols.append((np.eye(n) - h)[:, idx] @ a_g @ x[idx] / n)
    gmat = np.hstack(cols)
    m = gmat.T @ gmat
    return float(np.sqrt(meat) / n), float(np.trace(m) ** 2 / np.trace(m @ m))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clustered_mean_cr2_and_bell_mccaffrey_df_match_the_matrix_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(7), rng.integers(1, 12, 7)).astype(str)
    d = rng.normal(size=len(clusters)) + rng.normal(size=7)[clusters.astype(int)]
    _, se, g, df = ev.clustered_mean(d, clusters)
    se_m, df_m = _cr2_by_matrices(d, clusters)
    assert g == 7 and se == pytest.approx(se_m) and df == pytest.approx(df_m)
    assert df <= 6 + 1e-9  # unequal schools: fewer degrees of freedom than schools less one


def test_bell_mccaffrey_df_of_equal_schools_is_schools_less_one() -> None:
    from pipelines.analysis.inference import bm_df

    assert bm_df(np.full(12, 5.0)) == pytest.approx(11.0)
    assert bm_df(np.array([40.0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])) < 5  # one school dominates


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
                    "district": [f"d{s % 4}" if t else None for s, t in zip(school, treated, strict=True)],
                    "n_pre": 8,
                    "raw_pre_mean": pre.mean(axis=1),
                    "pre_mean": pre.mean(axis=1),
                    "pre_1": pre[:, 7],
                    "pre_2": pre[:, 6],
                    "pre_34": pre[:, 4:6].mean(axis=1),
                    "pre_5plus": pre[:, :4].mean(axis=1),
                    "base_share_passed": share,
                    "prior_share_passed": prior,
                    "base_merit": 200 * share + rng.normal(0, 10, n),
                    "prior_merit": 200 * prior + rng.normal(0, 10, n),
                    "placebo_share_passed": prior,  # no draw: the worlds stay as they were
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


# --- the verdict follows the evidence (evidence.py) ---------------------------------------
def test_judge_withholds_an_effect_the_trend_or_few_schools_could_explain() -> None:
    certain = {"claimable": True, "n_schools": 20, "pretrend_p": 0.5, "robust_lo": -0.06, "robust_hi": -0.01}
    assert evd.judge(-0.04, -0.05, -0.03, **certain) == evd.EFFECT
    assert evd.judge(-0.04, -0.05, -0.03, **(certain | {"pretrend_p": 0.01})) == evd.TREND
    assert evd.judge(-0.04, -0.05, -0.03, **(certain | {"robust_hi": 0.01})) == evd.TREND
    assert evd.judge(-0.04, -0.05, -0.03, **(certain | {"n_schools": 3})) == evd.FEW_SCHOOLS
    assert evd.judge(-0.01, -0.03, 0.01, **certain) == evd.NO_CHANGE
    assert evd.judge(-0.04, -0.05, -0.03, **(certain | {"claimable": False})) == evd.NOT_CLAIMABLE
    assert evd.judge(-0.04, -0.05, -0.03, **certain, q_value=0.2) == evd.NO_CHANGE  # a subgroup among many


def test_absence_bound_extrapolates_a_linear_pre_trend_hand_computed() -> None:
    # placebo months -14..-9 lie 9.5..4.5 months before the baseline's centre (-4.5); a
    # difference of -0.002 per month there continues 12 months on to the outcome's centre (7.5)
    months = np.arange(-14, -8)
    curve = pl.DataFrame({"event_month": months, "att": 0.002 * (months + 4.5)})
    assert evd.absence_bound(curve) == pytest.approx(0.024)
    lo, hi = evd.robust_interval(-0.05, -0.03, 0.024)
    assert (lo, hi) == pytest.approx((-0.074, -0.006))
    assert evd.breakdown(-0.05, -0.03, 0.024) == pytest.approx(1.25)
    assert evd.breakdown(-0.05, 0.01, 0.024) == 0.0


def test_a_pre_trend_counts_as_small_only_as_far_as_its_upper_limit() -> None:
    # |estimate| + t(0.95, g - 1) * se: with 11 schools t(0.95, 10) = 1.8125
    assert evd.upper_limit(-0.001, 0.0005, 11) == pytest.approx(0.001 + 1.812461 * 0.0005, rel=1e-6)
    assert evd.upper_limit(0.002, float("nan"), 11) == 0.002  # no standard error: the point
    months = np.arange(-14, -8)
    flat = pl.DataFrame({"event_month": months, "att": np.zeros(6)})
    # a flat pre-period whose slope is uncertain (se 0.001 per month, 22 schools) still
    # leaves room for a trend: t(0.95, 21) = 1.7207, times 0.001, over 12 months
    assert evd.absence_bound(flat, 0.001, 22) == pytest.approx(1.720743 * 0.001 * 12, rel=1e-5)
    # that bound withholds an estimate of +2 pp whose 95 % interval excludes zero
    lo, hi = evd.robust_interval(0.01, 0.03, evd.absence_bound(flat, 0.001, 22))
    assert evd.judge(0.02, 0.01, 0.03, claimable=True, n_schools=22, pretrend_p=0.6, robust_lo=lo, robust_hi=hi) == (
        evd.TREND
    )


def test_pretrend_slope_and_its_clustered_error_hand_computed() -> None:
    from pipelines.analysis.eventtime import pretrend_slope

    # two placebo months, -14 and -9, lie x = -9.5 and -4.5 months from the baseline's centre
    # (-4.5); the slope is sum(c_e att_e) with c = x / sum(x^2) = (-9.5, -4.5) / 110.5
    def part(e: int, d: list[float], schools: list[str]) -> pl.DataFrame:
        m = float(np.mean(d))
        return pl.DataFrame({"e": [e] * len(d), "d": d, "school_unit_code": schools}).with_columns(
            (pl.col("d") - m).alias("inf"), pl.lit(len(d)).alias("n")
        )

    parts = [part(-14, [-0.02, 0.0, -0.01, -0.03], list("aabb")), part(-9, [0.0, 0.02, 0.01, -0.01], list("aaab"))]
    curve = pl.DataFrame({"event_month": [-14, -9], "att": [-0.015, 0.005]})
    c = np.array([-9.5, -4.5]) / 110.5
    slope = c[0] * -0.015 + c[1] * 0.005
    # per school: sum over months of c_e * (d - att_e) / n_e, each month's residual sum scaled
    # by its CR2 factor (1 - n_ge/n_e)^(-1/2): month -14 two of four pupils each (sqrt 2);
    # month -9 three (2) and one (1 / sqrt 0.75)
    s_a = c[0] * np.sqrt(2) * ((-0.02 + 0.015) + (0.0 + 0.015)) / 4 + c[1] * 2 * (-0.005 + 0.015 + 0.005) / 4
    s_b = c[0] * np.sqrt(2) * ((-0.01 + 0.015) + (-0.03 + 0.015)) / 4 + c[1] / np.sqrt(0.75) * -0.015 / 4
    out = pretrend_slope(parts, curve)
    assert out["slope"] == pytest.approx(slope)
    assert out["slope_se"] == pytest.approx(np.sqrt(s_a**2 + s_b**2))
    assert out["slope_schools"] == 2


def _placebo_part(e: int, d: list[float], schools: list[str]) -> pl.DataFrame:
    m = float(np.mean(d))
    return pl.DataFrame({"e": [e] * len(d), "d": d, "school_unit_code": schools}).with_columns(
        (pl.col("d") - m).alias("inf"), pl.lit(len(d)).alias("n")
    )


def test_pretrend_test_of_one_month_is_that_months_cr2_t_test() -> None:
    from pipelines.analysis.eventtime import pretrend_test

    # one placebo month: W = (mean / se_CR2)^2 and F(1, nu) with nu the Bell-McCaffrey df,
    # the square of the month's own t test (inference.clustered_mean, t_interval)
    d = [0.01, 0.03, -0.01, 0.02, 0.04, 0.0, 0.05, -0.02, 0.03]
    schools = list("aaaabbcde")  # unequal schools: CR2 and BM df differ from CR1 and g - 1
    curve = pl.DataFrame({"event_month": [-12], "att": [float(np.mean(d))]})
    out = pretrend_test([_placebo_part(-12, d, schools)], curve)
    mean, se, g, df = ev.clustered_mean(np.array(d), np.array(schools))
    _, _, p = ev.t_interval(mean, se, g, df)
    assert out["wald"] == pytest.approx((mean / se) ** 2)
    assert out["df"] == pytest.approx(df) and df < g - 1
    assert out["p_value"] == pytest.approx(p)


def test_pretrend_test_with_equal_schools_is_the_cr1_hotelling_test() -> None:
    from scipy import stats

    from pipelines.analysis.eventtime import pretrend_test

    # equal schools: CR2's factor (1 - 1/g)^(-1/2) squared is CR1's g / (g - 1), and the
    # Bell-McCaffrey df are g - 1, so F = W (g - q) / (q (g - 1)) on (q, g - q) as before
    rng = np.random.default_rng(3)
    schools = list("aabbccddee")
    months = [-14, -13, -12]
    ds = [list(rng.normal(0.01, 0.02, 10)) for _ in months]
    parts = [_placebo_part(e, d, schools) for e, d in zip(months, ds, strict=True)]
    curve = pl.DataFrame({"event_month": months, "att": [float(np.mean(d)) for d in ds]})
    out = pretrend_test(parts, curve)
    s = np.array([[np.sum(np.array(d)[[2 * i, 2 * i + 1]] - np.mean(d)) / 10 for d in ds] for i in range(5)])
    att = np.array([np.mean(d) for d in ds])
    wald = float(att @ np.linalg.inv(5 / 4 * s.T @ s) @ att)
    assert out["wald"] == pytest.approx(wald)
    assert out["p_value"] == pytest.approx(stats.f.sf(wald * (5 - 3) / (3 * 4), 3, 5 - 3))


def test_grades_are_held_to_their_pupils_attendance_trend() -> None:
    certain = {"claimable": True, "n_schools": 20, "pretrend_p": 0.5, "robust_lo": -0.09, "robust_hi": -0.01}
    assert evd.judge(-0.05, -0.08, -0.02, **certain) == evd.EFFECT
    assert evd.judge(-0.05, -0.08, -0.02, **certain, trend_elsewhere=True) == evd.TREND
    assert evd.judge(-0.01, -0.04, 0.02, **certain, trend_elsewhere=True) == evd.NO_CHANGE  # nothing to withhold
    row = {
        "outcome": "share_passed_change",
        "measure": "Förändring i andel godkända ämnen",
        "difference": -0.05,
        "lo": -0.08,
        "hi": -0.02,
        "n_treated": 40,
        "n_eligible": 42,
        "n_schools": 16,
        "pretrend_p": 0.5,
        "robust_lo": -0.09,
        "robust_hi": -0.01,
        "verdict": evd.TREND,
    }
    text = ev.text_effect(row)
    assert "frånvaro utvecklades före inskrivningen" in text and "Ingen effekt anges" in text
    assert "omfattar intervallet noll" not in text  # the robust interval does not cover zero here


def test_eligibility_gradient_recovers_a_linear_relation() -> None:
    from pipelines.analysis.sample import Analytic

    rng = np.random.default_rng(5)
    n = 500
    x = rng.uniform(0.2, 1.0, n)
    y = (rng.uniform(size=n) < 0.1 + 0.8 * x).astype(float)  # P(eligible) = 0.1 + 0.8 x
    frame = pl.DataFrame({"row": np.arange(n, dtype=np.int64), "y": y, "base_share_passed": x})
    weights = pl.DataFrame({"row": np.arange(n, dtype=np.int64), "cell": "c", "w": np.full(n, 1 / n)})
    a = Analytic("eligible_vocational", [], frame, pl.DataFrame({"row": [], "cell": []}), weights, 0)
    assert evd.eligibility_gradient(a) == pytest.approx(0.8, abs=0.12)


def _grade_world(trend: float, seed: int) -> pl.DataFrame:
    """Candidates whose grades follow a pupil's own slope, each term measured with noise; the
    enrolled are chosen on a falling slope (`trend` per term; 0: chosen on level only).
    Balancing on two noisy terms removes only part of the slope."""
    c = simulate(0.0, seed)
    rng = np.random.default_rng(seed)
    n = c.height
    slope = rng.normal(0, 0.03, n) - trend * c["treated"].to_numpy()
    true_base = c["base_share_passed"].to_numpy()

    def term(k: int) -> np.ndarray:  # share passed k terms after the baseline term
        return np.clip(true_base + k * slope + rng.normal(0, 0.08, n), 0, 1)

    return c.with_columns(
        pl.Series("base_share_passed", term(0)),
        pl.Series("prior_share_passed", term(-1)),
        pl.Series("placebo_share_passed", term(-2)),
        pl.Series("later_share_passed", term(2)),
    )


@pytest.mark.parametrize(("trend", "seed"), [(0.0, 21), (0.04, 22)])
def test_grade_placebo_flags_a_slope_the_balancing_cannot_see(trend: float, seed: int) -> None:
    a = analytics(_grade_world(trend, seed))["share_passed_change"]
    placebo = evd.grade_placebo(a)
    e = ev.estimate(a)
    if trend == 0:
        assert placebo["p_value"] > 0.05
        assert e.ci_low <= 0 <= e.ci_high
    else:
        # the naive estimate finds the trend as a fall in share passed; the placebo sees it first
        assert e.ci_high < 0
        assert placebo["p_value"] < 0.05 and placebo["estimate"] > 0
        e.pretrend_p = placebo["p_value"]
        assert e.verdict == evd.TREND and not e.finding


def test_a_trend_verdict_never_says_the_change_is_beyond_chance() -> None:
    row = {
        "outcome": "share_passed_change",
        "measure": "Förändring i andel godkända ämnen",
        "difference": -0.05,
        "lo": -0.08,
        "hi": -0.02,
        "n_treated": 40,
        "n_eligible": 42,
        "n_schools": 16,
        "pretrend_p": 0.001,
        "robust_lo": -0.13,
        "robust_hi": 0.03,
    }
    for verdict in (evd.TREND, evd.FEW_SCHOOLS):
        text = ev.text_effect(row | {"verdict": verdict})
        assert ("slumpen" not in text and "Ingen" in text) or "ingen slutsats" in text
    assert "inte förklaras av slumpen" in ev.text_effect(row | {"verdict": evd.EFFECT, "pretrend_p": 0.6})
    covering = ev.text_effect(row | {"verdict": evd.TREND, "lo": -0.08, "hi": 0.01})
    assert "ingen säker förändring" in covering and "inte skilja programmet" in covering


def test_the_cross_check_paragraph_says_what_the_data_showed() -> None:
    from pipelines.analysis.crosscheck import text_crosscheck

    row = {"att": -0.05, "lo": -0.07, "hi": -0.03, "n_enrolled": 120}
    at_a_peak = text_crosscheck(row | {"pre_1": 0.04, "pre_lo": 0.02}, {"difference": -0.03, "pretrend_p": 0.4})
    assert "frånvaron var hög" in at_a_peak and "ingen skillnad" in at_a_peak
    no_peak = text_crosscheck(row | {"pre_1": 0.001, "pre_lo": -0.01}, {"difference": -0.03, "pretrend_p": 0.01})
    assert "inget tydligt urval" in no_peak and "ingen av metoderna kan" in no_peak
    for text in (at_a_peak, no_peak):  # no story written in advance
        assert "simuleringar utan någon effekt hittar den ingen" not in text


def test_the_methods_appendix_states_this_reports_tests() -> None:
    effects = pl.DataFrame(
        {
            "outcome": ["absence_rate", "share_passed_change"],
            "difference": [-0.05, 0.02],
            "pretrend_p": [0.01, 0.5],
            "verdict": [evd.TREND, evd.NO_CHANGE],
        }
    )
    text = ev.text_methods(effects)
    assert "frånvaro p = 0,01 (kan inte skiljas från trend före inskrivning)" in text
    assert "godkända ämnen p = 0,5" in text
    assert "I år" not in ev.text_methods()


def test_a_school_wide_swing_cancels_out_of_school_relative_absence() -> None:
    """evaluation_months.sql on hand-made tables: every pupil of school A is absent 20 points
    more in February; relative to the school, nobody's absence moves. A school with too few
    pupils outside PPSS is measured against its district."""
    import duckdb

    from pipelines.analysis import estimands as est
    from pipelines.analysis.followup import report_query

    con = duckdb.connect()
    rng = np.random.default_rng(5)
    pupils = (
        [(f"a{i}", "A") for i in range(12)] + [(f"b{i}", "B") for i in range(4)] + [(f"c{i}", "C") for i in range(8)]
    )
    base = {p: float(rng.uniform(0.02, 0.2)) for p, _ in pupils}
    con.execute("create table school_units (school_unit_code varchar, district varchar)")
    con.execute("insert into school_units values ('A', 'Farsta'), ('B', 'Farsta'), ('C', 'Farsta')")
    con.execute("create table pupil_term_outcomes (pupil_key varchar, term_index integer, school_unit_code varchar)")
    con.executemany("insert into pupil_term_outcomes values (?, ?, ?)", [(p, 2016 * 2, s) for p, s in pupils])
    con.execute("create table pupil_month_attendance (pupil_key varchar, month_start date, absence_rate double)")
    rows = []
    for p, s in pupils:
        for month in (1, 2, 3):
            rows.append((p, f"2016-0{month}-01", base[p] + (0.2 if s == "A" and month == 2 else 0.0)))
    con.executemany("insert into pupil_month_attendance values (?, ?, ?)", rows)
    con.execute(
        "create table programme_starts (pupil_key varchar, programme varchar, start_date date, start_month integer)"
    )
    con.execute(f"insert into programme_starts values ('a0', 'PPSS', date '2016-02-03', {2016 * 12 + 1})")
    months = report_query(con, "evaluation_months", 2016, **est.sql_names()).sort("pupil_key", "month_index")
    a = months.filter(pl.col("pupil_key").str.starts_with("a"))
    assert set(a["reference"]) == {"school"}
    per_pupil = a.group_by("pupil_key").agg((pl.col("absence_rate").max() - pl.col("absence_rate").min()).alias("r"))
    assert per_pupil["r"].max() < 0.02  # the 20-point swing is gone (what moves is the others' mix)
    raw = a.group_by("pupil_key").agg((pl.col("raw_absence_rate").max() - pl.col("raw_absence_rate").min()).alias("r"))
    assert raw["r"].min() > 0.19
    assert set(months.filter(pl.col("pupil_key").str.starts_with("b"))["reference"]) == {"district"}


def test_the_wwc_column_follows_a_failed_pre_trend_test() -> None:
    e = ev.estimate(analytics(simulate(0.0, 11))["absence_rate"])
    assert ev.estimates_frame({"absence_rate": e})["baseline"][0] in ("uppfyllt", "kräver justering (gjord)")
    e.pretrend_p = 0.01
    row = ev.estimates_frame({"absence_rate": e}).row(0, named=True)
    assert row["baseline"] == "ej uppfyllt (trend före)" and row["verdict"] == evd.TREND


def test_effects_csv_carries_each_rows_verdict_and_q_and_none_for_a_hidden_estimate() -> None:
    e = ev.estimate(analytics(simulate(0.05, 12))["absence_rate"])
    e.pretrend_p = 0.01  # a failed pre-trend test
    head = ev.estimates_frame({"absence_rate": e})
    groups = pl.DataFrame(
        {
            "dimension": ["Kön", "Kön"],
            "group": ["Flickor", "Pojkar"],
            "n": [30, None],
            "n_schools": [12, None],
            "change": [-0.05, None],  # the boys' row hidden by the disclosure layer
            "lo": [-0.08, None],
            "hi": [-0.02, None],
            "p_value": [0.001, 0.2],
            "q_value": [0.002, 0.2],
            "verdict": [evd.EFFECT, evd.NO_CHANGE],
        }
    )
    out = ev.effects_frame(head, groups)
    assert out.columns == ev.EFFECT_COLUMNS
    assert out["verdict"].to_list() == [evd.TREND, evd.EFFECT, None]
    assert out["q_value"].to_list()[1:] == [0.002, 0.2]
