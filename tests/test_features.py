"""Feature blocks of the origin detector, on real labelled records; the vectorised blocks equal the per-text loops."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from synthfilter.errors import ConfigError
from synthfilter.features import STYLE_FEATURES, HashedNgramFeatures, NGramLikelihoodFeatures, style_statistics
from synthfilter.training import source_balanced_weights
from tests.conftest import FIXTURES
from tests.text_cases import EDGE_TEXTS, real_paragraphs


@pytest.fixture(scope="module")
def halves() -> tuple[pl.DataFrame, pl.DataFrame]:
    sample = pl.read_parquet(FIXTURES / "origin_sample.parquet")
    in_first = pl.col("group").hash(seed=1) % 2 == 0  # split by document
    return sample.filter(in_first), sample.filter(~in_first)


def test_likelihood_features_separate_unseen_human_and_machine_text(halves):
    train, test = halves
    feats = NGramLikelihoodFeatures(orders=(1, 2), seed=0)
    x_train = feats.fit_transform(train["text"].to_list(), train["label"].to_list(), train["group"].to_list())
    x_test = feats.transform(test["text"].to_list())
    assert x_train.shape == (train.height, 24) and x_test.shape == (test.height, 24)
    clf = LogisticRegression(max_iter=1000).fit(x_train, train["label"].to_numpy())
    auroc = roc_auc_score(test["label"].to_numpy(), clf.decision_function(x_test))
    assert auroc > 0.72  # measured 0.812 (356 training, 394 test records)


def test_training_features_are_out_of_fold(halves):
    """In-sample scores would put a training text's own n-grams in its model: far too likely."""
    train, _ = halves
    texts, y = train["text"].to_list(), train["label"].to_list()
    feats = NGramLikelihoodFeatures(orders=(2,), seed=0)
    oof = feats.fit_transform(texts, y, train["group"].to_list())
    in_sample = feats.transform(texts)
    human_mean_logp = 0  # column 0: mean log-probability under the human model
    is_human = np.asarray(y) == 0
    # measured: 5.98 in sample vs -0.15 out of fold, in standard units (clipped at 6)
    assert in_sample[is_human, human_mean_logp].mean() > oof[is_human, human_mean_logp].mean() + 0.5


def test_likelihood_features_round_trip_through_plain_arrays(halves):
    train, test = halves
    feats = NGramLikelihoodFeatures(orders=(1, 2), seed=0)
    feats.fit_transform(train["text"].to_list(), train["label"].to_list())
    arrays = feats.to_arrays()
    assert all(a.dtype != object for a in arrays.values())
    again = NGramLikelihoodFeatures.from_arrays(arrays, orders=(1, 2))
    assert np.array_equal(feats.transform(test["text"].to_list()), again.transform(test["text"].to_list()))


def test_likelihood_features_reject_bad_use():
    with pytest.raises(ConfigError):
        NGramLikelihoodFeatures(orders=()).fit_transform(["a b", "c d"], [0, 1])
    with pytest.raises(ConfigError):
        NGramLikelihoodFeatures().transform(["not fitted"])


def test_source_balanced_weights_give_each_source_its_class_share():
    labels = [1] * 9 + [1] + [0] * 5
    sources = ["chatgpt"] * 9 + ["gemma"] + ["brown"] * 5
    w = source_balanced_weights(labels, sources)
    assert w[:9].sum() == pytest.approx(w[9])  # one gemma record weighs as much as nine chatgpt ones
    assert w[:10].mean() == pytest.approx(1.0) and np.allclose(w[10:], 1.0)
    with pytest.raises(ConfigError):
        source_balanced_weights([0, 1], ["a"])


# --------------------------------------------------------------- vectorised = the per-text loop
_WORD = re.compile(r"[A-Za-z\u00C0-\u024F']+")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")


def _rate(text: str, chars: str, n: int) -> float:
    return sum(text.count(c) for c in chars) / n


def _reference_style_statistics(texts):
    """The original per-text loop that style_statistics replaced."""
    out = np.zeros((len(texts), len(STYLE_FEATURES)), dtype=np.float64)
    for i, text in enumerate(texts):
        n = max(len(text), 1)
        words = _WORD.findall(text)
        lens = np.array([len(w) for w in words], dtype=np.float64) if words else np.zeros(1)
        lower = [w.lower() for w in words]
        head = lower[:100]
        counts: dict[str, int] = {}
        for w in lower:
            counts[w] = counts.get(w, 0) + 1
        sentences = [s for s in _SENT_SPLIT.split(text.strip()) if s]
        sent_words = np.array([len(_WORD.findall(s)) for s in sentences] or [0], dtype=np.float64)
        out[i] = (
            np.log1p(len(text)), np.log1p(len(words)), lens.mean(), lens.std(),
            len(set(head)) / max(len(head), 1),
            sum(1 for c in counts.values() if c == 1) / max(len(counts), 1),
            sum(c.isupper() for c in text) / n, sum(c.isdigit() for c in text) / n,
            sum(c.isspace() for c in text) / n, sum(ord(c) > 127 for c in text) / n,
            text.count("\n") / n, np.log1p(len(sentences)), sent_words.mean(), sent_words.std(),
            _rate(text, ",", n), _rate(text, ";", n), _rate(text, ":", n), _rate(text, "!", n),
            _rate(text, "?", n), _rate(text, "\"\u201c\u201d", n), _rate(text, "()[]", n),
            _rate(text, "-\u2013\u2014", n), _rate(text, "'\u2019", n),
            sum(w[0].isupper() for w in words) / max(len(words), 1),
        )
    return out


def test_style_statistics_equal_the_per_text_loop_bit_for_bit():
    texts = real_paragraphs(750) + EDGE_TEXTS
    assert np.array_equal(style_statistics(texts), _reference_style_statistics(texts))


def test_style_statistics_of_each_edge_case_alone_and_in_chunks(monkeypatch):
    import synthfilter.features as features

    for text in EDGE_TEXTS:
        assert np.array_equal(style_statistics([text]), _reference_style_statistics([text])), repr(text[:40])
    monkeypatch.setattr(features, "_STYLE_CHUNK", 3)
    texts = EDGE_TEXTS + real_paragraphs(20)
    assert np.array_equal(style_statistics(texts), _reference_style_statistics(texts))
    assert style_statistics([]).shape == (0, len(STYLE_FEATURES))


def test_hashed_ngram_features_equal_the_scikit_learn_path():
    texts = real_paragraphs(300) + EDGE_TEXTS
    for analyzer, ngram_range in (("char_wb", (1, 4)), ("word", (1, 2))):
        feats = HashedNgramFeatures(analyzer, ngram_range).fit(texts[:200])
        reference = HashedNgramFeatures(analyzer, ngram_range)
        reference.idf_ = feats.idf_
        counts = reference._hasher().transform(texts[:200])
        df = np.bincount(counts.indices, minlength=feats.n_features).astype(np.float64)
        assert np.array_equal(feats.idf_, (np.log((1 + counts.shape[0]) / (1 + df)) + 1.0).astype(np.float32))
        got = feats.transform(texts)
        counts = reference._hasher().transform(texts).tocsr()
        counts.data = np.log1p(counts.data)
        weighted = counts @ sp.diags(feats.idf_)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        expected = sp.csr_matrix(sp.diags(1.0 / norms) @ weighted, dtype=np.float32)
        assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.data, expected.data)


def _reference_logprob_stats(docs, with_unknown):
    out = np.empty((len(docs), 5 + int(with_unknown)))
    for i, doc in enumerate(docs):
        logp = doc[:, 0]
        q10, median, q90 = np.quantile(logp, (0.1, 0.5, 0.9))
        out[i, :5] = (logp.mean(), logp.std(), q10, median, q90)
        if with_unknown:
            out[i, 5] = doc[:, 1].mean()
    return out


def test_likelihood_features_equal_per_document_statistics(halves):
    train, test = halves
    feats = NGramLikelihoodFeatures(orders=(1, 2), seed=0)
    feats.fit_transform(train["text"].to_list(), train["label"].to_list(), train["group"].to_list())
    texts = test["text"].to_list() + EDGE_TEXTS
    blocks = []
    for order in feats.orders:
        human = _reference_logprob_stats(feats.models_[(order, 0)].document_logprobs(texts), True)
        machine = _reference_logprob_stats(feats.models_[(order, 1)].document_logprobs(texts), False)
        blocks.extend([human, machine, (machine[:, 0] - human[:, 0])[:, None]])
    expected = np.clip((np.hstack(blocks) - feats.mean_) / feats.scale_, -6.0, 6.0).astype(np.float32)
    assert np.array_equal(feats.transform(texts), expected)
