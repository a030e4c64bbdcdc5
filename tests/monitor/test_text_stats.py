"""Text statistics on small cases with known answers."""

from __future__ import annotations

import math

import pytest

from synthfilter.monitor import text_stats as ts


def test_tokenize_casefolds_and_splits_on_non_word():
    assert ts.tokenize("Don't STOP, café-bar!") == ["don", "t", "stop", "café", "bar"]


def test_distinct_n_known_answers():
    toks = [ts.tokenize("a b a b"), ts.tokenize("a b")]
    assert ts.distinct_n(toks, 1) == pytest.approx(2 / 6)
    assert ts.distinct_n(toks, 2) == pytest.approx(2 / 4)  # (a b), (b a); n-grams do not cross records
    assert ts.distinct_n([["x"] * 10], 1) == pytest.approx(0.1)
    assert ts.distinct_n([["a", "b", "c"]], 3) == 1.0
    assert math.isnan(ts.distinct_n([["a"]], 2))
    with pytest.raises(ValueError):
        ts.distinct_n(toks, 0)


def test_type_token_ratio_and_lengths():
    toks = [["a", "a", "a", "a"], ["a", "b"], []]
    assert ts.mean_type_token_ratio(toks) == pytest.approx((0.25 + 1.0) / 2)
    stats = ts.length_stats([["a"] * 2, ["a"] * 4, ["a"] * 6])
    assert stats["length_mean"] == pytest.approx(4.0)
    assert stats["length_cv"] == pytest.approx((8 / 3) ** 0.5 / 4)
    assert ts.length_stats([["a"] * 5] * 3)["length_cv"] == 0.0


def test_repetitive_text_scores_lower_than_varied_text():
    varied = [ts.tokenize(t) for t in ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn"]]
    samey = [ts.tokenize(t) for t in ["the cat sat on the mat"] * 3]
    assert ts.distinct_n(samey, 1) < ts.distinct_n(varied, 1)
    assert ts.distinct_n(samey, 2) < ts.distinct_n(varied, 2)
