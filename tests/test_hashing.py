"""Vectorised hashed n-gram counts equal scikit-learn's HashingVectorizer entry for entry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32 as reference_murmurhash

from synthfilter.errors import ConfigError
from synthfilter.hashing import hashed_ngram_counts, murmurhash3_32
from tests.text_cases import EDGE_TEXTS, real_paragraphs


def test_murmurhash_matches_scikit_learn_on_random_bytes():
    rng = np.random.default_rng(0)
    strings = [bytes(rng.integers(0, 256, size=rng.integers(0, 40)).astype(np.uint8)) for _ in range(2000)]
    data = np.frombuffer(b"".join(strings), dtype=np.uint8)
    lengths = np.array([len(s) for s in strings])
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    for seed in (0, 42):
        assert np.array_equal(murmurhash3_32(data, starts, lengths, seed=seed),
                              [reference_murmurhash(s, seed) for s in strings])


@pytest.mark.parametrize("analyzer,ngram_range", [
    ("char_wb", (1, 4)), ("word", (1, 2)), ("char_wb", (2, 5)), ("char_wb", (3, 3)), ("word", (1, 1)), ("word", (2, 3)),
])
def test_counts_equal_hashing_vectorizer(analyzer, ngram_range):
    reference = HashingVectorizer(analyzer=analyzer, ngram_range=ngram_range, n_features=2**18,
                                  alternate_sign=False, norm=None, lowercase=analyzer == "word", dtype=np.float32)
    for texts in (real_paragraphs(300), EDGE_TEXTS):
        expected = reference.transform(texts)
        got = hashed_ngram_counts(texts, analyzer, ngram_range, 2**18)
        assert got.shape == expected.shape and got.dtype == expected.dtype and got.has_sorted_indices
        assert got.indices.dtype == expected.indices.dtype and got.indptr.dtype == expected.indptr.dtype
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.data, expected.data)


def test_chunks_and_small_hash_spaces_change_nothing(monkeypatch):
    import synthfilter.hashing as hashing

    texts = real_paragraphs(40) + EDGE_TEXTS
    reference = HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=1000, alternate_sign=False,
                                  norm=None, lowercase=False, dtype=np.float32).transform(texts)
    monkeypatch.setattr(hashing, "_CHUNK", 7)
    got = hashed_ngram_counts(texts, "char_wb", (1, 3), 1000)
    assert (got != reference).nnz == 0 and np.array_equal(got.indices, reference.indices)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        hashed_ngram_counts(["a b"], "char", (1, 2))
    with pytest.raises(ConfigError):
        hashed_ngram_counts(["a b"], "word", (2, 1))
