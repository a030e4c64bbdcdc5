"""The gold-mixture share correction: the share as a mixture proportion against gold human records."""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.share import GOLD_HUMAN, GOLD_MIXTURE, MIN_GOLD, ShareCalibration, estimate_share, mixture_share


def _calibration(rng: np.random.Generator) -> ShareCalibration:
    # The machine side comes from generators the detector knows well: they score higher than the corpus's.
    return ShareCalibration(p_machine=rng.beta(12, 1, 800), p_human=rng.beta(2, 8, 800), base_prior=0.5)


def _mix(rng: np.random.Generator, share: float, n: int = 3000) -> np.ndarray:
    n1 = int(round(share * n))
    return np.r_[rng.beta(1, 12, n - n1), rng.beta(5, 2, n1)]  # machine text: almost nothing below 0.15


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.6])
def test_it_finds_the_share_where_a_wrong_machine_side_biases_gold_human(share):
    rng = np.random.default_rng(int(share * 10))
    cal = _calibration(rng)
    corpus, gold = _mix(rng, share), rng.beta(1, 12, 1000)
    mixture = estimate_share(corpus, cal.with_gold_mixture(gold), seed=1)
    human = estimate_share(corpus, cal.with_gold_human(gold), seed=1)
    assert abs(mixture.share - share) < 0.03
    assert mixture.low <= share <= mixture.high
    if share >= 0.3:  # m1 0.92 against 0.71 for this machine text: the gold-human correction reads ~25 % low
        assert human.share < share - 0.05 and not human.low <= share <= human.high
    assert mixture.method == "bbe" and mixture.correction == GOLD_MIXTURE and mixture.n_gold == 1000
    assert 0.0 <= mixture.threshold <= 1.0 and mixture.threshold in gold


def test_it_reads_low_where_machine_text_looks_human():
    """The irreducibility assumption: machine text in the most human-looking region is counted as human."""
    rng = np.random.default_rng(5)
    # 30 % machine, half of which scores like the humans.
    corpus = np.r_[rng.beta(1, 12, 2100), rng.beta(1, 12, 450), rng.beta(8, 2, 450)]
    est = mixture_share(corpus, rng.beta(1, 12, 1000))
    assert abs(est.share - 0.15) < 0.04 and est.high < 0.3


def test_same_seed_same_estimate_and_the_interval_shrinks_with_more_data():
    rng = np.random.default_rng(2)
    corpus, gold = _mix(rng, 0.3, 400), rng.beta(1, 12, 100)
    a, b = mixture_share(corpus, gold, seed=4), mixture_share(corpus, gold, seed=4)
    assert a == b
    other = mixture_share(corpus, gold, seed=5)
    assert other.share == a.share and (other.low, other.high) != (a.low, a.high)
    big = mixture_share(_mix(rng, 0.3, 8000), rng.beta(1, 12, 3000), seed=4)
    assert (big.high - big.low) < (a.high - a.low) / 2


def test_the_interval_holds_the_point_and_the_clip():
    rng = np.random.default_rng(3)
    for share in (0.0, 0.2, 0.9):
        est = mixture_share(_mix(rng, share, 500), rng.beta(1, 12, 200))
        assert 0.0 <= est.low <= est.share <= est.high <= 1.0


def test_documents_widen_the_interval_and_steady_the_threshold_for_alike_paragraphs():
    rng = np.random.default_rng(6)

    def documents(n_docs: int, per: int, machine: float) -> tuple[np.ndarray, float]:
        is_machine = rng.random(n_docs) < machine
        centres = np.where(is_machine, rng.beta(5, 2, n_docs), rng.beta(1, 12, n_docs))
        return np.clip(np.repeat(centres, per) + rng.normal(0, 0.01, n_docs * per), 0, 1), float(is_machine.mean())

    corpus, truth = documents(200, 20, 0.3)
    gold, _ = documents(100, 10, 0.0)
    plain = mixture_share(corpus, gold)
    grouped = mixture_share(corpus, gold, groups=np.repeat(np.arange(200), 20),
                            gold_groups=np.repeat(np.arange(100), 10))
    assert grouped.n_documents == 200 and plain.n_documents is None
    assert (grouped.high - grouped.low) > 1.25 * (plain.high - plain.low)
    assert grouped.low <= truth <= grouped.high
    # Counted as 4,000 independent records the threshold's confidence term is too small and t chases noise.
    assert abs(grouped.share - truth) < abs(plain.share - truth)


def test_with_gold_mixture_and_its_dict_form():
    rng = np.random.default_rng(0)
    cal = _calibration(rng)
    gold = rng.beta(1, 12, 200)
    out = cal.with_gold_mixture(gold, groups=[f"d{i // 4}" for i in range(200)])
    assert out.correction == GOLD_MIXTURE and out.n_gold == 200
    np.testing.assert_array_equal(out.p_machine, cal.p_machine)
    np.testing.assert_array_equal(out.p_human, gold)
    back = ShareCalibration.from_dict(out.to_dict())
    assert back.correction == GOLD_MIXTURE and back.n_gold == 200
    corpus = _mix(rng, 0.3, 500)
    assert estimate_share(corpus, back, seed=2).share == pytest.approx(
        estimate_share(corpus, cal.with_gold_mixture(gold), seed=2).share, abs=1e-6)
    est = estimate_share(corpus, out)
    d = est.to_dict()
    assert d["correction"] == GOLD_MIXTURE and d["n_gold"] == 200 and d["method"] == "bbe" and "threshold" in d
    assert "mixture against 200 gold records" in str(est)
    human = estimate_share(corpus, cal.with_gold_human(gold)).to_dict()
    assert "threshold" not in human and human["correction"] == GOLD_HUMAN


@pytest.mark.parametrize("gold", [np.full(MIN_GOLD - 1, 0.1), np.r_[np.full(30, 0.1), 1.5], np.r_[np.full(30, 0.1), np.nan]])
def test_too_little_or_invalid_gold_is_refused(gold):
    with pytest.raises(ConfigError):
        _calibration(np.random.default_rng(0)).with_gold_mixture(gold)
    with pytest.raises(ConfigError):
        mixture_share(np.full(100, 0.2), gold)


def test_errors():
    with pytest.raises(ConfigError):
        mixture_share(np.array([]), np.full(50, 0.1))
    with pytest.raises(ConfigError):
        mixture_share(np.r_[0.2, 1.2], np.full(50, 0.1))
    with pytest.raises(ConfigError):
        mixture_share(np.full(10, 0.2), np.full(50, 0.1), groups=["a"] * 9)


def test_many_distinct_gold_scores_are_cut_to_quantile_thresholds():
    rng = np.random.default_rng(7)
    gold = rng.beta(1, 12, 5000)
    est = mixture_share(_mix(rng, 0.3, 5000), gold, n_bootstrap=200)
    assert abs(est.share - 0.3) < 0.03 and est.threshold in gold
