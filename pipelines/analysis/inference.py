"""Clustered means and t intervals: the inference every estimator of the evaluation shares.

Intervals count only the schools the enrolled pupils come from (their degrees of freedom are
those schools less one): a comparison drawn from thirty schools does not make an estimate
about pupils of three schools any surer. Below MIN_SCHOOLS such schools no interval is
trusted and no verdict is given (Cameron & Miller 2015: cluster-robust errors over-reject
with few clusters, and a t with few degrees of freedom only partly makes up for it).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MIN_SCHOOLS = 10  # schools of the enrolled pupils below which an interval is called unreliable
ALPHA = 0.05


def clustered_mean(d: np.ndarray, clusters: np.ndarray) -> tuple[float, float, int]:
    """Mean, its standard error clustered by `clusters` (CR1), and the number of clusters."""
    n = len(d)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = float(d.mean())
    codes = np.unique(clusters, return_inverse=True)[1]
    g = int(codes.max()) + 1
    if g < 2:
        return mean, float("nan"), g
    sums = np.bincount(codes, weights=d - mean)
    se = float(np.sqrt(g / (g - 1) * (sums**2).sum()) / n)
    return mean, se, g


def t_interval(mean: float, se: float, g: int) -> tuple[float, float, float]:
    """95 % interval and two-sided p with g - 1 degrees of freedom (g: the enrolled pupils' schools)."""
    if not np.isfinite(se) or g < 2 or se == 0:
        return float("nan"), float("nan"), float("nan")
    t = float(stats.t.ppf(1 - ALPHA / 2, g - 1))
    p = float(2 * stats.t.sf(abs(mean / se), g - 1))
    return mean - t * se, mean + t * se, p
