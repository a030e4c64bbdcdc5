from __future__ import annotations

import numpy as np
import pytest

from synthfilter.encoders import CachedEncoder, get_encoder
from synthfilter.errors import ConfigError


@pytest.mark.parametrize("name,dim", [("minilm", 384), ("static", 64)])
def test_packaged_encoders_load_offline_and_normalise(name, dim, monkeypatch):
    # Any attempt to reach a hub would fail: the packaged weights need none.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = get_encoder(name, cache=False)
    vectors = enc.encode(["A short sentence about cats.", "Quarterly revenue rose by four percent."])
    assert vectors.shape == (2, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "@" in enc.id  # name@weights-hash


def test_minilm_puts_paraphrases_closer_than_unrelated_text(minilm):
    a, b, c = minilm.encode(["The cat sat on the mat.", "A cat was sitting on the mat.",
                             "Interest rates rose sharply this quarter."])
    assert a @ b > a @ c + 0.3


def test_cache_returns_identical_vectors_and_skips_work(tmp_path):
    base = get_encoder("static", cache=False)
    cached = CachedEncoder(base, tmp_path)
    texts = ["one text", "two texts", "one text"]
    first = cached.encode(texts)
    assert cached.misses == 2  # the repeat is encoded once
    second = cached.encode(texts)
    assert cached.misses == 0 and cached.hits == 3
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, base.encode(texts))


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown encoder 'nope'"):
        get_encoder("nope")
