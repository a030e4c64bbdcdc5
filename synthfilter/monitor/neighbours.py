"""k-nearest-neighbour metrics with FAISS: support precision and recall, tail recall, near-duplicates.

Improved precision and recall (Kynkäänniemi et al., 2019) approximate the
*support* of a set of embeddings by the union of balls around its points, each
ball reaching the point's k-th nearest neighbour within the set. Then

* **precision** = share of batch records inside the reference's support
  (is the batch realistic?),
* **recall** = share of reference records inside the batch's support
  (how much of the reference does the batch still cover?),
* **tail recall** = recall over the reference's rarest records only: those
  whose own k-NN radius is in the top ``tail_fraction`` (default the rarest
  decile). A batch that lost the tail keeps its recall high (the head is
  most of the mass) while its tail recall drops.
* **tail mass** = share of batch records that are as rare, by the
  reference's yardstick, as the reference's rarest decile: about 0.1 for a
  fresh sample, near 0 for a batch without a tail. Being a share of the whole
  batch it varies less between samples than tail recall, which rests on the
  few records of the reference's tail.
* **tail reach** = the mean rarity of the batch's rarest tenth, a record's
  rarity being the share of reference records whose own k-NN radius is at
  most the record's distance to the reference (its percentile among the
  reference's radii): about 0.95 for a fresh sample, lower when the batch
  stops short of the tail. Of the three it is the most sensitive to a lost
  tail: when the tail is cut off, the batch's rarest records move the whole
  way down, while a share moves by at most the tail fraction.

The k-NN radii come from exact FAISS searches (``faiss.IndexFlatL2``) on
L2-normalised float32 vectors; ball membership is checked exactly against
every ball, by blocks of the distance matrix. A point is "inside" a ball when its squared distance is at most the
ball's squared radius plus ``1e-5`` (float32 round-off), so a set compared
with itself has precision and recall exactly 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "SupportSet",
    "as_float32_unit",
    "covered_by",
    "faiss_threads",
    "knn_distance_to",
    "knn_radii",
    "near_duplicate_clusters",
    "near_duplicate_rate",
    "precision_recall",
]

#: Slack on squared L2 distances (float32 round-off on unit vectors).
DIST_EPS = 1e-5
#: Queries per FAISS range search, bounding memory.
_QUERY_CHUNK = 512


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run FAISS with ``n`` OpenMP threads inside the block, restoring the setting after.

    The monitor makes many small searches; FAISS's idle OpenMP threads spin
    and slow NumPy's BLAS down, so one thread is several times faster there.
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def as_float32_unit(x: np.ndarray) -> np.ndarray:
    """C-contiguous float32 copy of ``x`` with L2-normalised rows (what FAISS takes)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _flat_index(x: np.ndarray) -> faiss.IndexFlatL2:
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    return index


def knn_radii(x: np.ndarray, k: int, index: faiss.Index | None = None) -> np.ndarray:
    """Squared L2 distance from each point to its k-th nearest neighbour in the set, itself excluded.

    Parameters
    ----------
    x : numpy.ndarray of shape (n, d), float32, unit rows
    k : int
        Neighbour rank, ``1 <= k < n``.
    index : faiss.Index, optional
        A flat index already holding ``x``.

    Returns
    -------
    numpy.ndarray of shape (n,), float32
        Squared distances (the first search hit is taken to be the point itself;
        with exact duplicates the duplicate stands in for it at distance 0).
    """
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} needs 1 <= k < n (n={n})")
    index = index if index is not None else _flat_index(x)
    distances, _ = index.search(x, k + 1)
    return np.maximum(distances[:, k], 0.0)


def covered_by(queries: np.ndarray, support: np.ndarray, radii_sq: np.ndarray) -> np.ndarray:
    """Which queries lie inside at least one ball ``||q - s||^2 <= r_s^2``.

    Exact, by blocks of the query-support distance matrix (each ball has its
    own radius, so this is not a k-NN query; the radii come from FAISS).

    Parameters
    ----------
    queries : numpy.ndarray of shape (m, d), float32
    support : numpy.ndarray of shape (n, d), float32
        Ball centres.
    radii_sq : numpy.ndarray of shape (n,)
        Squared radius of each ball.

    Returns
    -------
    numpy.ndarray of shape (m,), bool
    """
    limits = (radii_sq.astype(np.float32) + np.float32(DIST_EPS))[None, :]
    support_sq = np.einsum("ij,ij->i", support, support)[None, :]
    covered = np.zeros(queries.shape[0], dtype=bool)
    for start in range(0, queries.shape[0], _QUERY_CHUNK):
        chunk = queries[start : start + _QUERY_CHUNK]
        dist = np.einsum("ij,ij->i", chunk, chunk)[:, None] + support_sq - 2.0 * (chunk @ support.T)
        covered[start : start + chunk.shape[0]] = (dist <= limits).any(axis=1)
    return covered


@dataclass
class SupportSet:
    """A set of embeddings with its FAISS index and k-NN radii, built once and reused.

    Parameters
    ----------
    x : numpy.ndarray of shape (n, d)
        Embeddings (normalised and cast to float32 here).
    k : int
        Neighbour rank for the radii.

    Attributes
    ----------
    x : numpy.ndarray, float32 unit rows
    index : faiss.IndexFlatL2
    radii_sq : numpy.ndarray
        Squared k-NN radius of each point (larger = rarer).
    """

    x: np.ndarray
    k: int

    def __post_init__(self) -> None:
        self.x = as_float32_unit(self.x)
        self.index = _flat_index(self.x)
        self.radii_sq = knn_radii(self.x, self.k, self.index)

    def tail_mask(self, fraction: float) -> np.ndarray:
        """Boolean mask of the rarest ``fraction`` of points (largest radii; at least one point)."""
        n = self.x.shape[0]
        count = max(1, round(fraction * n))
        order = np.argsort(-self.radii_sq, kind="stable")
        mask = np.zeros(n, dtype=bool)
        mask[order[:count]] = True
        return mask


def knn_distance_to(queries: np.ndarray, reference: SupportSet) -> np.ndarray:
    """Squared L2 distance from each query to its k-th nearest reference point.

    A query that coincides with a reference point (squared distance at most
    ``DIST_EPS``) is treated as that point, so it gets the point's own
    leave-one-out radius: a reference record copied into a batch is exactly as
    rare as it is in the reference.

    Parameters
    ----------
    queries : numpy.ndarray of shape (m, d), float32 unit rows
    reference : SupportSet

    Returns
    -------
    numpy.ndarray of shape (m,), float32
    """
    k = reference.k
    distances, _ = reference.index.search(queries, k + 1)
    distances = np.maximum(distances, 0.0)
    return np.where(distances[:, 0] <= DIST_EPS, distances[:, k], distances[:, k - 1])


def precision_recall(
    batch: SupportSet, reference: SupportSet, tail_fraction: float = 0.1
) -> dict[str, float]:
    """Improved precision, recall and tail recall of a batch against a reference.

    Parameters
    ----------
    batch, reference : SupportSet
        Built with the same ``k``.
    tail_fraction : float, default 0.1
        Share of the reference, by largest k-NN radius, that counts as its tail.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``tail_recall``, each in [0, 1], low is
        bad, and identical sets give 1, 1, 1; ``tail_mass``, the share of batch
        records at least as far from the reference (k-th neighbour distance,
        :func:`knn_distance_to`) as the reference's tail records are from
        theirs: about ``tail_fraction`` for a sample of the reference's own
        distribution, 0 for a batch that lost the tail, higher for a batch of
        novel records; ``tail_reach``, the mean rarity percentile (among the
        reference's radii) of the batch's rarest ``tail_fraction`` of
        records: about ``1 - tail_fraction / 2`` for a fresh sample, lower
        for a batch that stops short of the tail.
    """
    precision = covered_by(batch.x, reference.x, reference.radii_sq)
    recall = covered_by(reference.x, batch.x, batch.radii_sq)
    tail = reference.tail_mask(tail_fraction)
    tail_radius = reference.radii_sq[tail].min()
    batch_dist = knn_distance_to(batch.x, reference)
    in_tail = batch_dist >= tail_radius - DIST_EPS
    rarity = np.searchsorted(np.sort(reference.radii_sq), batch_dist + DIST_EPS, side="right") / reference.radii_sq.size
    return {
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "tail_recall": float(recall[tail].mean()),
        "tail_mass": float(in_tail.mean()),
        "tail_reach": float(np.sort(rarity)[-max(1, round(tail_fraction * rarity.size)):].mean()),
    }


def near_duplicate_clusters(
    x: np.ndarray, threshold: float = 0.95, text_keys: list | None = None
) -> np.ndarray:
    """Cluster labels joining records with cosine similarity >= ``threshold`` or equal text keys.

    Parameters
    ----------
    x : numpy.ndarray of shape (n, d)
        Embeddings.
    threshold : float, default 0.95
        Cosine similarity at or above which two records are near-duplicates.
    text_keys : list, optional
        One hashable key per record (e.g. a normalised-text hash); equal keys
        are exact duplicates.

    Returns
    -------
    numpy.ndarray of shape (n,), int64
        Connected components of the duplicate graph (transitive), numbered in
        order of each cluster's first record.
    """
    u = as_float32_unit(x)
    n = u.shape[0]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    if n > 1:
        index = faiss.IndexFlatIP(u.shape[1])
        index.add(u)
        for start in range(0, n, _QUERY_CHUNK):
            lims, _, ids = index.range_search(u[start : start + _QUERY_CHUNK], float(threshold) - 1e-6)
            owner = start + np.repeat(np.arange(len(lims) - 1), np.diff(lims.astype(np.int64)))
            rows.append(owner)
            cols.append(ids.astype(np.int64))
    if text_keys is not None:
        first: dict = {}
        pairs = [(i, first.setdefault(key, i)) for i, key in enumerate(text_keys)]
        rows.append(np.array([a for a, _ in pairs], dtype=np.int64))
        cols.append(np.array([b for _, b in pairs], dtype=np.int64))
    if not rows or n == 0:
        return np.arange(n, dtype=np.int64)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber by first occurrence so labels do not depend on SciPy's order.
    _, first_index, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_index))
    return rank[inverse].astype(np.int64)


def near_duplicate_rate(labels: np.ndarray) -> float:
    """Share of records that are redundant: all but one record of each duplicate cluster.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Cluster labels from :func:`near_duplicate_clusters`.

    Returns
    -------
    float
        In [0, 1 - 1/n]; 0 when no two records are near-duplicates,
        ``(n - 1) / n`` when all are. High is bad.
    """
    n = labels.size
    if n == 0:
        return float("nan")
    return float(1.0 - np.unique(labels).size / n)
