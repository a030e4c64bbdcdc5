from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.neardup.minhash import (
    EMPTY_KEY,
    EMPTY_VALUE,
    MAX_MISS_AT_THRESHOLD,
    band_keys,
    lsh_bands,
    minhash_signatures,
)
from synthfilter.neardup.shingles import ShingleHashes, shingle_hashes


def sets_with_jaccard(rng, n_pairs: int, union_sizes, jac: float) -> ShingleHashes:
    """``n_pairs`` pairs of random hash sets, record 2i and 2i + 1, each pair's Jaccard exactly ``jac``."""
    parts = []
    for p in range(n_pairs):
        u = int(union_sizes[p % len(union_sizes)])
        inter = int(round(jac * u))
        assert inter / u == pytest.approx(jac)
        pool = rng.choice(2**48, size=u, replace=False).astype(np.uint64)
        only = u - inter
        a = np.sort(pool[: inter + only // 2])
        b = np.sort(np.concatenate([pool[:inter], pool[inter + only // 2 :]]))
        parts.append(ShingleHashes(np.concatenate([a, b]), np.array([0, a.size, a.size + b.size])))
    return ShingleHashes.concat(parts)


def test_signatures_are_deterministic_per_seed_and_differ_across_seeds(paragraphs):
    h = shingle_hashes(paragraphs[:200] + ["", "ab"])
    a, b = minhash_signatures(h, 64, seed=3), minhash_signatures(h, 64, seed=3)
    c = minhash_signatures(h, 64, seed=4)
    assert a.shape == (202, 64) and a.dtype == np.uint64
    assert np.array_equal(a, b)
    assert (a[:200] != c[:200]).mean() > 0.95
    assert (a[200] == EMPTY_VALUE).all() and (a[:200] != EMPTY_VALUE).all() and (a[201] != EMPTY_VALUE).all()


@pytest.mark.parametrize("jac", [0.5, 0.8])
def test_each_value_agrees_with_probability_equal_to_the_jaccard(jac):
    rng = np.random.default_rng(7)
    h = sets_with_jaccard(rng, 400, [10, 40, 200, 600], jac)
    sig = minhash_signatures(h, 128, seed=11)
    agree = (sig[0::2] == sig[1::2]).mean(axis=1)
    # 400 pairs x 128 values; the standard error of the mean agreement is well under 0.01.
    assert agree.mean() == pytest.approx(jac, abs=0.02)


def test_miss_rate_exactly_at_the_threshold_stays_within_the_bound():
    threshold = 0.8
    bands, rows = lsh_bands(threshold, 128)
    rng = np.random.default_rng(0)
    h = sets_with_jaccard(rng, 1500, [20, 50, 150, 300, 500], threshold)  # sets from 18 to 450 shingles
    misses = 0
    for seed in range(4):  # 6,000 pairs at Jaccard exactly 0.8
        keys = band_keys(minhash_signatures(h, 128, seed=seed), bands, rows)
        misses += int((~(keys[0::2] == keys[1::2]).any(axis=1)).sum())
    assert misses / 6000 <= MAX_MISS_AT_THRESHOLD
    # ... and LSH is not trivially finding everything: dissimilar pairs mostly are no candidates.
    far = sets_with_jaccard(rng, 1000, [300], 0.3)
    keys = band_keys(minhash_signatures(far, 128, seed=0), bands, rows)
    assert (keys[0::2] == keys[1::2]).any(axis=1).mean() < 0.05


def test_band_keys():
    sig = minhash_signatures(shingle_hashes(["the same text here", "The same text, here!", "other words", ""]), 128)
    keys = band_keys(sig, 21, 6)
    assert keys.shape == (4, 21) and keys.dtype == np.uint64
    assert np.array_equal(keys[0], keys[1])
    assert (keys[3] == EMPTY_KEY).all() and (keys[:3] != EMPTY_KEY).all()
    assert len(set(keys[0].tolist())) == 21  # bands hash apart
    with pytest.raises(ConfigError, match="bands"):
        band_keys(sig, 22, 6)
    with pytest.raises(ConfigError, match="num_perm"):
        minhash_signatures(shingle_hashes(["abc"]), 0)


def test_lsh_bands_meet_the_bound():
    for threshold in (0.5, 0.8, 0.9, 0.97, 1.0):
        bands, rows = lsh_bands(threshold, 128)
        assert bands * rows <= 128
        assert (1 - threshold**rows) ** bands <= MAX_MISS_AT_THRESHOLD
