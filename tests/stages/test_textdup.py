"""Near-duplicate texts cut into sketches, a group-by and pair checks find the clusters of the one-pass LSH."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.neardup import near_duplicate_pairs
from synthfilter.stages import textdup
from synthfilter.stages.tails import components


def _clusters_from_pipeline(texts, threshold):
    keys = textdup.norm_keys(texts)
    er, ec = textdup.exact_pairs(keys)
    active = np.ones(len(texts), dtype=bool)
    active[er] = False
    active &= ~np.all(keys == textdup.BLANK_KEY, axis=1)
    cr, cc = textdup.candidate_pairs(textdup.band_keys_of(texts, threshold), active)
    ok = textdup.ShingleJaccard(threshold)([texts[i] for i in cr], [texts[j] for j in cc])
    blank = ~np.all(keys == textdup.BLANK_KEY, axis=1)
    keep = blank[er]  # blank texts join nothing by shingles (exact-duplicate edges are the tail stage's)
    return components(len(texts), np.r_[er[keep], cr[ok]], np.r_[ec[keep], cc[ok]])


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_same_clusters_as_near_duplicate_pairs(tails_sample, threshold):
    texts = tails_sample["text"].to_list()[:300]
    base = texts[:40]
    # small edits: drop a word, change a word, repeat exactly
    texts = texts + [t.replace(" the ", " ", 1) for t in base] + [t.upper() for t in base[:10]]
    r, c = near_duplicate_pairs(texts, threshold)
    expected = components(len(texts), r, c)
    got = _clusters_from_pipeline(texts, threshold)
    assert pl.Series(got).n_unique() < len(texts)
    assert np.array_equal(got, expected)


def test_candidate_pairs_are_each_pair_once_ordered():
    keys = np.array([[1, 9], [1, 8], [2, 8], [1, 7]], dtype=np.uint64)
    r, c = textdup.candidate_pairs(keys, np.ones(4, dtype=bool))
    assert list(zip(r.tolist(), c.tolist())) == [(1, 0), (2, 1), (3, 0), (3, 1)]
    r, c = textdup.candidate_pairs(keys, np.array([True, False, True, True]))
    assert list(zip(r.tolist(), c.tolist())) == [(3, 0)]


def test_candidate_pairs_equal_every_pair_sharing_a_band_key():
    """Groups of many sizes, inactive rows, several bands: the set of pairs a double loop finds."""
    rng = np.random.default_rng(3)
    n, bands = 400, 5
    keys = rng.integers(0, 60, size=(n, bands)).astype(np.uint64)  # groups of 1 to ~15 per band
    active = rng.random(n) > 0.2
    expected = sorted({(max(i, j), min(i, j)) for band in range(bands) for i in range(n) for j in range(i)
                       if active[i] and active[j] and keys[i, band] == keys[j, band]})
    r, c = textdup.candidate_pairs(keys, active)
    assert list(zip(r.tolist(), c.tolist())) == expected
    assert r.dtype == c.dtype == np.int64


def test_norm_keys_equal_for_equal_normal_forms():
    k = textdup.norm_keys(["Hello,  World!", "hello world", "hello there"])
    assert (k[0] == k[1]).all() and not (k[0] == k[2]).all()
