"""Known answers of the dispersion, effective-dimension and Vendi metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from synthfilter.monitor import spread


def clusters(m: int, c: int, dim: int = 16) -> np.ndarray:
    """``m`` mutually orthogonal unit vectors, each repeated ``c`` times."""
    return np.repeat(np.eye(dim)[:m], c, axis=0)


def test_one_repeated_record_has_no_spread():
    x = np.tile(np.random.default_rng(0).normal(size=(1, 32)), (25, 1))
    assert spread.mean_pairwise_cosine_distance(x) == pytest.approx(0.0, abs=1e-12)
    assert spread.covariance_trace(x) == pytest.approx(0.0, abs=1e-12)
    assert spread.participation_ratio(x) == 0.0
    assert spread.effective_rank(x) == 0.0
    assert spread.vendi_score(x) == pytest.approx(1.0)


@pytest.mark.parametrize(("m", "c"), [(2, 5), (3, 4), (5, 7), (8, 3)])
def test_orthogonal_clusters(m, c):
    x = clusters(m, c)
    n = m * c
    assert spread.vendi_score(x) == pytest.approx(m)
    assert spread.participation_ratio(x) == pytest.approx(m - 1)
    assert spread.effective_rank(x) == pytest.approx(m - 1)
    assert spread.mean_pairwise_cosine_distance(x) == pytest.approx((n - c) / (n - 1))
    assert spread.covariance_trace(x) == pytest.approx(1 - 1 / m)


def test_distinct_orthogonal_records_are_all_distinct():
    x = np.eye(10)
    assert spread.vendi_score(x) == pytest.approx(10)
    assert spread.mean_pairwise_cosine_distance(x) == pytest.approx(1.0)


def test_scale_of_rows_does_not_matter():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 12))
    scaled = x * rng.uniform(0.1, 10, size=(40, 1))
    for f in (spread.mean_pairwise_cosine_distance, spread.covariance_trace, spread.participation_ratio,
              spread.effective_rank, spread.vendi_score):
        assert f(scaled) == pytest.approx(f(x), rel=1e-9)


def test_mean_pairwise_distance_matches_brute_force():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 8))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    brute = (1 - sims)[~np.eye(30, dtype=bool)].mean()
    assert spread.mean_pairwise_cosine_distance(x) == pytest.approx(brute)
    # For unit rows the two dispersion measures are tied: mean distance = n/(n-1) * trace.
    assert spread.mean_pairwise_cosine_distance(x) == pytest.approx(30 / 29 * spread.covariance_trace(x))


def test_vendi_matches_kernel_definition_when_n_exceeds_dim():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    eig = np.linalg.eigvalsh(u @ u.T / 50)
    eig = eig[eig > 1e-12]
    assert spread.vendi_score(x) == pytest.approx(np.exp(-np.sum(eig * np.log(eig))))


def test_narrower_batch_scores_lower():
    rng = np.random.default_rng(4)
    centre = rng.normal(size=32)
    noise = rng.normal(size=(200, 32))
    wide = centre + 2.0 * noise
    narrow = centre + 0.3 * noise * np.r_[np.ones(4), np.full(28, 0.2)]
    for f in (spread.mean_pairwise_cosine_distance, spread.participation_ratio, spread.effective_rank,
              spread.vendi_score):
        assert f(narrow) < f(wide)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 30), st.integers(1, 12)),
              elements=st.floats(-100, 100, allow_nan=False, width=32)))
def test_ranges_hold_for_any_input(x):
    n, d = x.shape
    assert 0.0 <= spread.mean_pairwise_cosine_distance(x) <= 2.0
    assert 0.0 <= spread.covariance_trace(x) <= 1.0 + 1e-9
    assert 0.0 <= spread.participation_ratio(x) <= min(n - 1, d) + 1e-6
    assert 0.0 <= spread.effective_rank(x) <= min(n - 1, d) + 1e-6
    assert 1.0 - 1e-9 <= spread.vendi_score(x) <= n + 1e-6
