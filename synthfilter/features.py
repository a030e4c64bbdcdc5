"""Cheap text features for the origin detector.

:func:`style_statistics` measures 24 stylometric statistics per text (length,
word and sentence length and their spread, vocabulary richness, rates of
punctuation marks, case, digits and line breaks). :class:`HashedNgramFeatures`
hashes character or word n-grams into a fixed-size sparse vector with
sublinear TF and learned IDF weights (no vocabulary is stored, so the model is
saved as plain arrays). :class:`NGramLikelihoodFeatures` scores each text under
small word n-gram language models of human and of machine text, in the manner
of Ghostbuster's weak-language-model features (Verma et al., 2024).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from synthfilter.codepoints import DIGIT, SPACE, UPPER, char_flags, code_points, is_run_end, is_run_start
from synthfilter.errors import ConfigError
from synthfilter.hashing import hashed_ngram_counts
from synthfilter.segments import segment_means, segment_quantiles, segment_starts, segment_stds

_WORD = re.compile(r"[A-Za-z\u00C0-\u024F']+")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")

STYLE_FEATURES = (
    "log_chars", "log_words", "mean_word_len", "std_word_len", "ttr_100", "hapax_ratio",
    "upper_rate", "digit_rate", "space_rate", "non_ascii_rate", "newline_rate",
    "n_sentences_log", "mean_sent_words", "std_sent_words",
    "comma", "semicolon", "colon", "exclaim", "question", "quote", "paren", "dash", "apostrophe",
    "capitalised_words",
)


#: Characters counted by the punctuation rates, in the order of STYLE_FEATURES.
_PUNCTUATION = (",", ";", ":", "!", "?", "\"\u201c\u201d", "()[]", "-\u2013\u2014", "'\u2019")
_SENTENCE_END = ".!?"
#: Texts handled at once by style_statistics (bounds its memory to a few hundred MB).
_STYLE_CHUNK = 4096


@lru_cache(maxsize=1)
def _word_tables() -> tuple[np.ndarray, np.ndarray]:
    """Which of the first 0x250 code points are word characters, and a code for each one's lower case.

    Word characters are those of ``_WORD``. Two words are equal after
    ``str.lower`` exactly when their sequences of codes are equal: every word
    character lowers to one character, except U+0130, which lowers to two
    (the second not a word character), and gets a code of its own.
    """
    is_word = np.zeros(0x250, dtype=bool)
    lowered = {}
    for cp in range(0x250):
        c = chr(cp)
        if _WORD.fullmatch(c):
            is_word[cp] = True
            lowered[cp] = c.lower()
    distinct = sorted(set(lowered.values()))
    code = np.zeros(0x250, dtype=np.uint64)
    for cp, low in lowered.items():
        code[cp] = distinct.index(low) + 1  # 1..K, 0 pads
    assert len(distinct) < 1 << 10
    return is_word, code


def _word_ids(code: np.ndarray, pos: np.ndarray, char_word: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Equal ids for equal words (code sequences): six 10-bit codes packed per uint64, then ``np.unique``.

    ``code``, ``pos`` and ``char_word`` give each word character's code, its
    position in its word and its word; ``length`` each word's length.
    """
    chunks = (length + 5) // 6
    chunk_start = segment_starts(chunks)
    shifted = code << ((pos % 6) * 10).astype(np.uint64)
    which_chunk = chunk_start[char_word] + pos // 6
    total = np.zeros(shifted.size + 1, dtype=np.uint64)
    np.cumsum(shifted, out=total[1:])  # a chunk's codes occupy disjoint bits: their sum is their union
    first = np.flatnonzero(np.r_[True, which_chunk[1:] != which_chunk[:-1]])
    packed = np.zeros(int(chunks.sum()), dtype=np.uint64)
    packed[which_chunk[first]] = total[np.r_[first[1:], shifted.size]] - total[first]
    ids = np.empty(length.size, dtype=np.int64)
    offset = 0
    for k in np.unique(chunks):
        words = np.flatnonzero(chunks == k)
        if k == 1:
            _, inverse = np.unique(packed[chunk_start[words]], return_inverse=True)
        else:
            _, inverse = np.unique(packed[chunk_start[words][:, None] + np.arange(k)], axis=0, return_inverse=True)
        inverse = inverse.ravel()
        ids[words] = offset + inverse
        offset += int(inverse.max()) + 1
    return ids


def _style_chunk(texts: Sequence[str]) -> np.ndarray:
    n_texts = len(texts)
    cps, bounds = code_points(texts)
    n_chars = np.diff(bounds)
    n = np.maximum(n_chars, 1).astype(np.float64)
    flags = char_flags(cps)
    char_text = np.repeat(np.arange(n_texts, dtype=np.int32), n_chars)

    def count(mask: np.ndarray) -> np.ndarray:  # true positions of mask per text
        return np.bincount(char_text[mask], minlength=n_texts)

    is_word_table, code_table = _word_tables()
    small = cps < 0x250
    in_word = np.zeros(cps.size, dtype=bool)
    in_word[small] = is_word_table[cps[small]]
    word_start = is_run_start(in_word, bounds)
    starts = np.flatnonzero(word_start)
    ends = np.flatnonzero(is_run_end(in_word, bounds)) + 1
    word_text = char_text[starts]
    word_len = ends - starts
    n_words = np.bincount(word_text, minlength=n_texts)
    word_rank = np.arange(starts.size) - segment_starts(n_words)[word_text]

    # word lengths: one segment per text, [0.0] for a text without words
    slots = np.maximum(n_words, 1)
    values = np.zeros(int(slots.sum()))
    values[segment_starts(slots)[word_text] + word_rank] = word_len
    len_mean = segment_means(values, slots)
    len_std = segment_stds(values, slots, len_mean)

    # vocabulary richness on lower-cased words
    ttr = np.zeros(n_texts)
    hapax = np.zeros(n_texts)
    if starts.size:
        word_chars = np.flatnonzero(in_word)
        char_word = np.cumsum(word_start[word_chars]) - 1
        ids = _word_ids(code_table[cps[word_chars]], word_chars - starts[char_word], char_word, word_len)
        key = word_text * (int(ids.max()) + 1) + ids
        order = np.argsort(key, kind="stable")  # stable: a group's first member is the word's first use
        ordered = key[order]
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        group_text = word_text[order[first]]
        distinct = np.bincount(group_text, minlength=n_texts)
        once = np.bincount(group_text, weights=np.diff(np.r_[first, ordered.size]) == 1, minlength=n_texts)
        hapax = once / np.maximum(distinct, 1)
        head_distinct = np.bincount(group_text, weights=word_rank[order[first]] < 100, minlength=n_texts)
        ttr = head_distinct / np.maximum(np.minimum(n_words, 100), 1)

    # sentences: text.strip() split at whitespace runs that follow . ! or ?
    space = (flags & SPACE) != 0
    n_space = count(space)
    last_nonspace = np.full(n_texts, -1, dtype=np.int64)
    nonspace_pos = np.flatnonzero(~space)
    last_nonspace[char_text[nonspace_pos]] = nonspace_pos  # the last write per text wins: positions ascend
    run_start = np.flatnonzero(is_run_start(space, bounds))
    run_text = char_text[run_start]
    after_end = (run_start > bounds[run_text]) & np.isin(cps[np.maximum(run_start - 1, 0)], _SENTENCE_END_CPS)
    is_separator = after_end & (run_start < last_nonspace[run_text])  # not the trailing run
    separator = run_start[is_separator]
    n_sentences = np.where(n_space < n_chars, np.bincount(run_text[is_separator], minlength=n_texts) + 1, 0)
    sent_slots = np.maximum(n_sentences, 1)
    word_sentence = np.searchsorted(separator, starts) - np.searchsorted(separator, bounds[:-1])[word_text]
    sent_words = np.bincount(segment_starts(sent_slots)[word_text] + word_sentence,
                             minlength=int(sent_slots.sum())).astype(np.float64)
    sent_mean = segment_means(sent_words, sent_slots)
    sent_std = segment_stds(sent_words, sent_slots, sent_mean)

    # punctuation marks
    small_bmp = cps < len(_PUNCT_TABLE)
    kind = np.zeros(cps.size, dtype=np.uint8)
    kind[small_bmp] = _PUNCT_TABLE[cps[small_bmp]]
    marked = np.flatnonzero(kind)
    punct = np.bincount(char_text[marked] * 10 + kind[marked].astype(np.int32), minlength=n_texts * 10).reshape(n_texts, 10)[:, 1:]

    capitalised = np.bincount(word_text, weights=(flags[starts] & UPPER) != 0, minlength=n_texts)
    columns = [
        np.log1p(n_chars.astype(np.float64)),
        np.log1p(n_words.astype(np.float64)),
        len_mean,
        len_std,
        ttr,
        hapax,
        count((flags & UPPER) != 0) / n,
        count((flags & DIGIT) != 0) / n,
        n_space / n,
        count(cps > 127) / n,
        count(cps == 10) / n,
        np.log1p(n_sentences.astype(np.float64)),
        sent_mean,
        sent_std,
        *(punct[:, j] / n for j in range(len(_PUNCTUATION))),
        capitalised / np.maximum(n_words, 1),
    ]
    return np.column_stack(columns)


def _punct_table() -> np.ndarray:
    table = np.zeros(0x2020, dtype=np.uint8)
    for j, chars in enumerate(_PUNCTUATION, start=1):
        for c in chars:
            table[ord(c)] = j
    return table


_PUNCT_TABLE = _punct_table()
_SENTENCE_END_CPS = np.array([ord(c) for c in _SENTENCE_END], dtype=np.uint32)


def style_statistics(texts: Sequence[str]) -> np.ndarray:
    """Stylometric statistics of each text.

    Vectorised over all texts at once (their code points in one array); the
    values are those of measuring each text on its own in Python, float for
    float.

    Parameters
    ----------
    texts : sequence of str

    Returns
    -------
    numpy.ndarray, shape (n, 24)
        Columns named by :data:`STYLE_FEATURES`; rates are per character.
    """
    texts = list(texts)
    out = np.zeros((len(texts), len(STYLE_FEATURES)), dtype=np.float64)
    for begin in range(0, len(texts), _STYLE_CHUNK):
        part = texts[begin:begin + _STYLE_CHUNK]
        out[begin:begin + len(part)] = _style_chunk(part)
    return out


class HashedNgramFeatures:
    """Hashed n-grams with sublinear TF and IDF, rows L2-normalised.

    Parameters
    ----------
    analyzer : {"char_wb", "word"}, default "char_wb"
        Character n-grams within word boundaries, or word n-grams.
    ngram_range : tuple of int, default (1, 4)
        n-gram lengths.
    n_features : int, default 2**18
        Hash space size.
    """

    def __init__(self, analyzer: str = "char_wb", ngram_range: tuple[int, int] = (1, 4),
                 n_features: int = 2**18) -> None:
        self.analyzer = analyzer
        self.ngram_range = tuple(ngram_range)
        self.n_features = n_features

    def _hasher(self):
        from sklearn.feature_extraction.text import HashingVectorizer  # only for non-string input

        return HashingVectorizer(
            analyzer=self.analyzer, ngram_range=self.ngram_range, n_features=self.n_features,
            alternate_sign=False, norm=None, lowercase=self.analyzer == "word", dtype=np.float32,
        )

    def _counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """What ``self._hasher().transform(texts)`` gives, computed vectorised (see :mod:`synthfilter.hashing`)."""
        texts = list(texts)
        if self.analyzer not in ("char_wb", "word") or not all(isinstance(t, str) for t in texts):
            return self._hasher().transform(texts).tocsr()
        return hashed_ngram_counts(texts, self.analyzer, self.ngram_range, self.n_features,
                                   lowercase=self.analyzer == "word", dtype=np.float32)

    def fit(self, texts: Sequence[str]) -> HashedNgramFeatures:
        """Learn IDF weights from ``texts``."""
        counts = self._counts(texts)
        df = np.bincount(counts.indices, minlength=self.n_features).astype(np.float64)
        self.idf_ = (np.log((1 + counts.shape[0]) / (1 + df)) + 1.0).astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Sparse ``(n, n_features)`` matrix of weighted, normalised n-gram counts."""
        counts = self._counts(texts)
        counts.data = np.log1p(counts.data)
        weighted = counts @ sp.diags(self.idf_)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ weighted, dtype=np.float32)


#: Statistics of a text's token log-probabilities under one language model.
_LOGPROB_STATS = ("mean", "std", "q10", "median", "q90")


def _logprob_stats(logp: np.ndarray, unknown: np.ndarray | None, lengths: np.ndarray) -> np.ndarray:
    """Mean, std and 10/50/90 % quantiles of each text's token log-probabilities (and its ``<unk>`` share).

    ``logp`` (and ``unknown``, 1.0 per ``<unk>`` token) hold all texts' tokens
    end to end, ``lengths`` per text. The floats are numpy's for each text
    on its own.
    """
    out = np.empty((lengths.size, len(_LOGPROB_STATS) + int(unknown is not None)))
    out[:, 0] = segment_means(logp, lengths)
    out[:, 1] = segment_stds(logp, lengths, out[:, 0])
    out[:, 2:5] = segment_quantiles(logp, lengths, (0.1, 0.5, 0.9))
    if unknown is not None:
        out[:, 5] = segment_means(unknown, lengths)
    return out


class NGramLikelihoodFeatures:
    """Likelihood of each text under word n-gram models of human and of machine text.

    For every order in ``orders`` it fits two interpolated Kneser-Ney models
    (:class:`synthfilter.ngram.NGramLM`), one on the human and one on the
    machine training texts, and describes a text by the mean, spread and
    10/50/90 % quantiles of its token log-probabilities under each, the share
    of its tokens outside the vocabulary, and the mean log-likelihood ratio
    (machine minus human): ``12 * len(orders)`` numbers, standardised.

    Features of the training texts themselves are computed *out of fold*
    (models fitted on the other folds, whole groups per fold), or a text
    would be scored by models that memorised it. ``transform`` uses models
    fitted on all the training texts.

    Parameters
    ----------
    orders : tuple of int, default (1, 2)
        n-gram orders (1 = unigram).
    n_folds : int, default 5
        Folds of the out-of-fold training features.
    seed : int, default 0
        Seed of the fold assignment.

    Examples
    --------
    >>> feats = NGramLikelihoodFeatures(orders=(1,))
    >>> texts = ["the cat sat on the mat .", "a dog ran in the park .", "it is important to note that",
    ...          "in conclusion , it is important", "the bird sang in the tree .", "overall , this is important"] * 3
    >>> x = feats.fit_transform(texts, [0, 0, 1, 1, 0, 1] * 3)
    >>> x.shape
    (18, 12)
    """

    def __init__(self, orders: tuple[int, ...] = (1, 2), n_folds: int = 5, seed: int = 0) -> None:
        self.orders = tuple(int(o) for o in orders)
        self.n_folds = n_folds
        self.seed = seed

    @property
    def n_features(self) -> int:
        """Number of columns of the feature matrix."""
        return 12 * len(self.orders)

    def _fit_models(self, texts: Sequence[str], y: np.ndarray):
        from synthfilter.ngram import NGramLM, Vocabulary

        vocabulary = Vocabulary.from_texts(texts)
        models = {}
        for order in self.orders:
            for cls in (0, 1):
                part = [t for t, label in zip(texts, y) if label == cls]
                models[(order, cls)] = NGramLM(vocabulary, order=order).fit(part)
        return vocabulary, models

    @staticmethod
    def _raw(models: dict, orders: tuple[int, ...], texts: Sequence[str]) -> np.ndarray:
        encoded = {}  # the models share one vocabulary: tokenise once
        blocks = []

        def stats(model, with_unknown: bool) -> np.ndarray:
            key = id(model.vocabulary)
            if key not in encoded:
                encoded[key] = model.vocabulary.encode_batch(texts)
            ids, lengths = encoded[key]
            logp, token_ids = model.flat_logprobs(ids, lengths)
            unknown = (token_ids == 2).astype(np.float64) if with_unknown else None
            return _logprob_stats(logp, unknown, lengths + 1)

        for order in orders:
            human = stats(models[(order, 0)], with_unknown=True)
            machine = stats(models[(order, 1)], with_unknown=False)
            blocks.extend([human, machine, (machine[:, 0] - human[:, 0])[:, None]])
        return np.hstack(blocks)

    def fit_transform(
        self, texts: Sequence[str], y: Sequence[int], groups: Sequence[str] | None = None
    ) -> np.ndarray:
        """Fit on labelled texts and return their out-of-fold features.

        Parameters
        ----------
        texts : sequence of str
        y : sequence of int
            1 = machine, 0 = human; both classes needed.
        groups : sequence of str, optional
            Document of each text: texts of one document share a fold.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts), n_features)``, float32.
        """
        if not self.orders or min(self.orders) < 1:
            raise ConfigError(f"n-gram orders must be >= 1, got {self.orders}")
        texts = list(texts)
        y = np.asarray(y, dtype=np.int64)
        if groups is None:
            groups = np.arange(len(texts)).astype(str)
        keys, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        fold_of_group = np.random.default_rng(self.seed).permutation(keys.size) % max(2, self.n_folds)
        folds = fold_of_group[codes]
        raw = np.zeros((len(texts), self.n_features))
        for fold in np.unique(folds):
            inside = folds != fold
            if len(np.unique(y[inside])) < 2:  # too little data for this fold: fall back to all texts
                inside = np.ones(len(texts), dtype=bool)
            _, models = self._fit_models([t for t, m in zip(texts, inside) if m], y[inside])
            held = np.flatnonzero(folds == fold)
            raw[held] = self._raw(models, self.orders, [texts[i] for i in held])
        self.vocabulary_, self.models_ = self._fit_models(texts, y)
        self.mean_ = raw.mean(axis=0)
        self.scale_ = raw.std(axis=0) + 1e-9
        return self._standardise(raw)

    def _standardise(self, raw: np.ndarray) -> np.ndarray:
        return np.clip((raw - self.mean_) / self.scale_, -6.0, 6.0).astype(np.float32)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Features of new texts under the models fitted on all training texts."""
        if not hasattr(self, "models_"):
            raise ConfigError("NGramLikelihoodFeatures is not fitted; call fit_transform() first")
        return self._standardise(self._raw(self.models_, self.orders, list(texts)))

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays holding the fitted state (vocabulary, n-gram counts, scaling)."""
        arrays = {
            "vocabulary": np.frombuffer("\n".join(self.vocabulary_.words).encode("utf-8"), dtype=np.uint8),
            "mean": self.mean_,
            "scale": self.scale_,
        }
        for (order, cls), model in sorted(self.models_.items()):
            keys, counts = model.counts()
            arrays[f"o{order}c{cls}_keys"] = keys
            arrays[f"o{order}c{cls}_counts"] = counts.astype(np.int32)
        return arrays

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], orders: tuple[int, ...], seed: int = 0
    ) -> NGramLikelihoodFeatures:
        """Rebuild fitted features from :meth:`to_arrays` (no code runs)."""
        from synthfilter.ngram import NGramLM, Vocabulary

        feats = cls(orders=orders, seed=seed)
        words = bytes(arrays["vocabulary"]).decode("utf-8").split("\n")
        feats.vocabulary_ = Vocabulary(words)
        feats.models_ = {
            (order, c): NGramLM.from_counts(
                feats.vocabulary_, arrays[f"o{order}c{c}_keys"], arrays[f"o{order}c{c}_counts"], order=order
            )
            for order in feats.orders
            for c in (0, 1)
        }
        feats.mean_, feats.scale_ = arrays["mean"], arrays["scale"]
        return feats
