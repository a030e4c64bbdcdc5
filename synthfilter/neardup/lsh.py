"""LSH buckets, candidate pairs and their joining into near-duplicate clusters (global steps).

Records that share a band key fall in one bucket. Checking every pair of a
bucket would cost a quadratic number of checks for a template repeated
thousands of times, so :func:`link_candidates` checks them in rounds: round
``r`` looks at the members ``2**r`` to ``2**(r+1) - 1`` places apart in a
bucket (members in row order), and only at pairs not yet joined through
earlier rounds; a bucket whose members are all joined drops out. A bucket
of copies or close variants is joined by its first round (a chain of
``size - 1`` checks); a pair never checked was already joined. The clusters
are therefore exactly the connected components of "shares a band key and
has Jaccard similarity >= threshold", as if every candidate pair were checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from synthfilter.errors import ConfigError
from synthfilter.neardup.minhash import EMPTY_KEY

__all__ = ["Buckets", "candidate_pairs", "group_buckets", "link_candidates"]

Pairs = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Buckets:
    """Records that share a band key, bucket after bucket (buckets of one record left out).

    Attributes
    ----------
    members : numpy.ndarray of int64
        Record indices, ascending within each bucket.
    starts : numpy.ndarray of int64
        ``n_buckets + 1`` bounds into ``members``.
    n_records : int
        Records in the key array the buckets come from.
    """

    members: np.ndarray
    starts: np.ndarray
    n_records: int

    @property
    def sizes(self) -> np.ndarray:
        """Members per bucket."""
        return np.diff(self.starts)


def group_buckets(keys: np.ndarray) -> Buckets:
    """Group records by band key, band by band (global).

    Parameters
    ----------
    keys : numpy.ndarray of uint64, shape (n, bands)
        From :func:`~synthfilter.neardup.minhash.band_keys`.

    Returns
    -------
    Buckets
        Every set of two or more records with the same key in the same band;
        :data:`~synthfilter.neardup.minhash.EMPTY_KEY` (blank records) is skipped.
    """
    keys = np.asarray(keys)
    if keys.ndim != 2 or keys.dtype != np.uint64:
        raise ConfigError(f"band keys must be a 2-D uint64 array, got {keys.dtype} of shape {keys.shape}")
    members, sizes = [], []
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")  # equal keys stay in row order
        sorted_keys = keys[order, band]
        new = np.ones(order.size, dtype=bool)
        new[1:] = sorted_keys[1:] != sorted_keys[:-1]
        starts = np.flatnonzero(new)
        run = np.diff(np.append(starts, order.size))
        shared = (run > 1) & (sorted_keys[starts] != EMPTY_KEY)
        members.append(order[np.repeat(shared, run)])
        sizes.append(run[shared])
    bounds = np.zeros(sum(s.size for s in sizes) + 1, dtype=np.int64)
    if sizes:
        np.cumsum(np.concatenate(sizes), out=bounds[1:])
    flat = np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64)
    return Buckets(flat, bounds, int(keys.shape[0]))


def _mixed(buckets: Buckets, labels: np.ndarray) -> Buckets:
    """The buckets whose members are not all in one cluster."""
    if buckets.members.size == 0:
        return buckets
    lab = labels[buckets.members]
    lo = np.minimum.reduceat(lab, buckets.starts[:-1])
    hi = np.maximum.reduceat(lab, buckets.starts[:-1])
    keep = lo != hi
    sizes = buckets.sizes[keep]
    starts = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    return Buckets(buckets.members[np.repeat(keep, buckets.sizes)], starts, buckets.n_records)


def candidate_pairs(
    keys: np.ndarray | Buckets, labels: np.ndarray | None = None, *, offsets: tuple[int, int | None] = (1, 2)
) -> Pairs:
    """Pairs of records in one bucket, ``d`` places apart for ``offsets[0] <= d < offsets[1]`` (global).

    Parameters
    ----------
    keys : numpy.ndarray of uint64, shape (n, bands), or Buckets
        Band keys (:func:`~synthfilter.neardup.minhash.band_keys`), or their
        :func:`group_buckets` when called repeatedly.
    labels : numpy.ndarray of int, optional
        Current cluster of each record: pairs within one cluster are left out,
        and so are buckets held by one cluster.
    offsets : (int, int or None), default (1, 2)
        Distances within a bucket (members in row order). The default links
        each member to the one before it; ``(1, None)`` gives every pair.

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Unique pairs with ``rows > cols``, sorted by ``rows`` then ``cols``.

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.array([[5, 7], [5, 8], [5, 7], [9, 8]], dtype=np.uint64)
    >>> candidate_pairs(keys)
    (array([1, 2, 2, 3]), array([0, 0, 1, 1]))
    """
    buckets = keys if isinstance(keys, Buckets) else group_buckets(keys)
    lo, hi = offsets
    if lo < 1 or (hi is not None and hi <= lo):
        raise ConfigError(f"offsets must satisfy 1 <= low < high, got {offsets}")
    if labels is not None:
        labels = np.asarray(labels)
        buckets = _mixed(buckets, labels)
    sizes = buckets.sizes
    pos = np.arange(buckets.members.size, dtype=np.int64) - np.repeat(buckets.starts[:-1], sizes)
    # Member at position p pairs with those at p - d, lo <= d < min(hi, p + 1).
    top = pos if hi is None else np.minimum(pos, hi - 1)
    count = np.maximum(top - lo + 1, 0)
    total = int(count.sum())
    q = np.repeat(np.arange(pos.size, dtype=np.int64), count)
    first = np.zeros(count.size, dtype=np.int64)
    np.cumsum(count[:-1], out=first[1:])
    d = lo + np.arange(total, dtype=np.int64) - np.repeat(first, count)
    rows, cols = buckets.members[q], buckets.members[q - d]
    if labels is not None:
        differ = labels[rows] != labels[cols]
        rows, cols = rows[differ], cols[differ]
    code = np.unique(rows * np.int64(buckets.n_records) + cols)
    return code // buckets.n_records, code % buckets.n_records


def link_candidates(keys: np.ndarray, verify: Callable[[Pairs], Pairs]) -> Pairs:
    """Join LSH candidates that pass ``verify`` into clusters; return a spanning forest (global).

    Parameters
    ----------
    keys : numpy.ndarray of uint64, shape (n, bands)
        Band keys of all records (:func:`~synthfilter.neardup.minhash.band_keys`).
    verify : callable
        Takes candidate pairs ``(rows, cols)`` and returns those that are
        near-duplicates, e.g. ``lambda p: verify_pairs(p, hashes, 0.8)``;
        it may run on workers. Called once per round with each pair at most once.

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Verified pairs, ``rows > cols``, sorted by ``rows`` then ``cols``:
        a spanning forest of the clusters (``n - k`` pairs for ``k`` clusters).
    """
    buckets = group_buckets(keys)
    n = buckets.n_records
    labels = np.arange(n, dtype=np.int64)
    found_r, found_c = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    failed = np.zeros(0, dtype=np.int64)
    lo = 1
    while True:
        buckets = _mixed(buckets, labels)
        if buckets.members.size == 0 or lo >= int(buckets.sizes.max()):
            break
        rows, cols = candidate_pairs(buckets, labels, offsets=(lo, 2 * lo))
        code = rows * np.int64(n) + cols
        fresh = ~np.isin(code, failed, assume_unique=True)
        rows, cols, code = rows[fresh], cols[fresh], code[fresh]
        if code.size:
            ok_r, ok_c = verify((rows, cols))
            ok_r, ok_c = np.asarray(ok_r, dtype=np.int64), np.asarray(ok_c, dtype=np.int64)
            failed = np.union1d(failed, np.setdiff1d(code, ok_r * np.int64(n) + ok_c, assume_unique=True))
            found_r.append(ok_r)
            found_c.append(ok_c)
            graph = coo_matrix(
                (np.ones(sum(r.size for r in found_r), dtype=np.int8), (np.concatenate(found_r), np.concatenate(found_c))),
                shape=(n, n),
            )
            labels = connected_components(graph, directed=False)[1].astype(np.int64)
        lo *= 2
    return _spanning_forest(np.concatenate(found_r), np.concatenate(found_c), n)


def _spanning_forest(rows: np.ndarray, cols: np.ndarray, n: int) -> Pairs:
    """A spanning forest of the graph, unique for the edge order: the minimum tree with edge ``i`` weighing ``i + 1``."""
    if rows.size == 0:
        return rows, cols
    code = np.unique(np.maximum(rows, cols) * np.int64(n) + np.minimum(rows, cols))
    rows, cols = code // n, code % n
    tree = minimum_spanning_tree(coo_matrix((np.arange(1, code.size + 1, dtype=np.float64), (rows, cols)), shape=(n, n)))
    tree = tree.tocoo()
    r, c = tree.row.astype(np.int64), tree.col.astype(np.int64)
    code = np.sort(np.maximum(r, c) * np.int64(n) + np.minimum(r, c))
    return code // n, code % n
