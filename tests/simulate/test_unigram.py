"""Recursive unigram fitting on Zipf(1.1) reproduces the published reference figures (README, "Simulating collapse").

Tolerances: the spec allows +-5 points on type survival. Each run already
averages over ~7,400 seen types (~5,000 rare ones), and across runs the
survival shares vary by under one point (measured sd about 0.004), so with 8
runs the standard error is about 0.15 points: +-5 points is > 30 standard
errors. The TV figure (0.037) gets +-0.005 (run-to-run sd about 0.001).
"""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.simulate.unigram import simulate_unigram, zipf_probabilities

RUNS = 8


def _at(table, t, column):
    return table.filter(table["generation"] == t)[column].item()


@pytest.fixture(scope="module")
def replace():
    return simulate_unigram("replace", generations=200, n_runs=RUNS, seed=1)


def test_replacement_loses_types_like_the_reference(replace):
    for t, kept, rare in [(10, 0.39, 0.28), (50, 0.15, 0.07), (200, 0.05, 0.02)]:
        assert _at(replace, t, "types_kept") == pytest.approx(kept, abs=0.05), t
        assert _at(replace, t, "rare_kept") == pytest.approx(rare, abs=0.05), t
    # A lost type never comes back without real data.
    assert np.all(np.diff(replace["types_kept"].to_numpy()) <= 0)


def test_real_share_alone_still_loses_rare_types():
    table = simulate_unigram("fixed_real", generations=30, n_runs=RUNS, real_share=0.8, seed=2)
    assert 1.0 - _at(table, 30, "rare_kept") == pytest.approx(0.10, abs=0.05)
    assert _at(table, 30, "types_kept") < 1.0


def test_cap_plus_rare_keeps_every_type_close_to_the_original():
    table = simulate_unigram("cap_keep_rare", generations=30, n_runs=RUNS, real_share=0.8, seed=3)
    # Every rare type is in the real part by construction; a frequent type can
    # still die when the 80 % subsample misses all of its tokens (p = 0.2**6 or
    # less), about one type in 50,000.
    assert table["rare_kept"].min() == 1.0
    assert table["types_kept"].min() > 0.999
    assert _at(table, 30, "tv_to_gen0") == pytest.approx(0.037, abs=0.005)


def test_accumulate_keeps_every_type():
    table = simulate_unigram("accumulate", generations=20, n_runs=2, seed=4)
    assert table["types_kept"].min() == 1.0


def test_zipf_probabilities():
    p = zipf_probabilities(5, 1.0)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        zipf_probabilities(0, 1.1)


def test_same_seed_same_table():
    a = simulate_unigram("cap_keep_rare", generations=3, vocab_size=500, n_tokens=2000, n_runs=3, seed=9)
    b = simulate_unigram("cap_keep_rare", generations=3, vocab_size=500, n_tokens=2000, n_runs=3, seed=9)
    assert a.equals(b)


@pytest.mark.parametrize("kwargs", [{"regime": "nope"}, {"n_tokens": 0}, {"real_share": -0.1}, {"rare_max_count": 0}])
def test_bad_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        simulate_unigram(**kwargs)
