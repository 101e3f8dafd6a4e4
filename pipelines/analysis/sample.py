"""The evaluation sample, built once per report: who is compared with whom, with what weight.

Design (written out in Swedish in the report's methods appendix):
- Cohorts: the pupils first enrolled in the same calendar month. Their comparison pupils are
  those not yet enrolled then, in the same årskurs (calendar time fixed, so seasons and school
  years cancel). A pupil enrolled later serves as a comparison until three months before its
  own enrolment; one enrolled after the follow-up year is not yet known as enrolled
  (estimands.py). Gender is a balanced covariate, not a cell.
- Absence relative to the school: every monthly absence is the pupil's minus the mean of its
  school's other pupils outside PPSS that month (evaluation_months.sql), so a school-wide
  swing cancels out of every comparison.
- Weighting on the pre-enrolment trajectory: for attendance the path of monthly absence over
  the eight months before enrolment (the latest month, the one before, months 3-4 and 5-8
  back) and the baseline term's share of passed subjects and meritvärde; for grades two
  terms of share passed, meritvärde and absence. Pupils are often enrolled right after an
  absence peak; comparison pupils with the same recent path regress to the mean alike.
- Entropy balancing within each cell of calendar month and årskurs (Hainmueller 2012,
  through Google's `empirical_calibration`): the comparison pupils of a cell are weighted,
  as close to equal weights as possible, so that their weighted means of every covariate
  equal the enrolled pupils' means. Nearest-neighbour matching cannot do that here: enrolled
  pupils are the most absent of their cohort, at the edge of the others. A cell whose means
  cannot be met within `TOLERANCE` standard deviations tries all årskurser of the month, then
  the core covariates; pupils still out are left out, and the attrition table counts them.
- The weights are always the city's: a report on some districts keeps only their enrolled
  pupils as members, so the same pupils get the same estimate in every report.
- The estimator (estimator.py) then adjusts each enrolled pupil's comparison by a
  regression on the covariates (Abadie & Imbens 2011), the statistical adjustment the What
  Works Clearinghouse asks for when baseline differences are between 0.05 and 0.25.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import duckdb
import empirical_calibration as ec
import numpy as np
import polars as pl

from pipelines.analysis import estimands as est
from pipelines.analysis.followup import report_query

# largest standardised difference in a covariate mean left after weighting: what the What
# Works Clearinghouse accepts as equivalent without adjustment
TOLERANCE = est.WWC_EQUIVALENT
# The last attempt, on the recent path only, accepts what the What Works Clearinghouse accepts
# with statistical adjustment (which the estimator makes).
LAST_TOLERANCE = est.WWC_ADJUSTABLE

PATH = ["pre_1", "pre_2", "pre_34", "pre_5plus"]  # monthly absence before enrolment, latest first
COVARIATES = [*PATH, "base_share_passed", "prior_share_passed", "base_merit", "prior_merit", "boy"]
CORE = ["pre_1", "pre_2", "pre_34", "base_share_passed"]  # the last balancing attempt: the recent path
FALLBACKS = {  # a missing covariate takes its nearest relative first
    "pre_2": "pre_1",
    "pre_34": "pre_2",
    "pre_5plus": "pre_34",
    "prior_share_passed": "base_share_passed",
    "prior_merit": "base_merit",
}


@dataclass
class Analytic:
    """One outcome's analytic sample: the candidates, and the weighted comparison per cell."""

    outcome: str
    covariates: list[str]
    frame: pl.DataFrame  # candidates with covariates, outcome `y`, `treated`, `row` (the row number), `cell`
    members: pl.DataFrame  # enrolled rows in the estimate: row, cell
    weights: pl.DataFrame  # comparison rows: row, cell, w (summing to 1 within each cell)
    n_eligible: int  # enrolled pupils the estimand is about
    # the estimator's regression-adjusted frames (evaluation._adjusted), computed once
    adjusted: tuple[pl.DataFrame, pl.DataFrame] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def treated(self) -> pl.DataFrame:
        """The enrolled rows the report is about (a district report's districts only)."""
        return self.frame.filter(pl.col("treated") & pl.col("in_subset"))

    @property
    def matched_rows(self) -> list[int]:
        return self.members["row"].to_list()

    @property
    def n_matched(self) -> int:
        return self.members.height

    @property
    def n_comparison(self) -> int:
        """Comparison pupils (a pupil can serve several calendar months) with any weight."""
        return self.frame["pupil_key"].gather(self.weights.filter(pl.col("w") > 0)["row"]).n_unique()

    def control_weights(self) -> pl.DataFrame:
        """Each comparison row's weight, scaled so that a cell weighs as many as its enrolled."""
        sizes = self.members.group_by("cell").len("n_t")
        return self.weights.join(sizes, on="cell").select(
            pl.col("row").alias("c_row"), (pl.col("w") * pl.col("n_t")).alias("weight")
        )


@dataclass
class EvaluationSample:
    year: int
    pupils: pl.DataFrame  # every pupil: enrolment (known by the year's end), district, groups
    months: pl.DataFrame  # monthly absence up to the year's end
    analytic: dict[str, Analytic] = field(default_factory=dict)
    # what several estimators read (the event curve, the pre-trend evidence): computed once
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def enrolled(self) -> pl.DataFrame:
        return self.pupils.filter(pl.col("start_date").is_not_null())


def _impute(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Fill a missing covariate from its nearest relative (an earlier month from a later one),
    then from the candidates' mean: balancing needs every coordinate."""
    out = frame.with_columns((pl.col("gender") == "M").cast(pl.Float64).alias("boy"))
    for c, f in FALLBACKS.items():
        out = out.with_columns(pl.col(c).fill_null(pl.col(f)))
    return out.with_columns(pl.col(c).cast(pl.Float64).fill_null(pl.col(c).mean()).fill_null(0.0) for c in columns)


def _calibrate(x_c: np.ndarray, x_t: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray | None:
    """Entropy-balancing weights of the comparison rows toward the enrolled rows' means, or
    None where no weighting gets within `tolerance` standard deviations of every mean."""
    sd = x_c.std(axis=0)
    varying = sd > 1e-9
    if (np.abs(x_t.mean(axis=0) - x_c.mean(axis=0))[~varying] > 1e-9).any():
        return None  # a covariate the comparison pupils all share but the enrolled do not
    z_c, z_t = x_c[:, varying] / sd[varying], x_t[:, varying] / sd[varying]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w, ok = ec.calibrate(z_c, z_t, objective=ec.Objective.ENTROPY)
        if not ok:  # exact means out of reach: allow an imbalance of `tolerance` (L2, so each is within it)
            w, ok = ec.calibrate(z_c, z_t, objective=ec.Objective.ENTROPY, l2_norm=tolerance)
        if not ok:
            return None
    w = np.asarray(w, dtype=float)
    if not np.isfinite(w).all() or w.sum() <= 0:
        return None
    w = w / w.sum()
    return w if np.abs(w @ z_c - z_t.mean(axis=0)).max(initial=0.0) <= tolerance else None


def entropy_weights(frame: pl.DataFrame, covariates: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(members, weights): per cell, the enrolled rows kept and the comparison rows' entropy
    balancing weights toward the enrolled rows' covariate means. Enrolled pupils whose own
    cell cannot be balanced (too few others like them in their årskurs) try again among all
    årskurser of the same calendar month, with årskurs among the balanced covariates, and
    last on the core covariates only (CORE; the regression adjustment covers the rest)."""
    # One matrix and index arrays rather than frames per cell: a city has hundreds of cells,
    # and polars' per-frame filters cost as much as the solver. Rows keep the frame's order.
    dummies = [f"year_{y}" for y in (7, 8, 9)]
    years = [(pl.col("school_year") == y).cast(pl.Float64).alias(f"year_{y}") for y in (7, 8, 9)]
    x = np.asarray(frame.select(*covariates, *years).to_numpy(), dtype=float)
    column = {c: i for i, c in enumerate([*covariates, *dummies])}
    treated, months = frame["treated"].to_numpy(), frame["cohort_month"].to_numpy()
    kept: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # cell, enrolled, comparison, weights
    left: list[np.ndarray] = []

    def balance(cell: str, t: np.ndarray, c: np.ndarray, cols: list[int], tolerance: float = TOLERANCE) -> bool:
        # column-major, as polars hands frames to numpy: the solver's sums then add up in the same order
        x_c, x_t = np.asfortranarray(x[np.ix_(c, cols)]), np.asfortranarray(x[np.ix_(t, cols)])
        w = _calibrate(x_c, x_t, tolerance) if c.size >= 2 else None
        if w is not None:
            kept.append((cell, t, c, w))
        return w is not None

    own = [column[c] for c in covariates]
    for cell, idx in frame.with_row_index("i").group_by("cell", maintain_order=True).agg("i").iter_rows():
        idx = np.asarray(idx, dtype=np.int64)
        t = idx[treated[idx]]
        if t.size and not balance(cell, t, idx[~treated[idx]], own):
            left.append(t)
    comparison = np.flatnonzero(~treated)
    for level, balanced, tolerance in (
        ("*", [*covariates, *dummies], TOLERANCE),
        ("**", [*CORE, *dummies], LAST_TOLERANCE),
    ):
        pending = np.concatenate(left) if left else np.empty(0, dtype=np.int64)
        left = []
        # calendar months in the order their enrolled rows come; a month's comparison rows in frame order
        for month in pl.Series(months[pending]).unique(maintain_order=True):
            t = pending[months[pending] == month]
            cols = [column[c] for c in balanced]
            if not balance(f"{month}|{level}", t, comparison[months[comparison] == month], cols, tolerance):
                left.append(t)
    if not kept:
        return pl.DataFrame(schema={"row": pl.Int64, "cell": pl.String}), pl.DataFrame(
            schema={"row": pl.Int64, "cell": pl.String, "w": pl.Float64}
        )
    rows = frame["row"].to_numpy()

    def cells(part: int) -> pl.Series:
        sizes = pl.DataFrame({"cell": [k[0] for k in kept], "n": [k[part].size for k in kept]})
        return sizes.select(pl.col("cell").repeat_by("n").explode())["cell"].cast(pl.String)

    def positions(part: int) -> np.ndarray:
        return rows[np.concatenate([k[part] for k in kept])]

    return (
        pl.DataFrame({"row": positions(1), "cell": cells(1)}, schema={"row": pl.Int64, "cell": pl.String}),
        pl.DataFrame(
            {"row": positions(2), "cell": cells(2), "w": np.concatenate([k[3] for k in kept])},
            schema={"row": pl.Int64, "cell": pl.String, "w": pl.Float64},
        ),
    )


# what the estimator, its tables and the event curve read of a candidate, besides COVARIATES
KEPT = [
    *("cohort_month", "pupil_key", "gender", "school_year", "school_unit_code", "district", "own_month", "treated"),
    *("pre_mean", "raw_pre_mean"),
]
COVARIATES_READ = [c for c in COVARIATES if c != "boy"]  # "boy" is made from gender (_impute)
LEVEL = {"absence_rate": ["post_mean"], "share_passed_change": ["later_share_passed"]}  # the outcome's level
PLACEBO = {"share_passed_change": ["placebo_share_passed"], "eligible_vocational": ["placebo_share_passed"]}


def _rows(outcome: str, frame: pl.LazyFrame) -> pl.LazyFrame:
    # Only the columns read later, selected before the rows are (the query plan reads no
    # other column): a city's three frames of every candidate column held 1.2 GB.
    # A fixed row order (a candidate is one pupil in one cohort month): the balancing solver's
    # answer must not depend on how the store returned rows.
    kept = [*KEPT, *COVARIATES_READ, *LEVEL.get(outcome, []), *PLACEBO.get(outcome, []), "y"]
    return frame.select(kept).filter(pl.col("y").is_not_null()).sort("cohort_month", "pupil_key")


def _analytic(outcome: str, frame: pl.DataFrame, districts: list[str] | None = None) -> Analytic:
    """The weights are found for every enrolled pupil of the city; with `districts`, only
    those first enrolled there are kept as members (with their cells' comparison rows). So an
    enrolled pupil's comparison never depends on which others a report is about: a district
    report's estimate is the full report's subgroup row for that district, number for number."""
    frame = _impute(frame, COVARIATES).with_row_index("row")
    in_subset = pl.col("treated") & (pl.col("district").is_in(districts) if districts else pl.lit(True))
    frame = frame.with_columns(
        pl.col("row").cast(pl.Int64),
        pl.concat_str([pl.col(c).cast(pl.String) for c in CELL], separator="|").alias("cell"),
        in_subset.fill_null(False).alias("in_subset"),
    )
    n_eligible = frame.filter(pl.col("in_subset"))["pupil_key"].n_unique()
    members, weights = entropy_weights(frame, COVARIATES)
    if districts:
        members = members.filter(pl.col("row").is_in(frame.filter(pl.col("in_subset"))["row"].implode()))
        weights = weights.filter(pl.col("cell").is_in(members["cell"].unique().implode()))
    return Analytic(outcome, COVARIATES, frame, members, weights, n_eligible)


CELL = ["cohort_month", "school_year"]  # calendar month of enrolment and årskurs


def analytics(candidates: pl.DataFrame, districts: list[str] | None = None) -> dict[str, Analytic]:
    """Each headline outcome's analytic sample and matches (estimands.py), about the pupils
    first enrolled in `districts` if given (_analytic). Takes the only
    reference to `candidates`: it is released once the outcomes' rows are selected, before
    the balancing (a city: 300 MB less at the report's peak)."""
    lazy = candidates.lazy()
    del candidates
    absence = lazy.filter(pl.col("n_pre") >= est.MIN_PRE_MONTHS).with_columns(
        (pl.col("post_mean") - pl.col("pre_mean")).alias("y")  # the change from the pupil's own baseline
    )
    grades = lazy.filter(pl.col("base_share_passed").is_not_null())
    outcomes = {
        "absence_rate": absence,
        "share_passed_change": grades.with_columns(
            (pl.col("later_share_passed") - pl.col("base_share_passed")).alias("y")
        ),
        "eligible_vocational": grades.with_columns(pl.col("eligible_vocational").alias("y")),
    }
    names = list(outcomes)
    frames = pl.collect_all([_rows(k, outcomes[k]) for k in names])
    del lazy, absence, grades, outcomes
    return {k: _analytic(k, f, districts) for k, f in zip(names, frames, strict=True)}


def build_sample(con: duckdb.DuckDBPyConnection, year: int, districts: list[str] | None = None) -> EvaluationSample:
    """Everything the evaluation needs, from the store, up to 31 December of `year`. With
    `districts`, the enrolled pupils are those first enrolled there; their comparison pupils
    and weights are the full report's, so each estimate equals the full report's subgroup row."""
    pupils = report_query(con, "evaluation_pupils", year, districts)
    sample = EvaluationSample(year, pupils, report_query(con, "evaluation_months", year, **est.sql_names()))
    # every district's candidates: the weights are the full report's (_analytic)
    sample.analytic = analytics(report_query(con, "evaluation_candidates", year, None, **est.sql_names()), districts)
    return sample
