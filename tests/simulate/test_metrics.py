from __future__ import annotations

from collections import Counter

import pytest

from synthfilter.simulate.metrics import distinct_n, survival, token_counts, tv_distance


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a"], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)


def test_tv_distance():
    assert tv_distance(Counter(a=1, b=1), Counter(a=2, b=2)) == 0.0
    assert tv_distance(Counter(a=1), Counter(b=5)) == 1.0
    assert tv_distance(Counter(a=3, b=1), Counter(a=1, b=1)) == pytest.approx(0.25)
    assert tv_distance(Counter(), Counter(a=1)) == 1.0


def test_survival_and_counts():
    counts = token_counts(["the cat.", "the dog"])
    assert counts["the"] == 2 and counts["."] == 1
    assert survival({"cat", "emu"}, counts) == 0.5
    assert survival(set(), counts) == 1.0
