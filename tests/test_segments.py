"""Per-segment statistics equal numpy's per-array results bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.segments import segment_means, segment_quantiles, segment_starts, segment_stds, segment_sums

# Lengths around numpy's pairwise-summation boundaries (8-value blocks, 128-value
# leaves, halves rounded to multiples of 8) and past its 8192-value buffer.
LENGTHS = [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 135, 255, 256, 257, 1000, 8192, 8193, 20001]


@pytest.fixture(scope="module")
def segments():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([LENGTHS, rng.integers(1, 300, size=400)])
    rng.shuffle(lengths)
    values = rng.normal(size=lengths.sum()) * rng.exponential(size=lengths.sum()) * 1e3
    values[::5] = np.round(values[::5])  # ties, for the quantiles
    starts = segment_starts(lengths)
    return values, lengths, [values[s:s + n] for s, n in zip(starts, lengths)]


def test_sums_means_stds_match_numpy_bit_for_bit(segments):
    values, lengths, parts = segments
    assert np.array_equal(segment_sums(values, lengths), [p.sum() for p in parts])
    means = segment_means(values, lengths)
    assert np.array_equal(means, [p.mean() for p in parts])
    assert np.array_equal(segment_stds(values, lengths), [p.std() for p in parts])
    assert np.array_equal(segment_stds(values, lengths, means), [p.std() for p in parts])


def test_reduceat_would_not_do(segments):
    """The reason the module exists: numpy's add.reduceat sums in another order."""
    values, lengths, parts = segments
    reduceat = np.add.reduceat(values, segment_starts(lengths))
    assert not np.array_equal(reduceat, [p.sum() for p in parts])


@pytest.mark.parametrize("quantiles", [(0.1, 0.5, 0.9), (0.0, 1.0), (0.25, 0.333, 0.75, 0.999)])
def test_quantiles_match_numpy_linear_method(segments, quantiles):
    values, lengths, parts = segments
    expected = np.array([np.quantile(p, quantiles) for p in parts])
    assert np.array_equal(segment_quantiles(values, lengths, quantiles), expected)


def test_strided_columns_and_empty_segments():
    rng = np.random.default_rng(1)
    both = rng.normal(size=(300, 2))
    column = both[:, 0]  # a strided view, as a column of a (tokens, 2) array
    assert segment_sums(column, [300])[0] == column.sum()
    assert segment_means(column, [300])[0] == column.mean()
    assert np.array_equal(segment_sums(np.ones(3), [0, 3, 0]), [0.0, 3.0, 0.0])
    assert segment_sums(np.zeros(0), np.zeros(0, dtype=int)).shape == (0,)
