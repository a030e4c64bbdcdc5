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

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from synthfilter.errors import ConfigError

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

    def fit(self, texts: Sequence[str]) -> HashedNgramFeatures:
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


#: Statistics of a text's token log-probabilities under one language model.
_LOGPROB_STATS = ("mean", "std", "q10", "median", "q90")


def _logprob_stats(docs: Sequence[np.ndarray], with_unknown: bool) -> np.ndarray:
    out = np.empty((len(docs), len(_LOGPROB_STATS) + int(with_unknown)))
    for i, doc in enumerate(docs):
        logp = doc[:, 0]
        q10, median, q90 = np.quantile(logp, (0.1, 0.5, 0.9))
        out[i, :5] = (logp.mean(), logp.std(), q10, median, q90)
        if with_unknown:
            out[i, 5] = doc[:, 1].mean()
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
        blocks = []
        for order in orders:
            human = _logprob_stats(models[(order, 0)].document_logprobs(texts), with_unknown=True)
            machine = _logprob_stats(models[(order, 1)].document_logprobs(texts), with_unknown=False)
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
