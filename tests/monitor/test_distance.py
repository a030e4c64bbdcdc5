"""MMD and Fréchet distance: zero for identical sets, growing with shift, matching the textbook formula."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from synthfilter.monitor import distance


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(0).normal(size=(120, 24))
    assert distance.mmd_rbf(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert distance.frechet_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-6)


def test_distances_grow_with_shift():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 16))
    ref = unit(base + 2 * np.eye(16)[0])
    mmds, fds = [], []
    for shift in (0.0, 1.0, 3.0):
        batch = unit(rng.normal(size=(300, 16)) + 2 * np.eye(16)[0] + shift * np.eye(16)[1])
        mmds.append(distance.mmd_rbf(batch, ref))
        fds.append(distance.frechet_distance(batch, ref))
    assert mmds[0] < mmds[1] < mmds[2]
    assert fds[0] < fds[1] < fds[2]


def test_mmd_matches_direct_formula_and_reused_self_kernel():
    rng = np.random.default_rng(2)
    x, y = unit(rng.normal(size=(40, 5))), unit(rng.normal(size=(50, 5)) + 1)
    bw = 0.7
    k = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * bw**2))
    expected = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    assert distance.mmd_rbf(x, y, bw) == pytest.approx(expected)
    assert distance.mmd_rbf(x, y, bw, y_self_kernel=distance.mean_self_kernel(y, bw)) == pytest.approx(expected)


def test_frechet_matches_scipy_sqrtm():
    rng = np.random.default_rng(3)
    x, y = unit(rng.normal(size=(200, 6))), unit(rng.normal(size=(150, 6)) + 0.5)
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x.T, bias=True), np.cov(y.T, bias=True)
    expected = ((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * scipy.linalg.sqrtm(cx @ cy).real)
    assert distance.frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)
    assert distance.frechet_distance(distance.GaussianMoments(x), distance.GaussianMoments(y)) == pytest.approx(
        expected, rel=1e-6)


def test_median_bandwidth():
    x = np.eye(4)  # all pairwise distances are sqrt(2)
    assert distance.median_bandwidth(x) == pytest.approx(np.sqrt(2))
    assert distance.median_bandwidth(np.ones((5, 3))) == 1.0
