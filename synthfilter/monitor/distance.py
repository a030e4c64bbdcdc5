"""Distances between two sets of embeddings: RBF-kernel MMD and Fréchet distance.

Both are 0 for identical sets and grow as the batch's distribution moves
away from the reference's. Rows are L2-normalised first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthfilter.monitor.spread import unit_rows

__all__ = ["GaussianMoments", "frechet_distance", "mean_self_kernel", "median_bandwidth", "mmd_rbf"]

_CHUNK = 2048


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def median_bandwidth(x: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """Median heuristic: the median pairwise Euclidean distance between distinct points.

    Parameters
    ----------
    x : array-like of shape (n, d)
    max_points : int, default 1000
        A random subset of this size is used for larger sets.
    seed : int, default 0

    Returns
    -------
    float
        Positive bandwidth (1.0 when all points coincide).
    """
    u = unit_rows(x)
    if u.shape[0] > max_points:
        u = u[np.random.default_rng(seed).choice(u.shape[0], max_points, replace=False)]
    d = np.sqrt(_sq_dists(u, u)[np.triu_indices(u.shape[0], k=1)])
    d = d[d > 1e-9]
    return float(np.median(d)) if d.size else 1.0


def _kernel_mean(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    total = 0.0
    for start in range(0, a.shape[0], _CHUNK):
        total += float(np.exp(-gamma * _sq_dists(a[start : start + _CHUNK], b)).sum())
    return total / (a.shape[0] * b.shape[0])


def mmd_rbf(
    x: np.ndarray, y: np.ndarray, bandwidth: float | None = None, *, y_self_kernel: float | None = None
) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel (biased V-statistic).

    ``MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)`` with
    ``k(a, b) = exp(-||a - b||^2 / (2 bandwidth^2))`` (Gretton et al., 2012).
    The V-statistic is the squared RKHS distance between the two empirical
    mean embeddings, so it is never negative and is exactly 0 for identical
    sets.

    Parameters
    ----------
    x, y : array-like of shape (n, d) and (m, d)
    bandwidth : float, optional
        Kernel width; :func:`median_bandwidth` of ``y`` (the reference) when
        omitted. Fix it when comparing several batches against one reference.
    y_self_kernel : float, optional
        ``mean k(y, y')`` already computed (see :func:`mean_self_kernel`),
        saving the quadratic pass over the reference.

    Returns
    -------
    float
        In [0, 2]; high means the batch's distribution differs (bad).
    """
    a, b = unit_rows(x), unit_rows(y)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return float("nan")
    bandwidth = median_bandwidth(b) if bandwidth is None else float(bandwidth)
    gamma = 1.0 / (2.0 * bandwidth**2)
    yy = _kernel_mean(b, b, gamma) if y_self_kernel is None else float(y_self_kernel)
    value = _kernel_mean(a, a, gamma) + yy - 2.0 * _kernel_mean(a, b, gamma)
    return float(max(value, 0.0))


def mean_self_kernel(y: np.ndarray, bandwidth: float) -> float:
    """``mean k(y, y')`` over all pairs (diagonal included) of the RBF kernel of width ``bandwidth``."""
    u = unit_rows(y)
    return _kernel_mean(u, u, 1.0 / (2.0 * float(bandwidth) ** 2))


@dataclass
class GaussianMoments:
    """Mean and covariance of a set of unit embeddings, with the covariance's square root.

    Parameters
    ----------
    x : array-like of shape (n, d)
    """

    x: np.ndarray

    def __post_init__(self) -> None:
        u = unit_rows(self.x)
        self.mean = u.mean(axis=0)
        centred = u - self.mean
        self.cov = centred.T @ centred / max(u.shape[0], 1)
        values, vectors = np.linalg.eigh(self.cov)
        self.sqrt_cov = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
        self.x = None  # the moments are all that is kept


def frechet_distance(x: np.ndarray | GaussianMoments, y: np.ndarray | GaussianMoments) -> float:
    """Fréchet (2-Wasserstein) distance between Gaussians fitted to two sets, squared.

    ``||mu_x - mu_y||^2 + tr(C_x) + tr(C_y) - 2 tr((C_y^1/2 C_x C_y^1/2)^1/2)``,
    the quantity behind FID (Heusel et al., 2017). The trace of the matrix
    square root is taken from the eigenvalues of the symmetric matrix
    ``C_y^1/2 C_x C_y^1/2``, which is stable for the rank-deficient
    covariances of small batches.

    Parameters
    ----------
    x, y : array-like of shape (n, d) and (m, d), or GaussianMoments
        Batch and reference (pass a :class:`GaussianMoments` to reuse the
        reference's square root).

    Returns
    -------
    float
        In [0, 4] for unit vectors; 0 for identical sets (up to round-off of
        about 1e-6); high is bad.
    """
    mx = x if isinstance(x, GaussianMoments) else GaussianMoments(x)
    my = y if isinstance(y, GaussianMoments) else GaussianMoments(y)
    middle = my.sqrt_cov @ mx.cov @ my.sqrt_cov
    cross = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None))))
    diff = mx.mean - my.mean
    value = float(diff @ diff) + float(np.trace(mx.cov)) + float(np.trace(my.cov)) - 2.0 * cross
    return float(max(value, 0.0))
