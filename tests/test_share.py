from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.share import ShareCalibration, adjust_to_prior, estimate_share


def _scores(rng, n, machine):
    # An imperfect detector: overlapping beta distributions.
    return rng.beta(5, 2, n) if machine else rng.beta(2, 5, n)


def test_pacc_corrects_the_bias_of_the_mean_probability():
    rng = np.random.default_rng(0)
    cal = ShareCalibration(_scores(rng, 4000, True), _scores(rng, 4000, False))
    for true in (0.0, 0.1, 0.3, 0.6):
        n1 = int(true * 3000)
        p = np.concatenate([_scores(rng, n1, True), _scores(rng, 3000 - n1, False)])
        est = estimate_share(p, cal, seed=1)
        assert abs(est.share - true) < 0.03
        assert est.low <= true <= est.high or true == 0.0 and est.low == 0.0
        # The naive mean is biased towards 0.5 away from it.
        if true in (0.0, 0.1):
            assert est.naive_mean > true + 0.15


def test_interval_is_reproducible_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    cal = ShareCalibration(_scores(rng, 2000, True), _scores(rng, 2000, False))
    small = np.concatenate([_scores(rng, 60, True), _scores(rng, 140, False)])
    large = np.concatenate([_scores(rng, 3000, True), _scores(rng, 7000, False)])
    a, b = estimate_share(small, cal, seed=3), estimate_share(small, cal, seed=3)
    assert a == b
    big = estimate_share(large, cal, seed=3)
    assert (big.high - big.low) < (a.high - a.low) / 2


def test_adjust_to_prior_moves_the_mean_to_the_new_prior():
    rng = np.random.default_rng(2)
    y = rng.random(20000) < 0.1
    # Posteriors calibrated at prior 0.5 from Gaussian class likelihoods.
    s = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    p_half = 1 / (1 + np.exp(-2 * s))
    adjusted = adjust_to_prior(p_half, prior=0.1, base_prior=0.5)
    assert abs(adjusted.mean() - 0.1) < 0.01
    np.testing.assert_allclose(adjust_to_prior(p_half, 0.5, 0.5), p_half)
    assert np.all(np.diff(adjusted[np.argsort(p_half)]) >= -1e-12)  # order kept


def test_errors():
    with pytest.raises(ConfigError):
        ShareCalibration(np.array([]), np.array([0.1]))
    with pytest.raises(ConfigError):
        estimate_share(np.array([]), ShareCalibration(np.array([0.9]), np.array([0.1])))


def test_cluster_bootstrap_widens_the_interval_for_correlated_calibration_records():
    rng = np.random.default_rng(4)
    # 40 documents per class whose records share a document-level offset.
    def clustered(center):
        offsets = rng.normal(0, 0.08, 40)
        groups = np.repeat(np.arange(40), 25)
        return np.clip(center + offsets[groups] + rng.normal(0, 0.05, groups.size), 0, 1), groups

    p1, g1 = clustered(0.75)
    p0, g0 = clustered(0.25)
    corpus = np.concatenate([p1[:300], p0[:700]])
    plain = estimate_share(corpus, ShareCalibration(p1, p0), seed=0)
    clustered_est = estimate_share(corpus, ShareCalibration(p1, p0, groups_machine=g1, groups_human=g0), seed=0)
    assert clustered_est.share == plain.share
    assert (clustered_est.high - clustered_est.low) > 1.5 * (plain.high - plain.low)
    round_trip = ShareCalibration.from_dict(ShareCalibration(p1, p0, groups_machine=g1, groups_human=g0).to_dict())
    assert round_trip.groups_human is not None and round_trip.groups_human.size == p0.size


def test_document_bootstrap_of_the_corpus_widens_the_interval_for_alike_paragraphs():
    """Paragraphs of one document share an offset: resampling documents, not paragraphs, carries it."""
    rng = np.random.default_rng(5)
    p1, p0 = rng.beta(8, 2, 2000), rng.beta(2, 8, 2000)
    docs = np.repeat(np.arange(50), 20)
    machine_doc = np.arange(50) < 15  # 30 % of the documents are machine-written
    base = np.where(machine_doc[docs], rng.beta(8, 2, docs.size), rng.beta(2, 8, docs.size))
    corpus = np.clip(base + rng.normal(0, 0.1, 50)[docs], 0, 1)
    by_record = estimate_share(corpus, ShareCalibration(p1, p0), seed=0)
    by_document = estimate_share(corpus, ShareCalibration(p1, p0), groups=[f"doc{d}" for d in docs], seed=0)
    assert by_document.share == by_record.share
    assert by_document.n_documents == 50 and by_record.n_documents is None
    assert (by_document.high - by_document.low) > 2 * (by_record.high - by_record.low)
    assert "50 documents" in str(by_document)
    with pytest.raises(ConfigError, match="one document per record"):
        estimate_share(corpus, ShareCalibration(p1, p0), groups=docs[:10])
    with pytest.raises(ConfigError, match="missing document ids"):
        estimate_share(corpus[:2], ShareCalibration(p1, p0), groups=["a", None])


@pytest.mark.parametrize("grouped", [False, True])
def test_bootstrap_draws_the_same_resamples_as_one_draw_of_64_bit_indices(grouped, monkeypatch):
    """Chunked int32 resampling indices are numpy's one-shot int64 ones (same stream), so intervals do not change."""
    import synthfilter.share as share

    monkeypatch.setattr(share, "BOOTSTRAP_CHUNK", 5_000)  # chunks of 2 (or 7 groups' worth of) resamples: odd sizes too
    values = np.random.default_rng(1).random(2_001)
    groups = np.arange(values.size) // 3 if grouped else None
    got = share._bootstrap_means(values, 1_001, np.random.default_rng(7), groups)
    rng = np.random.default_rng(7)
    if grouped:
        sums, counts = np.bincount(groups, weights=values), np.bincount(groups).astype(np.float64)
        picks = rng.integers(0, sums.size, size=(1_001, sums.size))
        expected = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    else:
        expected = values[rng.integers(0, values.size, size=(1_001, values.size))].mean(axis=1)
    np.testing.assert_array_equal(got, expected)
