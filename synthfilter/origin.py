"""The origin detector: a calibrated probability that a model wrote a text.

:class:`OriginScorer` joins five feature blocks (sentence embeddings from an
:class:`~synthfilter.encoders.Encoder`, hashed character n-grams, hashed word
n-grams, stylometric statistics, and the likelihood of the text under word
n-gram language models of human and of machine text) and calibrates its
scores on held-out data (isotonic by default). Two classifiers are on offer:

* ``"boosted"`` (default): a logistic regression on the sparse n-gram blocks
  gives one score, cross-fitted by document so that the second stage sees
  out-of-sample values; gradient-boosted trees
  (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`) then combine it
  with the dense blocks (embeddings, style, likelihood statistics), which lets
  them use interactions a linear model cannot (on the shipped model's splits:
  see ``models/origin-v4/MODEL_CARD.md``);
* ``"linear"``: one L2-regularised logistic regression on all blocks.

The held-out probabilities of each class are kept too: they correct the
corpus-level share estimate (:mod:`synthfilter.share`).

Models are saved as a folder with ``model.json`` (parameters, metrics, the
share calibration) and ``weights.npz`` (plain arrays, loaded with
``allow_pickle=False``; the trees as node tables,
:class:`~synthfilter.trees.TreeEnsemble`): loading one runs no code. Pickle
and joblib files are refused unless the caller passes ``trusted=True``. The
model id is ``name@`` a content hash of everything that changes predictions
(arrays, parameters, encoder id, calibration map, share calibration, format);
loading checks it, and the SHA-256 of ``weights.npz``, so an edited or
damaged model stops with one :class:`~synthfilter.errors.ModelError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from synthfilter.base import ParamsMixin
from synthfilter.cache import CachedDetector, file_sha256, remembered_digest
from synthfilter.encoders import get_encoder
from synthfilter.errors import ConfigError, ModelError
from synthfilter.features import (
    STYLE_FEATURES,
    HashedNgramFeatures,
    NGramLikelihoodFeatures,
    style_statistics,
)
from synthfilter.io import atomic_path, atomic_write_text
from synthfilter.scoring import ScoringContext, register_stage
from synthfilter.share import ShareCalibration, estimate_share
from synthfilter.trees import TreeEnsemble

MODEL_FORMAT = "synthfilter.origin/3"
#: Formats :meth:`OriginScorer.load` reads (``/1``: linear models of earlier releases; ``/2``: boosted
#: models whose recorded hash covered the weights only: their id is recomputed from the content on load).
READABLE_FORMATS = ("synthfilter.origin/1", "synthfilter.origin/2", MODEL_FORMAT)
DEFAULT_MODEL_NAME = "origin-v4"
CLASSIFIERS = ("boosted", "linear")
UNSAFE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".skops")


#: Fewest texts per thread worth a second thread in :meth:`OriginScorer.decision_function`.
MIN_TEXTS_PER_THREAD = 512


def scoring_threads() -> int:
    """Threads the detector scores with: ``$SYNTHFILTER_THREADS``, else the CPUs available (at most 2 by default).

    The scores do not depend on it.
    """
    value = os.environ.get("SYNTHFILTER_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ConfigError(f"SYNTHFILTER_THREADS must be a whole number, not {value!r}") from None
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, available))


class OriginScorer(ParamsMixin):
    """Calibrated detector of machine-written text.

    Parameters
    ----------
    encoder : str, default "static"
        Encoder name for the embedding block (see :func:`~synthfilter.encoders.get_encoder`).
    use_embeddings, use_char_ngrams, use_word_ngrams, use_style : bool, default True
        Which feature blocks to use.
    ngram_range : tuple of int, default (1, 4)
        Character n-gram lengths.
    word_ngram_range : tuple of int, default (1, 2)
        Word n-gram lengths.
    n_features : int, default 2**18
        Hash space of each n-gram block.
    lm_orders : tuple of int, default (1, 2)
        Orders of the n-gram language models of the likelihood block
        (:class:`~synthfilter.features.NGramLikelihoodFeatures`); ``()``
        turns the block off. On the 3,000-per-source corpus it raised the
        held-out AUROC from 0.899 to 0.936 and TPR at 1 % FPR from 0.19 to 0.29
        (source-balanced weights in both).
    classifier : {"boosted", "linear"}, default "boosted"
        ``"boosted"``: gradient-boosted trees over the dense blocks and the
        cross-fitted score of a logistic regression on the n-gram blocks;
        ``"linear"``: one logistic regression on every block.
    C : float, default 16.0
        Inverse regularisation strength of the logistic regression(s).
    n_trees : int, default 500
        Boosting iterations (``"boosted"`` only).
    learning_rate : float, default 0.05
        Shrinkage of each tree (``"boosted"`` only).
    cv_folds : int, default 5
        Folds of the cross-fitted n-gram score (``"boosted"`` only); by
        document when ``fit`` gets ``groups``.
    calibration : {"isotonic", "sigmoid"}, default "isotonic"
        Calibration map fitted on held-out data.
    calibration_fraction : float, default 0.25
        Share of the training data held out for calibration when ``fit`` gets
        no explicit calibration set.
    seed : int, default 0
        Seed of every random choice.

    Attributes
    ----------
    model_id_ : str
        ``name@hash``: the first 12 hex digits of the model's content hash,
        which covers its weights, calibration map, share calibration,
        parameters, encoder id and format (set by ``fit`` or ``load``).
    share_calibration_ : ShareCalibration
        Out-of-sample calibrated probabilities of held-out records per class.
    metadata_ : dict
        Training data description and metrics (saved in ``model.json``).

    Examples
    --------
    >>> scorer = OriginScorer(encoder="static").fit(texts, labels)   # doctest: +SKIP
    >>> scorer.predict_proba(["Some paragraph."])[:, 1]               # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: str = "static",
        use_embeddings: bool = True,
        use_char_ngrams: bool = True,
        use_word_ngrams: bool = True,
        use_style: bool = True,
        ngram_range: tuple[int, int] = (1, 4),
        word_ngram_range: tuple[int, int] = (1, 2),
        n_features: int = 2**18,
        lm_orders: tuple[int, ...] = (1, 2),
        classifier: str = "boosted",
        C: float = 16.0,
        n_trees: int = 500,
        learning_rate: float = 0.05,
        cv_folds: int = 5,
        calibration: str = "isotonic",
        calibration_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.use_embeddings = use_embeddings
        self.use_char_ngrams = use_char_ngrams
        self.use_word_ngrams = use_word_ngrams
        self.use_style = use_style
        self.ngram_range = ngram_range
        self.word_ngram_range = word_ngram_range
        self.n_features = n_features
        self.lm_orders = lm_orders
        self.classifier = classifier
        self.C = C
        self.n_trees = n_trees
        self.learning_rate = learning_rate
        self.cv_folds = cv_folds
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.seed = seed

    # --------------------------------------------------------------------------- features
    def _encoder(self):
        return get_encoder(self.encoder)

    def _blocks(
        self,
        texts: Sequence[str],
        fit: bool = False,
        show_progress: bool = False,
        y: np.ndarray | None = None,
        groups: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> tuple[sp.csr_matrix | None, np.ndarray | None]:
        """The sparse n-gram blocks and the dense blocks (embeddings, style, likelihood), each ``None`` when off."""
        if not (self.use_embeddings or self.use_char_ngrams or self.use_word_ngrams or self.use_style or self.lm_orders):
            raise ConfigError("OriginScorer needs at least one feature block")
        sparse, dense = [], []
        if self.use_embeddings:
            emb = (embeddings if embeddings is not None
                   else self._encoder().encode(list(texts), show_progress=show_progress))
            if fit:
                self.encoder_id_ = self._encoder().id
            dense.append(np.asarray(emb, dtype=np.float32))
        if self.use_char_ngrams:
            if fit:
                self.ngrams_ = HashedNgramFeatures("char_wb", self.ngram_range, self.n_features).fit(texts)
            sparse.append(self.ngrams_.transform(texts))
        if self.use_word_ngrams:
            if fit:
                self.word_ngrams_ = HashedNgramFeatures("word", self.word_ngram_range, self.n_features).fit(texts)
            sparse.append(self.word_ngrams_.transform(texts))
        if self.use_style:
            stats = style_statistics(texts)
            if fit:
                self.style_mean_ = stats.mean(axis=0)
                self.style_scale_ = stats.std(axis=0) + 1e-9
            z = np.clip((stats - self.style_mean_) / self.style_scale_, -6, 6) / np.sqrt(len(STYLE_FEATURES))
            dense.append(z.astype(np.float32))
        if self.lm_orders:
            if fit:
                self.lm_ = NGramLikelihoodFeatures(tuple(self.lm_orders), seed=self.seed)
                dense.append(np.asarray(self.lm_.fit_transform(texts, y, groups), dtype=np.float32))
            else:
                dense.append(np.asarray(self.lm_.transform(texts), dtype=np.float32))
        return (sp.hstack(sparse, format="csr", dtype=np.float32) if sparse else None,
                np.hstack(dense) if dense else None)

    def _linear_matrix(self, sparse: sp.csr_matrix | None, dense: np.ndarray | None) -> sp.csr_matrix:
        # Column order of the linear model: embeddings, char n-grams, word n-grams, style, likelihood.
        n_emb = self._n_embedding_columns(dense)
        parts = []
        if dense is not None and n_emb:
            parts.append(sp.csr_matrix(dense[:, :n_emb]))
        if sparse is not None:
            parts.append(sparse)
        if dense is not None and dense.shape[1] > n_emb:
            parts.append(sp.csr_matrix(dense[:, n_emb:]))
        return sp.hstack(parts, format="csr", dtype=np.float32)

    def _n_embedding_columns(self, dense: np.ndarray | None) -> int:
        if dense is None or not self.use_embeddings:
            return 0
        rest = (len(STYLE_FEATURES) if self.use_style else 0) + (self.lm_.n_features if self.lm_orders else 0)
        return dense.shape[1] - rest

    def _cross_fitted_ngram_scores(
        self, sparse: sp.csr_matrix, y: np.ndarray, weights: np.ndarray | None, groups: np.ndarray | None
    ) -> np.ndarray:
        """Out-of-fold scores of the n-gram logistic regression for the training records."""
        from sklearn.model_selection import GroupKFold, StratifiedKFold

        if groups is not None and np.unique(groups).size >= self.cv_folds:
            folds = GroupKFold(n_splits=self.cv_folds).split(sparse, y, groups)
        else:
            n_splits = int(min(self.cv_folds, np.bincount(y).min()))
            if n_splits < 2:
                raise ConfigError("the boosted classifier needs at least 2 training records of each class")
            folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.seed).split(sparse, y)
        scores = np.empty(y.size, dtype=np.float64)
        for fit_idx, out_idx in folds:
            if np.unique(y[fit_idx]).size < 2:
                raise ConfigError("a cross-fitting fold holds one class only; give more documents of each class")
            model = self._ngram_regression().fit(
                sparse[fit_idx], y[fit_idx], sample_weight=None if weights is None else weights[fit_idx]
            )
            scores[out_idx] = model.decision_function(sparse[out_idx])
        return scores

    def _ngram_regression(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, solver="liblinear", max_iter=1000, random_state=self.seed)

    # --------------------------------------------------------------------------- fitting
    def fit(
        self,
        texts: Sequence[str],
        y: Sequence[int],
        *,
        calib_texts: Sequence[str] | None = None,
        calib_y: Sequence[int] | None = None,
        calib_groups: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        sample_weight: Sequence[float] | None = None,
        show_progress: bool = False,
    ) -> OriginScorer:
        """Fit the classifier, then calibrate it on held-out data.

        Parameters
        ----------
        texts : sequence of str
            Training texts.
        y : sequence of int
            1 for machine-written, 0 for human-written.
        calib_texts, calib_y : optional
            Held-out calibration set (e.g. other documents than ``texts``).
            Without it, a stratified ``calibration_fraction`` of the training
            data is held out.
        calib_groups : sequence of str, optional
            Document id of each calibration record; the share estimate's
            interval then resamples whole documents.
        groups : sequence of str, optional
            Document id of each training record: the language-model block's
            out-of-fold features keep a document's records in one fold.
        sample_weight : sequence of float, optional
            Weight of each training record in the logistic regression (e.g.
            :func:`synthfilter.training.source_balanced_weights`).
        show_progress : bool, default False
            Show encoding progress.

        Returns
        -------
        self
        """
        texts = list(texts)
        y = np.asarray(y, dtype=np.int64)
        if len(texts) != y.size:
            raise ConfigError(f"{len(texts)} texts but {y.size} labels")
        if set(np.unique(y)) != {0, 1}:
            raise ConfigError("labels must contain both 0 (human) and 1 (machine), and nothing else")
        if self.calibration not in ("isotonic", "sigmoid"):
            raise ConfigError(f"calibration must be 'isotonic' or 'sigmoid', not {self.calibration!r}")
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {', '.join(CLASSIFIERS)}, not {self.classifier!r}")
        rng = np.random.default_rng(self.seed)
        groups = None if groups is None else np.asarray(groups, dtype=str)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        for name, values in (("groups", groups), ("sample_weight", weights)):
            if values is not None and values.shape != (y.size,):
                raise ConfigError(f"{name} must have one value per text ({y.size}), got shape {values.shape}")
        if weights is not None and (not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0):
            raise ConfigError("sample_weight must be finite, non-negative and not all zero")
        if calib_texts is None:
            calib_mask = np.zeros(y.size, dtype=bool)
            for cls in (0, 1):
                idx = np.flatnonzero(y == cls)
                take = rng.choice(idx, size=max(1, int(round(self.calibration_fraction * idx.size))), replace=False)
                calib_mask[take] = True
            calib_texts = [t for t, m in zip(texts, calib_mask) if m]
            calib_y = y[calib_mask]
            texts = [t for t, m in zip(texts, calib_mask) if not m]
            y = y[~calib_mask]
            groups = None if groups is None else groups[~calib_mask]
            weights = None if weights is None else weights[~calib_mask]
        calib_y = np.asarray(calib_y, dtype=np.int64)
        if set(np.unique(calib_y)) != {0, 1}:
            raise ConfigError("the calibration set must contain both classes")

        stage = _stage_printer(show_progress)
        stage(f"feature blocks of {len(texts):,} training texts (embeddings, n-grams, style, n-gram likelihoods)")
        sparse, dense = self._blocks(texts, fit=True, show_progress=show_progress, y=y, groups=groups)
        if weights is not None:
            weights = weights * (weights.size / weights.sum())  # mean 1: C keeps its meaning
        stage(f"{self.classifier} classifier" + (f" ({self.n_trees} trees)" if self.classifier == "boosted" else ""))
        self._fit_classifier(sparse, dense, y, weights, groups)
        stage(f"calibration on {calib_y.size:,} held-out texts")
        scores = self.decision_function(calib_texts)
        self._fit_calibrator(scores, calib_y)
        # Out-of-sample calibrated probabilities for the share correction: cross-fit
        # the calibrator on two halves of the calibration set.
        halves = rng.permutation(calib_y.size) % 2
        oos = np.empty(calib_y.size)
        for h in (0, 1):
            fit_part, eval_part = halves != h, halves == h
            if len(np.unique(calib_y[fit_part])) < 2:
                oos[eval_part] = self._calibrate(scores[eval_part])
                continue
            oos[eval_part] = _fit_calibration_map(self.calibration, scores[fit_part], calib_y[fit_part])(scores[eval_part])
        groups = {}
        if calib_groups is not None:
            codes = np.unique(np.asarray(calib_groups, dtype=str), return_inverse=True)[1]
            groups = {"groups_machine": codes[calib_y == 1], "groups_human": codes[calib_y == 0]}
        self.share_calibration_ = ShareCalibration(
            p_machine=oos[calib_y == 1], p_human=oos[calib_y == 0], base_prior=float(calib_y.mean()), **groups
        )
        self.n_train_ = int(y.size)
        self.n_calib_ = int(calib_y.size)
        self.metadata_ = getattr(self, "metadata_", {})
        self.model_id_ = f"{DEFAULT_MODEL_NAME}-unsaved@{self._content_digest()[:12]}"
        return self

    def _fit_classifier(
        self,
        sparse: sp.csr_matrix | None,
        dense: np.ndarray | None,
        y: np.ndarray,
        weights: np.ndarray | None,
        groups: np.ndarray | None,
    ) -> None:
        for name in ("classifier_", "coef_", "intercept_", "trees_", "ngram_coef_", "ngram_intercept_"):
            self.__dict__.pop(name, None)
        if self.classifier == "linear":
            self.classifier_ = self._ngram_regression().fit(
                self._linear_matrix(sparse, dense), y, sample_weight=weights
            )
            return
        from sklearn.ensemble import HistGradientBoostingClassifier

        out_of_fold = None
        if sparse is not None:
            out_of_fold = self._cross_fitted_ngram_scores(sparse, y, weights, groups)
            ngram_model = self._ngram_regression().fit(sparse, y, sample_weight=weights)
            self.ngram_coef_ = ngram_model.coef_.ravel().astype(np.float32).astype(np.float64)
            self.ngram_intercept_ = float(ngram_model.intercept_[0])
        boosted = HistGradientBoostingClassifier(
            max_iter=self.n_trees, learning_rate=self.learning_rate, max_leaf_nodes=31, l2_regularization=1.0,
            early_stopping=False, random_state=self.seed,
        ).fit(_tree_inputs(out_of_fold, dense), y, sample_weight=weights)
        self.trees_ = TreeEnsemble.from_estimator(boosted)

    def _fit_calibrator(self, scores: np.ndarray, y: np.ndarray) -> None:
        mapping = _fit_calibration_map(self.calibration, scores, y)
        self.calibrator_ = mapping.params

    def _calibrate(self, scores: np.ndarray) -> np.ndarray:
        return _CalibrationMap.from_params(self.calibrator_)(scores)

    # --------------------------------------------------------------------------- prediction
    def _check_fitted(self) -> None:
        if not any(hasattr(self, name) for name in ("classifier_", "coef_", "trees_")):
            raise ModelError("OriginScorer is not fitted; call fit() or load a model")

    def decision_function(self, texts: Sequence[str], show_progress: bool = False,
                          embeddings: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated scores (log-odds of the classifier).

        ``embeddings``, when given, are the texts' embeddings from this
        detector's encoder (computed elsewhere), used instead of encoding again.
        """
        self._check_fitted()
        texts = list(texts)
        workers = min(scoring_threads(), len(texts) // MIN_TEXTS_PER_THREAD)
        if workers > 1:
            # The feature blocks and the tree walk are numpy work that releases the GIL: threads over
            # contiguous slices give the same scores (each text's features depend on that text alone).
            bounds = np.linspace(0, len(texts), workers + 1).astype(int)
            slices = list(zip(bounds[:-1], bounds[1:]))
            with ThreadPoolExecutor(workers) as pool:
                parts = pool.map(lambda ab: self._decision(
                    texts[ab[0]:ab[1]], False, None if embeddings is None else embeddings[ab[0]:ab[1]]), slices)
                return np.concatenate(list(parts))
        return self._decision(texts, show_progress, embeddings)

    def _decision(self, texts: list[str], show_progress: bool, embeddings: np.ndarray | None) -> np.ndarray:
        sparse, dense = self._blocks(texts, show_progress=show_progress, embeddings=embeddings)
        if not hasattr(self, "trees_"):
            coef, intercept = self._linear()
            return np.asarray(self._linear_matrix(sparse, dense) @ coef, dtype=np.float64).ravel() + intercept
        ngram_score = None
        if sparse is not None:
            ngram_score = np.asarray(sparse @ self.ngram_coef_, dtype=np.float64).ravel() + self.ngram_intercept_
        return self.trees_.decision_function(_tree_inputs(ngram_score, dense))

    def _linear(self) -> tuple[np.ndarray, float]:
        # Weights are stored as float32; predictions use the stored values so that
        # a fitted model and its saved copy give identical probabilities.
        if hasattr(self, "classifier_"):
            coef = self.classifier_.coef_.ravel().astype(np.float32).astype(np.float64)
            return coef, float(self.classifier_.intercept_[0])
        return self.coef_, self.intercept_

    def calibrate(self, scores: Sequence[float]) -> np.ndarray:
        """Machine probabilities of :meth:`decision_function` scores (the fitted calibration map)."""
        self._check_fitted()
        return self._calibrate(np.asarray(scores, dtype=np.float64))

    def predict_proba(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)``: columns human, machine."""
        p = self._calibrate(self.decision_function(texts, show_progress=show_progress))
        return np.column_stack([1.0 - p, p])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """1 where the calibrated machine probability is at least 0.5."""
        return (self.predict_proba(texts)[:, 1] >= 0.5).astype(np.int64)

    def estimate_share(self, texts_or_p: Sequence[str] | np.ndarray, **kwargs: Any):
        """Synthetic share of a corpus with its 95 % interval (see :func:`synthfilter.share.estimate_share`)."""
        p = texts_or_p if isinstance(texts_or_p, np.ndarray) else self.predict_proba(texts_or_p)[:, 1]
        return estimate_share(p, self.share_calibration_, **kwargs)

    # --------------------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        if hasattr(self, "trees_"):
            arrays = self.trees_.to_arrays()
            if hasattr(self, "ngram_coef_"):
                arrays.update({"ngram_coef": self.ngram_coef_.astype(np.float32),
                               "ngram_intercept": np.array([self.ngram_intercept_])})
        else:
            coef, intercept = self._linear()
            arrays = {"coef": coef.astype(np.float32), "intercept": np.array([intercept])}
        if self.use_char_ngrams:
            arrays["idf"] = self.ngrams_.idf_
        if self.use_word_ngrams:
            arrays["word_idf"] = self.word_ngrams_.idf_
        if self.use_style:
            arrays["style_mean"] = self.style_mean_
            arrays["style_scale"] = self.style_scale_
        if self.lm_orders:
            arrays.update({f"lm_{k}": v for k, v in self.lm_.to_arrays().items()})
        for key, value in self.calibrator_.items():
            if isinstance(value, np.ndarray):
                arrays[f"calibrator_{key}"] = value
        return arrays

    def _weights_digest(self) -> str:
        """Hash of the arrays alone (the id of formats /1 and /2; still recorded for them)."""
        digest = hashlib.sha256()
        for key, value in sorted(self._arrays().items()):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:12]

    def _settings(self, fmt: str = MODEL_FORMAT) -> dict[str, Any]:
        """Everything outside the arrays that changes features, scores, probabilities or the share estimate."""
        return {
            "format": fmt,
            "params": self.get_params(),
            "encoder_id": getattr(self, "encoder_id_", None),
            "calibrator": {k: v for k, v in self.calibrator_.items() if not isinstance(v, np.ndarray)},
            "share_calibration": self.share_calibration_.to_dict(),
        }

    def _content_digest(self, arrays: dict[str, np.ndarray] | None = None, fmt: str = MODEL_FORMAT) -> str:
        """SHA-256 (hex) of everything that changes predictions: arrays (name, dtype, shape, bytes) and settings.

        The model id is ``name@`` its first 12 hex digits, so editing the
        calibration, the share calibration, a parameter or the encoder id
        gives another id (and a saved model whose ``model.json`` was edited
        no longer loads).
        """
        digest = hashlib.sha256()
        for key, value in sorted((self._arrays() if arrays is None else arrays).items()):
            value = np.ascontiguousarray(value)
            digest.update(f"{key}\0{value.dtype.str}\0{value.shape}\0".encode())
            digest.update(value.tobytes())
        settings = json.dumps(self._settings(fmt), sort_keys=True, separators=(",", ":"), default=_json_default)
        digest.update(settings.encode("utf-8"))
        return digest.hexdigest()

    def save(self, path: str | Path, name: str = DEFAULT_MODEL_NAME, metadata: dict | None = None) -> Path:
        """Save as a folder with ``model.json`` and ``weights.npz`` (no pickle).

        Parameters
        ----------
        path : str or Path
            Folder to create or overwrite (its two files are replaced atomically).
        name : str
            Model name; the id becomes ``name@<content hash>`` (see
            :attr:`model_id_`).
        metadata : dict, optional
            Training data description and metrics to store (not hashed: they
            do not change predictions).

        Returns
        -------
        Path
            The folder.
        """
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = self._arrays()
        content = self._content_digest(arrays)
        self.model_id_ = f"{name}@{content[:12]}"
        if metadata is not None:
            self.metadata_ = metadata
        settings = self._settings()
        with atomic_path(path / "weights.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            weights_file = file_sha256(tmp)
        doc = {
            "format": MODEL_FORMAT,
            "name": name,
            "id": self.model_id_,
            "content_sha256": content,
            "weights_sha256_prefix": self._weights_digest(),
            "weights_file_sha256": weights_file,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings["params"].items()},
            "encoder_id": settings["encoder_id"],
            "calibrator": settings["calibrator"],
            "share_calibration": settings["share_calibration"],
            "n_train": getattr(self, "n_train_", None),
            "n_calib": getattr(self, "n_calib_", None),
            "metadata": getattr(self, "metadata_", {}),
        }
        atomic_write_text(path / "model.json", json.dumps(doc, indent=2, default=_json_default) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, *, trusted: bool = False, verify: bool | None = None) -> OriginScorer:
        """Load a saved model and check that its files are the ones saved.

        Parameters
        ----------
        path : str or Path
            A model folder written by :meth:`save` (safe), or a pickle/joblib
            file (runs code on load: only with ``trusted=True``).
        trusted : bool, default False
            Allow loading pickle/joblib files.
        verify : bool, optional
            Re-hash the files even if they are unchanged (same path, size and
            modification time) since a previous run hashed them; the CLI's
            ``--verify`` (see :func:`synthfilter.cache.set_verify`).

        Returns
        -------
        OriginScorer

        Raises
        ------
        ModelError
            Missing, corrupt, edited or untrusted model files, or an encoder
            that no longer matches the one the model was trained with.
        """
        path = Path(path)
        if path.suffix.lower() in UNSAFE_SUFFIXES or (path.is_file() and path.suffix.lower() not in (".json",)):
            if not trusted:
                raise ModelError(
                    f"{path}: refusing to load a pickle/joblib model, which can run code; "
                    "use a synthfilter model folder, or pass trusted=True (--trusted-model) if you trust its source"
                )
            import joblib

            try:
                model = joblib.load(path)
            except Exception as exc:  # noqa: BLE001 - any unpickling failure
                raise ModelError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from None
            if not isinstance(model, OriginScorer):
                raise ModelError(f"{path}: holds a {type(model).__name__}, not an OriginScorer")
            return model
        folder = path.parent if path.name == "model.json" else path
        doc_path, weights_path = folder / "model.json", folder / "weights.npz"
        if not doc_path.is_file() or not weights_path.is_file():
            raise ModelError(f"{folder}: not a synthfilter model folder (needs model.json and weights.npz)")
        try:
            doc = json.loads(doc_path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("model.json does not hold an object")
        except (ValueError, OSError) as exc:
            raise ModelError(f"{folder}: corrupt model.json ({exc}); restore it or rebuild the model") from None
        fmt = doc.get("format")
        if fmt not in READABLE_FORMATS:
            raise ModelError(f"{folder}: unknown model format {fmt!r}; "
                             f"expected one of {', '.join(READABLE_FORMATS)} (a newer synthfilter may read it)")
        if fmt == MODEL_FORMAT:
            recorded = doc.get("weights_file_sha256")
            try:
                actual = remembered_digest(weights_path, lambda: file_sha256(weights_path), verify=verify)
            except OSError as exc:
                raise ModelError(f"{folder}: cannot read weights.npz ({exc.strerror or exc})") from None
            if actual != recorded:
                raise ModelError(f"{folder}: weights.npz does not match model.json (its SHA-256 is not the one "
                                 "recorded when it was saved): the file is corrupt or was replaced; "
                                 "restore it or rebuild the model")
        try:
            with np.load(weights_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:  # noqa: BLE001 - zip, zlib and format errors of a damaged file
            raise ModelError(f"{folder}: corrupt weights.npz ({type(exc).__name__}: {exc}); "
                             "restore it or rebuild the model") from None
        try:
            model = cls._from_doc(doc, arrays, folder)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model.json or weights.npz of the wrong shape
            raise ModelError(f"{folder}: corrupt model files ({type(exc).__name__}: {exc}); "
                             "restore them or rebuild the model") from None
        content = remembered_digest([doc_path, weights_path], lambda: model._content_digest(arrays, fmt),
                                    kind=f"origin-content/{fmt}", verify=verify)
        name = doc.get("name") or DEFAULT_MODEL_NAME
        if fmt == MODEL_FORMAT:
            if content != doc.get("content_sha256") or doc.get("id") != f"{name}@{content[:12]}":
                raise ModelError(
                    f"{folder}: model.json was edited after the model was saved (its content hash no longer "
                    "matches); restore the saved file, or make the change in Python on the loaded model and "
                    "save() it, which gives it a new id"
                )
        else:
            # Formats /1 and /2 recorded a hash of the weights only: check that, and derive the id
            # from the whole content so that an edited calibration still shows in the id.
            if model._weights_digest() != doc.get("weights_sha256_prefix"):
                raise ModelError(f"{folder}: weights do not match the hash in model.json; the files are corrupt")
        model.model_id_ = f"{name}@{content[:12]}"
        if model.use_embeddings and model.encoder_id_ and model._encoder().id != model.encoder_id_:
            raise ModelError(
                f"{folder}: trained with encoder {model.encoder_id_}, but '{model.encoder}' is now "
                f"{model._encoder().id}; install the matching encoder package or retrain"
            )
        return model

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], arrays: dict[str, np.ndarray], folder: Path) -> OriginScorer:
        """A model from a parsed ``model.json`` and its arrays (no hash check)."""
        params = dict(doc["params"])
        params.setdefault("classifier", "linear")
        params["ngram_range"] = tuple(params["ngram_range"])
        params["word_ngram_range"] = tuple(params["word_ngram_range"])
        params["lm_orders"] = tuple(params.get("lm_orders", ()))
        model = cls(**params)
        try:
            if model.classifier == "linear":
                model.coef_ = arrays["coef"].astype(np.float64)
                model.intercept_ = float(arrays["intercept"][0])
            else:
                model.trees_ = TreeEnsemble.from_arrays(arrays)
                if "ngram_coef" in arrays:
                    model.ngram_coef_ = arrays["ngram_coef"].astype(np.float64)
                    model.ngram_intercept_ = float(arrays["ngram_intercept"][0])
        except (KeyError, ModelError) as exc:
            raise ModelError(f"{folder}: corrupt classifier arrays ({exc}); rebuild the model") from None
        if model.use_char_ngrams:
            model.ngrams_ = HashedNgramFeatures("char_wb", model.ngram_range, model.n_features)
            model.ngrams_.idf_ = arrays["idf"]
        if model.use_word_ngrams:
            model.word_ngrams_ = HashedNgramFeatures("word", model.word_ngram_range, model.n_features)
            model.word_ngrams_.idf_ = arrays["word_idf"]
        if model.use_style:
            model.style_mean_, model.style_scale_ = arrays["style_mean"], arrays["style_scale"]
        if model.lm_orders:
            lm_arrays = {k.removeprefix("lm_"): v for k, v in arrays.items() if k.startswith("lm_")}
            try:
                model.lm_ = NGramLikelihoodFeatures.from_arrays(lm_arrays, model.lm_orders, seed=model.seed)
            except (KeyError, ConfigError, UnicodeDecodeError) as exc:
                raise ModelError(f"{folder}: corrupt language-model arrays ({exc}); rebuild the model") from None
        model.calibrator_ = dict(doc["calibrator"])
        for key, value in arrays.items():
            if key.startswith("calibrator_"):
                model.calibrator_[key.removeprefix("calibrator_")] = value
        model.share_calibration_ = ShareCalibration.from_dict(doc["share_calibration"])
        model.encoder_id_ = doc.get("encoder_id")
        model.n_train_, model.n_calib_ = doc.get("n_train"), doc.get("n_calib")
        model.metadata_ = doc.get("metadata", {})
        return model


def _stage_printer(show: bool):
    """``stage(text)`` prints one line naming the training stage that starts (to stderr), when ``show``."""

    def stage(text: str) -> None:
        if show:
            print(f"train: {text} ...", file=sys.stderr, flush=True)

    return stage


def _tree_inputs(ngram_score: np.ndarray | None, dense: np.ndarray | None) -> np.ndarray:
    """Columns of the boosted stage: the n-gram score first, then the dense blocks."""
    columns = [] if ngram_score is None else [np.asarray(ngram_score, dtype=np.float64)[:, None]]
    if dense is not None:
        columns.append(dense.astype(np.float64))
    return np.hstack(columns)


class _CalibrationMap:
    """Isotonic (piecewise-linear) or sigmoid map from scores to probabilities."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> _CalibrationMap:
        return cls(params)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.params["kind"] == "isotonic":
            p = np.interp(scores, np.asarray(self.params["x"]), np.asarray(self.params["y"]))
        else:
            p = 1.0 / (1.0 + np.exp(-(self.params["a"] * scores + self.params["b"])))
        return np.clip(p, 0.0, 1.0)


def _smoothed_isotonic(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic fit whose step values are Jeffreys estimates ``(k + 1/2) / (n + 1)``.

    Plain isotonic regression gives a step with no machine record among its
    ``n`` calibration records the probability 0 (and one with no human record
    1), so the expected synthetic count of any set of such records is 0 however
    many machine records it holds in truth. The Jeffreys estimate keeps every
    probability inside (0, 1) by about ``1 / (2 n)``, as the step's sample size
    warrants; a running maximum keeps the map monotone.
    """
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, y)
    fitted = iso.predict(scores)
    values, block = np.unique(fitted, return_inverse=True)
    n = np.bincount(block, minlength=values.size)
    k = np.bincount(block, weights=y.astype(np.float64), minlength=values.size)
    smoothed = np.maximum.accumulate((k + 0.5) / (n + 1.0))
    x_thr = np.asarray(iso.X_thresholds_, dtype=np.float64)
    y_thr = smoothed[np.searchsorted(values, np.asarray(iso.y_thresholds_, dtype=np.float64))]
    return x_thr, y_thr


def _fit_calibration_map(kind: str, scores: np.ndarray, y: np.ndarray) -> _CalibrationMap:
    if kind == "isotonic":
        x_thr, y_thr = _smoothed_isotonic(np.asarray(scores, dtype=np.float64), np.asarray(y))
        return _CalibrationMap({"kind": "isotonic", "x": x_thr, "y": y_thr})
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6, solver="lbfgs").fit(scores.reshape(-1, 1), y)
    return _CalibrationMap({"kind": "sigmoid", "a": float(platt.coef_[0, 0]), "b": float(platt.intercept_[0])})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ------------------------------------------------------------------------------- shipped model
def default_model_path() -> Path:
    """Folder of the shipped detector (``$SYNTHFILTER_MODEL`` overrides it)."""
    override = os.environ.get("SYNTHFILTER_MODEL")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL_NAME


def load_model(path: str | Path | None = None, *, trusted: bool = False, verify: bool | None = None) -> OriginScorer:
    """Load a detector: the shipped one by default (no network call).

    Parameters
    ----------
    path : str or Path, optional
        Model folder (or a trusted pickle/joblib file); the shipped model if ``None``.
    trusted : bool, default False
        Allow pickle/joblib files.
    verify : bool, optional
        Re-hash the model files even if unchanged since a previous run (see :meth:`OriginScorer.load`).

    Returns
    -------
    OriginScorer
    """
    if path is None or str(path) == "default":
        path = default_model_path()
        if not (Path(path) / "model.json").is_file():
            raise ModelError(
                f"the shipped origin model is missing at {path}; reinstall synthfilter, "
                "or build it with: python models/build_origin_model.py"
            )
    return OriginScorer.load(path, trusted=trusted, verify=verify)


load_default_model = load_model


@register_stage("origin")
class OriginStage:
    """Adds ``p_synthetic`` (calibrated), ``synthetic_score`` and the corpus share estimate.

    ``synthetic_score`` is the detector's log-odds before calibration:
    ``p_synthetic`` is a monotone step map of it, so it ranks records the same
    way but without ties, which is what a threshold at a low false-positive
    rate needs (the top calibration step can hold more than 1 % of human text).

    Parameters
    ----------
    model : "default", path or OriginScorer
        The detector.
    trusted : bool, default False
        Allow pickle/joblib model files.
    """

    name = "origin"
    columns = ("p_synthetic", "synthetic_score")

    def __init__(self, model: Any = "default", trusted: bool = False, **_: Any) -> None:
        self.model, self.trusted = model, trusted

    def run(self, ctx: ScoringContext) -> pl.DataFrame:
        scorer = self.model if isinstance(self.model, OriginScorer) else load_model(self.model, trusted=self.trusted)
        raw = CachedDetector(scorer).decision_function(ctx.texts, show_progress=ctx.show_progress)
        p = scorer.calibrate(raw)
        share = scorer.estimate_share(p, groups=ctx.groups, seed=ctx.seed)
        ctx.info["origin"] = {
            "model": scorer.model_id_,
            "encoder": getattr(scorer, "encoder_id_", None),
            "synthetic_share": share.to_dict(),
        }
        return pl.DataFrame({"p_synthetic": p.astype(np.float64), "synthetic_score": raw.astype(np.float64)})
