"""The Kneser-Ney n-gram model: a proper distribution, exact sampling, round-trip tokenisation."""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.ngram import NGramLM, Vocabulary, detokenize, tokenize

CORPUS = [
    "The cat sat on the mat.",
    "The cat sat on the hat.",
    "The cat ate the fish.",
    "The dog sat on the mat.",
    "A bird sang (loudly) in the tree, then flew away!",
]


@pytest.mark.parametrize("text", [
    'He said "no evidence" of it, and left.',
    "The U.S. share rose 3.5% (to $12) in the well-known mid-1960's market; don't ask.",
    "Where? Here: now.",
])
def test_tokenize_detokenize_round_trip(text):
    assert detokenize(tokenize(text)) == text


def test_vocabulary_maps_unknown_words():
    vocab = Vocabulary.from_texts(CORPUS)
    ids = vocab.encode("The zebra sat")
    assert ids[1] == vocab.index["<unk>"]
    assert vocab.decode(ids) == "The sat"
    assert vocab.words[:3] == ["<s>", "</s>", "<unk>"]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("context", [("The", "cat"), ("on", "the"), ("zebra", "on"), ("fish", ".")])
def test_probabilities_sum_to_one_over_the_vocabulary(order, context):
    vocab = Vocabulary.from_texts(CORPUS)
    lm = NGramLM(vocab, order=order).fit(CORPUS)
    prefix = " ".join(context)
    total = 0.0
    for word in vocab.words[3:]:  # ordinary words: the third token of "a b w"
        total += np.exp(lm.token_logprobs([f"{prefix} {word}"])[0][2])
    total += np.exp(lm.token_logprobs([prefix])[0][2])  # </s>
    total += np.exp(lm.token_logprobs([f"{prefix} qqqq"])[0][2])  # <unk>
    assert total == pytest.approx(1.0, abs=1e-9)


def test_more_data_of_the_same_kind_lowers_held_out_perplexity():
    vocab = Vocabulary.from_texts(CORPUS)
    small = NGramLM(vocab).fit(CORPUS[:2])
    large = NGramLM(vocab).fit(CORPUS[:4])
    held_out = ["The dog sat on the hat."]
    assert large.perplexity(held_out) < small.perplexity(held_out)
    assert np.isfinite(small.perplexity(held_out))


def test_backoff_sampling_follows_training_frequencies():
    texts = ["the cat sat ."] * 3 + ["the dog sat ."]
    vocab = Vocabulary.from_texts(texts)
    lm = NGramLM(vocab, order=2, sampling="backoff").fit(texts)
    samples = lm.sample(4000, np.random.default_rng(0))
    share = np.mean([s.startswith("the cat") for s in samples])
    assert share == pytest.approx(0.75, abs=0.03)  # binomial sd 0.007
    assert set(samples) == {"the cat sat.", "the dog sat."}


def test_kn_sampling_writes_only_seen_words_and_is_seeded():
    vocab = Vocabulary.from_texts(CORPUS + ["unseen words only here"])
    lm = NGramLM(vocab, order=3, sampling="kn", max_tokens=30).fit(CORPUS)
    a = lm.sample(200, np.random.default_rng(5))
    b = lm.sample(200, np.random.default_rng(5))
    assert a == b
    seen = {t for text in CORPUS for t in tokenize(text)}
    assert {t for text in a for t in tokenize(text)} <= seen
    assert max(len(tokenize(s)) for s in a) <= 30


def test_bad_settings_raise_config_error():
    vocab = Vocabulary.from_texts(CORPUS)
    with pytest.raises(ConfigError):
        NGramLM(vocab, order=0).fit(CORPUS)
    with pytest.raises(ConfigError):
        NGramLM(vocab, sampling="greedy").fit(CORPUS)
    with pytest.raises(ConfigError):
        NGramLM(vocab).fit([])


def test_counts_rebuild_an_identical_model():
    vocab = Vocabulary.from_texts(CORPUS)
    lm = NGramLM(vocab, order=3).fit(CORPUS)
    keys, counts = lm.counts()
    again = NGramLM.from_counts(Vocabulary(vocab.words), keys, counts, order=3)
    probe = ["the cat sat on the mat .", "an unseen sentence with the cat"]
    assert np.array_equal(lm.token_logprobs(probe)[0], again.token_logprobs(probe)[0])
    assert again.perplexity(CORPUS) == lm.perplexity(CORPUS)
    with pytest.raises(ConfigError):
        NGramLM.from_counts(vocab, keys[::-1], counts, order=3)  # unsorted keys


def test_document_logprobs_split_per_text_and_flag_unknown_words():
    vocab = Vocabulary.from_texts(CORPUS)
    lm = NGramLM(vocab, order=2).fit(CORPUS)
    docs = lm.document_logprobs(["the cat", "zebra zebra the"])
    assert [d.shape for d in docs] == [(3, 2), (4, 2)]  # tokens + </s>
    assert docs[0][:, 1].sum() == 0 and docs[1][:2, 1].tolist() == [1.0, 1.0]
    flat, _ = lm.token_logprobs(["the cat", "zebra zebra the"])
    assert np.array_equal(np.concatenate([d[:, 0] for d in docs]), flat)


# --------------------------------------------------------------- batch paths = the per-text loops
def _reference_grams(docs, n):
    """The original per-document windowing that _grams replaced."""
    rows = []
    for ids in docs:
        padded = np.concatenate([np.zeros(n - 1, dtype=np.int64), ids, [1]])
        rows.append(np.lib.stride_tricks.sliding_window_view(padded, n))
    return np.concatenate(rows) if rows else np.zeros((0, n), dtype=np.int64)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_batch_encoding_windows_and_logprobs_equal_per_text_ones(order):
    from tests.text_cases import EDGE_TEXTS, real_paragraphs

    texts = real_paragraphs(200) + EDGE_TEXTS
    vocab = Vocabulary.from_texts(real_paragraphs(100))
    model = NGramLM(vocab, order=order).fit(real_paragraphs(100))
    docs = [vocab.encode(t) for t in texts]
    ids, lengths = vocab.encode_batch(texts)
    assert np.array_equal(lengths, [d.size for d in docs]) and np.array_equal(ids, np.concatenate(docs))
    assert np.array_equal(model._grams(docs), _reference_grams(docs, order))
    assert np.array_equal(model._grams_flat(ids, lengths), _reference_grams(docs, order))
    logp, token_ids = model.flat_logprobs(ids, lengths)
    ref_logp, ref_ids = model._scored(_reference_grams(docs, order))
    assert np.array_equal(logp, ref_logp) and np.array_equal(token_ids, ref_ids)
    per_doc = model.document_logprobs(texts)
    assert len(per_doc) == len(texts) and [d.shape[0] for d in per_doc] == list(lengths + 1)
    assert np.array_equal(np.concatenate(per_doc)[:, 0], ref_logp)
    assert model.document_logprobs([]) == [] and model._grams([]).shape == (0, order)


def test_fit_on_batch_windows_keeps_the_counts():
    vocab = Vocabulary.from_texts(CORPUS)
    model = NGramLM(vocab, order=3).fit(CORPUS)
    keys, counts = np.unique(model._keys(_reference_grams([vocab.encode(t) for t in CORPUS], 3)), return_counts=True)
    got_keys, got_counts = model.counts()
    assert np.array_equal(got_keys, keys) and np.array_equal(got_counts, counts)
