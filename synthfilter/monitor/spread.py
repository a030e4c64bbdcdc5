"""How spread out one set of embeddings is: dispersion, effective dimension, Vendi score.

Every function takes an ``(n, d)`` array of embeddings. Rows are
L2-normalised first (synthfilter's encoders already return unit rows), so that
cosine similarity is a dot product and every value has a fixed range.

Known answers, checked by the tests:

* ``n`` copies of one vector: dispersion 0, covariance trace 0, participation
  ratio 0, effective rank 0, Vendi score 1.
* ``m`` mutually orthogonal unit vectors, each repeated ``c`` times
  (``n = m c`` records): Vendi score ``m``; the centred data spans ``m - 1``
  directions with equal variance, so the participation ratio and the
  effective rank are ``m - 1``; the mean pairwise cosine distance is
  ``(n - c) / (n - 1)`` (pairs inside a group have distance 0, the others 1);
  the covariance trace is ``1 - 1 / m``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "covariance_eigenvalues",
    "covariance_trace",
    "effective_rank",
    "mean_pairwise_cosine_distance",
    "participation_ratio",
    "unit_rows",
    "vendi_score",
]

_TINY = 1e-12


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as float64 with L2-normalised rows (zero rows stay zero).

    Parameters
    ----------
    x : array-like of shape (n, d)

    Returns
    -------
    numpy.ndarray of shape (n, d), float64
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def mean_pairwise_cosine_distance(x: np.ndarray) -> float:
    """Mean cosine distance ``1 - cos(x_i, x_j)`` over all pairs ``i != j``.

    Computed in O(n d) from the norm of the sum of the unit rows:
    ``sum_{i != j} x_i . x_j = ||sum_i x_i||^2 - n``.

    Parameters
    ----------
    x : array-like of shape (n, d)
        Embeddings, ``n >= 2``.

    Returns
    -------
    float
        In [0, 2] (at most ``n / (n - 1)`` for unit vectors in practice).
        0 when every record has the same direction; low means a narrow batch
        (bad).
    """
    u = unit_rows(x)
    n = u.shape[0]
    if n < 2:
        return float("nan")
    total = u.sum(axis=0)
    off_diagonal = float(total @ total) - float(np.einsum("ij,ij->", u, u))
    return float(np.clip(1.0 - off_diagonal / (n * (n - 1)), 0.0, 2.0))


def covariance_trace(x: np.ndarray) -> float:
    """Total variance: trace of the (population) covariance of the unit rows.

    Equals the mean squared distance to the centroid, ``1 - ||mean||^2`` for
    unit rows.

    Parameters
    ----------
    x : array-like of shape (n, d)

    Returns
    -------
    float
        In [0, 1]; 0 when all records coincide; low is bad.
    """
    u = unit_rows(x)
    if u.shape[0] == 0:
        return float("nan")
    centred = u - u.mean(axis=0)
    return float(max(np.einsum("ij,ij->", centred, centred) / u.shape[0], 0.0))


def covariance_eigenvalues(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of the population covariance of the unit rows, descending.

    Uses the smaller of the ``n x n`` Gram matrix and the ``d x d`` scatter
    matrix (same non-zero spectrum). Tiny negative round-off is set to 0.

    Parameters
    ----------
    x : array-like of shape (n, d)

    Returns
    -------
    numpy.ndarray of shape (min(n, d),)
    """
    u = unit_rows(x)
    n = u.shape[0]
    centred = u - u.mean(axis=0)
    small = centred @ centred.T if n <= centred.shape[1] else centred.T @ centred
    values = np.linalg.eigvalsh(small / n)[::-1]
    values[values < _TINY] = 0.0
    return values


def participation_ratio(x: np.ndarray) -> float:
    """Participation ratio of the covariance spectrum, ``(sum l)^2 / sum l^2``.

    The number of directions that carry the variance, weighting each by its
    share; a standard effective dimensionality (Gao et al., 2017).

    Parameters
    ----------
    x : array-like of shape (n, d)

    Returns
    -------
    float
        In [0, min(n - 1, d)]: 0 when all records coincide (no variance), 1
        when the variance lies along one direction, ``m`` when it is spread
        equally over ``m`` directions. Low is bad.
    """
    values = covariance_eigenvalues(x)
    square_sum = float(np.sum(values**2))
    if square_sum <= _TINY**2:
        return 0.0
    return float(np.sum(values) ** 2 / square_sum)


def effective_rank(x: np.ndarray) -> float:
    """Effective rank (Roy & Vetterli, 2007): exp of the entropy of the normalised singular values.

    Parameters
    ----------
    x : array-like of shape (n, d)

    Returns
    -------
    float
        In [0, min(n - 1, d)]; 0 when all records coincide, ``m`` when the
        centred data spans ``m`` directions equally. Low is bad. Less
        dominated by the first few directions than :func:`participation_ratio`.
    """
    singular = np.sqrt(covariance_eigenvalues(x))
    total = float(singular.sum())
    if total <= _TINY:
        return 0.0
    p = singular[singular > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def vendi_score(x: np.ndarray) -> float:
    """Vendi score (Friedman & Dieng, 2023) with the cosine-similarity kernel.

    ``exp`` of the Shannon entropy of the eigenvalues of ``K / n``, where
    ``K_ij = cos(x_i, x_j)``: the effective number of distinct records. The
    spectrum is taken from the ``d x d`` matrix ``X^T X / n``, which shares
    the non-zero eigenvalues of ``K / n``.

    Parameters
    ----------
    x : array-like of shape (n, d)

    Returns
    -------
    float
        In [1, n]: 1 when every record is the same, ``m`` for ``m`` equally
        large groups of identical, mutually orthogonal records. Low is bad.
    """
    u = unit_rows(x)
    n = u.shape[0]
    if n == 0:
        return float("nan")
    small = u @ u.T if n <= u.shape[1] else u.T @ u
    values = np.linalg.eigvalsh(small / n)
    values = values[values > _TINY]
    values = values / values.sum()
    return float(np.exp(-np.sum(values * np.log(values))))
