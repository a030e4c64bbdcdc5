"""k-NN precision/recall, tail coverage and near-duplicates, against brute force and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthfilter.monitor import neighbours as nb


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(rng, centres, per, spread=0.05):
    x = np.concatenate([c + spread * rng.normal(size=(per, len(c))) for c in centres])
    return unit(x)


def brute_covered(q, s, r2):
    d = ((q[:, None, :] - s[None, :, :]) ** 2).sum(-1)
    return (d <= r2[None, :] + nb.DIST_EPS).any(axis=1)


def test_identical_sets_have_precision_recall_one():
    x = np.random.default_rng(0).normal(size=(80, 16))
    a, b = nb.SupportSet(x, 5), nb.SupportSet(x.copy(), 5)
    out = nb.precision_recall(a, b)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["tail_recall"] == 1.0


def test_far_apart_sets_have_precision_recall_zero():
    rng = np.random.default_rng(1)
    ref = blobs(rng, [np.eye(8)[0]], 60)
    batch = blobs(rng, [np.eye(8)[1]], 60)
    out = nb.precision_recall(nb.SupportSet(batch, 3), nb.SupportSet(ref, 3))
    assert out["precision"] == 0.0 and out["recall"] == 0.0 and out["tail_mass"] == 1.0


def test_batch_on_half_the_modes_keeps_precision_loses_recall():
    rng = np.random.default_rng(2)
    centres = list(np.eye(8)[:4])
    ref = blobs(rng, centres, 50)
    batch = blobs(rng, centres[:2], 100)
    out = nb.precision_recall(nb.SupportSet(batch, 5), nb.SupportSet(ref, 5))
    assert out["precision"] > 0.9
    assert 0.4 <= out["recall"] <= 0.6


def test_reference_without_its_tail_loses_tail_coverage_only():
    rng = np.random.default_rng(3)
    ref = nb.SupportSet(rng.normal(size=(400, 8)), 5)
    keep = np.argsort(ref.radii_sq)[:320]  # drop the rarest 20 %
    batch = nb.SupportSet(ref.x[keep], 5)
    out = nb.precision_recall(batch, ref, tail_fraction=0.1)
    assert out["precision"] == 1.0
    assert out["recall"] > 0.8
    assert out["tail_mass"] == 0.0  # no batch record is as rare as the reference's rarest decile
    assert out["tail_reach"] < 0.8  # its rarest records stop at the 80th percentile


def test_batch_without_isolated_records_does_not_recall_them():
    rng = np.random.default_rng(7)
    core = blobs(rng, [np.eye(16)[0]], 360, spread=0.05)
    outliers = unit(rng.normal(size=(40, 16)))
    ref = nb.SupportSet(np.concatenate([core, outliers]), 5)
    assert ref.tail_mask(0.1)[360:].all()  # the isolated records are the tail
    out = nb.precision_recall(nb.SupportSet(core, 5), ref, tail_fraction=0.1)
    assert out["recall"] == pytest.approx(0.9, abs=0.01)
    assert out["tail_recall"] == 0.0 and out["tail_mass"] == 0.0


def test_tail_mass_of_a_fresh_sample_is_about_the_tail_fraction():
    rng = np.random.default_rng(4)
    ref = nb.SupportSet(rng.normal(size=(2000, 6)), 5)
    batch = nb.SupportSet(rng.normal(size=(2000, 6)), 5)
    out = nb.precision_recall(batch, ref, tail_fraction=0.1)
    assert out["tail_mass"] == pytest.approx(0.1, abs=0.03)
    assert out["tail_reach"] == pytest.approx(0.95, abs=0.02)


def test_copied_reference_record_keeps_its_own_rarity():
    rng = np.random.default_rng(5)
    ref = nb.SupportSet(rng.normal(size=(100, 8)), 4)
    assert np.allclose(nb.knn_distance_to(ref.x, ref), ref.radii_sq, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 40), st.integers(2, 40), st.integers(1, 6))
def test_covered_by_matches_brute_force(seed, m, n, dim):
    rng = np.random.default_rng(seed)
    q = nb.as_float32_unit(rng.normal(size=(m, dim)))
    s = nb.as_float32_unit(rng.normal(size=(n, dim)))
    r2 = rng.uniform(0, 2, size=n).astype(np.float32)
    assert (nb.covered_by(q, s, r2) == brute_covered(q.astype(np.float64), s.astype(np.float64), r2)).all()


def test_knn_radii_match_brute_force():
    x = nb.as_float32_unit(np.random.default_rng(6).normal(size=(60, 5)))
    d = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    expected = np.sort(d, axis=1)[:, 2]  # 3rd neighbour, self excluded
    assert np.allclose(nb.knn_radii(x, 3), expected, atol=1e-5)


def test_near_duplicates_by_cosine_and_by_text():
    e = np.eye(6)
    x = np.stack([e[0], e[0] * 3, e[1], e[1] + 0.01 * e[2], e[2], e[3]])
    labels = nb.near_duplicate_clusters(x, 0.95)
    assert labels.tolist() == [0, 0, 1, 1, 2, 3]
    assert nb.near_duplicate_rate(labels) == pytest.approx(2 / 6)
    labels = nb.near_duplicate_clusters(x, 0.95, text_keys=["a", "b", "c", "d", "e", "e"])
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert nb.near_duplicate_rate(labels) == pytest.approx(3 / 6)


def test_all_copies_are_one_cluster_and_threshold_is_inclusive():
    x = np.tile([[1.0, 0.0]], (10, 1))
    assert nb.near_duplicate_rate(nb.near_duplicate_clusters(x)) == pytest.approx(0.9)
    cos = 0.95
    pair = np.array([[1.0, 0.0], [cos, np.sqrt(1 - cos**2)]])
    assert nb.near_duplicate_clusters(pair, 0.95).tolist() == [0, 0]
    assert nb.near_duplicate_clusters(pair, 0.951).tolist() == [0, 1]


def test_faiss_threads_are_restored():
    import faiss

    before = faiss.omp_get_max_threads()
    with nb.faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before
