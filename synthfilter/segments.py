"""Per-segment statistics of a flat array, equal bit for bit to numpy's per-array ones.

Many small arrays (the word lengths of each text, the token log-probabilities
of each document) are stored end to end in one flat array, cut into
consecutive segments by their lengths. The functions here compute each
segment's sum, mean, standard deviation and linear quantiles in a few
vectorised passes, and give exactly the floats that ``a.sum()``, ``a.mean()``,
``a.std()`` and ``np.quantile(a, q)`` give on each segment on its own: numpy
adds floats by pairwise summation (blocks of up to 128 values on eight
accumulators, longer arrays split in halves), which :func:`segment_sums`
reproduces, where ``np.add.reduceat`` would add in another order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["segment_means", "segment_quantiles", "segment_starts", "segment_stds", "segment_sums"]

#: numpy's pairwise-summation block: arrays up to this length are summed on 8 accumulators.
_BLOCK = 128


def segment_starts(lengths: np.ndarray) -> np.ndarray:
    """Offset of each segment in the flat array (``lengths`` laid end to end)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.zeros(lengths.size, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _leaf_sums(values: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """numpy's pairwise sum of runs of at most 128 values."""
    out = np.zeros(start.size, dtype=np.float64)
    short = np.flatnonzero(length < 8)
    for j in range(7):  # fewer than 8 values: one accumulator, in order
        take = short[length[short] > j]
        out[take] += values[start[take] + j]
    block = np.flatnonzero(length >= 8)
    if block.size:
        s, n = start[block], length[block]
        lanes = np.arange(8)
        acc = values[s[:, None] + lanes]
        whole = n - n % 8
        for offset in range(8, _BLOCK, 8):
            more = np.flatnonzero(whole > offset)
            if more.size == 0:
                break
            acc[more] += values[(s[more] + offset)[:, None] + lanes]
        res = ((acc[:, 0] + acc[:, 1]) + (acc[:, 2] + acc[:, 3])) + ((acc[:, 4] + acc[:, 5]) + (acc[:, 6] + acc[:, 7]))
        for j in range(7):  # the tail after the last full block of 8, in order
            more = np.flatnonzero(n % 8 > j)
            res[more] += values[s[more] + whole[more] + j]
        out[block] = res
    return out


def segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of each segment, as ``values[a:b].sum()`` computes it.

    Parameters
    ----------
    values : numpy.ndarray
        Flat float64 values of all segments, end to end.
    lengths : numpy.ndarray
        Length of each segment (0 gives 0.0); they add up to ``values.size``.

    Returns
    -------
    numpy.ndarray of float64, shape ``(len(lengths),)``
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    length = np.asarray(lengths, dtype=np.int64)
    start = segment_starts(length)
    # Split runs longer than the block in halves (rounded down to a multiple of 8),
    # as numpy does, and remember each split to add the halves back in order.
    node_start, node_length = [start], [length]
    splits = []
    parents = np.flatnonzero(length > _BLOCK)
    next_id = length.size
    while parents.size:
        s = np.concatenate(node_start)[parents] if len(node_start) > 1 else start[parents]
        n = np.concatenate(node_length)[parents] if len(node_length) > 1 else length[parents]
        half = n // 2
        half -= half % 8
        left = next_id + np.arange(parents.size)
        right = left + parents.size
        next_id += 2 * parents.size
        node_start.append(np.concatenate([s, s + half]))
        node_length.append(np.concatenate([half, n - half]))
        splits.append((parents, left, right))
        children = np.concatenate([left, right])
        parents = children[np.concatenate([half, n - half]) > _BLOCK]
    all_start, all_length = np.concatenate(node_start), np.concatenate(node_length)
    sums = np.zeros(all_start.size, dtype=np.float64)
    leaves = np.flatnonzero(all_length <= _BLOCK)
    sums[leaves] = _leaf_sums(values, all_start[leaves], all_length[leaves])
    for parent, left, right in reversed(splits):
        sums[parent] = sums[left] + sums[right]
    return sums[: length.size]


def segment_means(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean of each non-empty segment, as ``values[a:b].mean()`` computes it."""
    return segment_sums(values, lengths) / np.asarray(lengths, dtype=np.float64)


def segment_stds(values: np.ndarray, lengths: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Population standard deviation of each non-empty segment, as ``values[a:b].std()``.

    ``means`` (from :func:`segment_means`) saves recomputing them.
    """
    values = np.asarray(values, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if means is None:
        means = segment_means(values, lengths)
    deviation = values - np.repeat(means, lengths)
    np.multiply(deviation, deviation, out=deviation)
    return np.sqrt(segment_sums(deviation, lengths) / lengths.astype(np.float64))


def _sorted_within(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``values`` with each segment sorted ascending (segments stay in place).

    Segments of similar length (up to twice as long) are padded with +inf
    into one matrix and sorted along its rows, which is much faster than one
    lexsort over all values.
    """
    out = np.empty_like(values)
    start = segment_starts(lengths)
    width = np.ones(lengths.size, dtype=np.int64)
    big = lengths > 1
    width[big] = 1 << np.ceil(np.log2(lengths[big])).astype(np.int64)
    for w in np.unique(width):
        rows = np.flatnonzero(width == w)
        n = lengths[rows]
        col = np.arange(w)
        inside = col < n[:, None]
        matrix = np.full((rows.size, w), np.inf)
        take = (start[rows][:, None] + col)[inside]
        matrix[inside] = values[take]
        matrix.sort(axis=1)
        out[take] = matrix[inside]
    return out


def segment_quantiles(values: np.ndarray, lengths: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Quantiles of each non-empty segment, as ``np.quantile(values[a:b], quantiles)``.

    numpy's default (``"linear"``) method: the order statistics either side of
    ``(n - 1) * q``, joined by numpy's own two-sided linear interpolation.
    Segments must hold no NaN.

    Returns
    -------
    numpy.ndarray, shape ``(len(lengths), len(quantiles))``
    """
    values = np.asarray(values, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    ordered = _sorted_within(values, lengths)
    start = segment_starts(lengths)
    out = np.empty((lengths.size, len(quantiles)), dtype=np.float64)
    last = lengths - 1
    for j, q in enumerate(quantiles):
        virtual = last * np.float64(q)
        previous = np.floor(virtual)
        above = virtual >= last
        lo = np.where(above, last, previous.astype(np.int64))
        hi = np.where(above, last, previous.astype(np.int64) + 1)
        gamma = virtual - np.where(above, -1.0, previous)
        a, b = ordered[start + lo], ordered[start + hi]
        diff = b - a
        result = a + diff * gamma
        upper = gamma >= 0.5
        result[upper] = (b - diff * (1 - gamma))[upper]
        out[:, j] = result
    return out
