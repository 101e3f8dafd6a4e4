"""Clustered means and t intervals: the inference every estimator of the evaluation shares.

Standard errors are CR2 (Bell & McCaffrey 2002), the bias-reduced cluster-robust variance:
each school's sum of residuals is scaled by (1 - h_g)^(-1/2), h_g the school's share of the
enrolled pupils (its leverage in a mean), which undoes the downward bias of the plain
sandwich when a few schools carry much of the weight. Intervals are t intervals with the
Bell-McCaffrey degrees of freedom (Imbens & Kolesár 2016): (sum of lambda)^2 / sum of
lambda^2 over the eigenvalues lambda of G'G, G the matrix that maps the outcomes to the
schools' adjusted scores; with equal schools it is the schools less one, with unequal ones
fewer. The degrees of freedom count only the schools the enrolled pupils come from: a
comparison drawn from thirty schools does not make an estimate about pupils of three
schools any surer. Below MIN_SCHOOLS such schools no interval is trusted and no verdict is
given (Cameron & Miller 2015: cluster-robust errors over-reject with few clusters, and a t
with few degrees of freedom only partly makes up for it).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MIN_SCHOOLS = 10  # schools of the enrolled pupils below which an interval is called unreliable
ALPHA = 0.05


def cr2_factors(sizes: np.ndarray) -> np.ndarray:
    """Per cluster, the CR2 scaling of its residual sum in a mean: (1 - n_g/n)^(-1/2). For
    the mean, H_gg = J/n (every entry 1/n), and (I - H_gg)^(-1/2) leaves a cluster's residuals
    orthogonal to its ones vector as they are and scales their sum by (1 - n_g/n)^(-1/2)."""
    sizes = np.asarray(sizes, dtype=float)
    share = sizes / sizes.sum()
    with np.errstate(divide="ignore"):
        return np.where(share < 1, 1 / np.sqrt(np.clip(1 - share, 1e-12, None)), np.nan)


def bm_df(sizes: np.ndarray) -> float:
    """Bell-McCaffrey degrees of freedom of a clustered mean (Imbens & Kolesár 2016, working
    model: independent errors of equal variance). Column g of G is (a_g/n)(1_g - n_g/n 1), so
    G'G = diag(a) (diag(n_g) - n_g n_h / n) diag(a) / n^2; df = tr(G'G)^2 / tr((G'G)^2)."""
    sizes = np.asarray(sizes, dtype=float)
    if len(sizes) < 2:
        return float("nan")
    n = sizes.sum()
    a = cr2_factors(sizes)
    m = (np.diag(sizes) - np.outer(sizes, sizes) / n) * np.outer(a, a) / n**2
    return float(np.trace(m) ** 2 / np.trace(m @ m))


def clustered_mean(d: np.ndarray, clusters: np.ndarray) -> tuple[float, float, int, float]:
    """Mean, its CR2 standard error clustered by `clusters`, the number of clusters and the
    Bell-McCaffrey degrees of freedom."""
    n = len(d)
    if n == 0:
        return float("nan"), float("nan"), 0, float("nan")
    mean = float(d.mean())
    codes = np.unique(clusters, return_inverse=True)[1]
    g = int(codes.max()) + 1
    if g < 2:
        return mean, float("nan"), g, float("nan")
    sizes = np.bincount(codes).astype(float)
    sums = np.bincount(codes, weights=d - mean) * cr2_factors(sizes)
    return mean, float(np.sqrt((sums**2).sum()) / n), g, bm_df(sizes)


def t_interval(mean: float, se: float, g: int, df: float | None = None) -> tuple[float, float, float]:
    """95 % interval and two-sided p with `df` degrees of freedom (Bell-McCaffrey), or g - 1
    without (g: the enrolled pupils' schools)."""
    if not np.isfinite(se) or g < 2 or se == 0:
        return float("nan"), float("nan"), float("nan")
    dof = g - 1 if df is None or not np.isfinite(df) else df
    t = float(stats.t.ppf(1 - ALPHA / 2, dof))
    p = float(2 * stats.t.sf(abs(mean / se), dof))
    return mean - t * se, mean + t * se, p
