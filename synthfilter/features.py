"""Cheap text features for the origin detector.

:func:`style_statistics` measures 24 stylometric statistics per text (length,
word and sentence length and their spread, vocabulary richness, rates of
punctuation marks, case, digits and line breaks). :class:`HashedNgramFeatures`
hashes character or word n-grams into a fixed-size sparse vector with
sublinear TF and learned IDF weights (no vocabulary is stored, so the model is
saved as plain arrays).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

_WORD = re.compile(r"[A-Za-z\u00C0-\u024F']+")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")

STYLE_FEATURES = (
    "log_chars", "log_words", "mean_word_len", "std_word_len", "ttr_100", "hapax_ratio",
    "upper_rate", "digit_rate", "space_rate", "non_ascii_rate", "newline_rate",
    "n_sentences_log", "mean_sent_words", "std_sent_words",
    "comma", "semicolon", "colon", "exclaim", "question", "quote", "paren", "dash", "apostrophe",
    "capitalised_words",
)


def _rate(text: str, chars: str, n: int) -> float:
    return sum(text.count(c) for c in chars) / n


def style_statistics(texts: Sequence[str]) -> np.ndarray:
    """Stylometric statistics of each text.

    Parameters
    ----------
    texts : sequence of str

    Returns
    -------
    numpy.ndarray, shape (n, 24)
        Columns named by :data:`STYLE_FEATURES`; rates are per character.
    """
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
            np.log1p(len(text)),
            np.log1p(len(words)),
            lens.mean(),
            lens.std(),
            len(set(head)) / max(len(head), 1),
            sum(1 for c in counts.values() if c == 1) / max(len(counts), 1),
            sum(c.isupper() for c in text) / n,
            sum(c.isdigit() for c in text) / n,
            sum(c.isspace() for c in text) / n,
            sum(ord(c) > 127 for c in text) / n,
            text.count("\n") / n,
            np.log1p(len(sentences)),
            sent_words.mean(),
            sent_words.std(),
            _rate(text, ",", n),
            _rate(text, ";", n),
            _rate(text, ":", n),
            _rate(text, "!", n),
            _rate(text, "?", n),
            _rate(text, "\"\u201c\u201d", n),
            _rate(text, "()[]", n),
            _rate(text, "-\u2013\u2014", n),
            _rate(text, "'\u2019", n),
            sum(w[0].isupper() for w in words) / max(len(words), 1),
        )
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

    def _hasher(self) -> HashingVectorizer:
        return HashingVectorizer(
            analyzer=self.analyzer, ngram_range=self.ngram_range, n_features=self.n_features,
            alternate_sign=False, norm=None, lowercase=self.analyzer == "word", dtype=np.float32,
        )

    def fit(self, texts: Sequence[str]) -> "HashedNgramFeatures":
        """Learn IDF weights from ``texts``."""
        counts = self._hasher().transform(texts)
        df = np.bincount(counts.indices, minlength=self.n_features).astype(np.float64)
        self.idf_ = (np.log((1 + counts.shape[0]) / (1 + df)) + 1.0).astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Sparse ``(n, n_features)`` matrix of weighted, normalised n-gram counts."""
        counts = self._hasher().transform(texts).tocsr()
        counts.data = np.log1p(counts.data)
        weighted = counts @ sp.diags(self.idf_)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ weighted, dtype=np.float32)
