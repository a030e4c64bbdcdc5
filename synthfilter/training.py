"""Train and evaluate origin detectors on labelled corpora.

The same functions back ``synthfilter train``/``evaluate`` and the script
that builds the shipped model (``models/build_origin_model.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from synthfilter.errors import ConfigError, SchemaError
from synthfilter.evaluation import evaluate_detector
from synthfilter.origin import OriginScorer
from synthfilter.share import ShareEstimate

#: Fewest records of each class :func:`fit_origin_scorer` accepts.
MIN_PER_CLASS = 2

LABEL_VALUES = {"0": 0, "1": 1, "human": 0, "machine": 1, "synthetic": 1, "false": 0, "true": 1}


def labels_of(frame: pl.DataFrame, column: str, source: str = "<data>") -> np.ndarray:
    """Read a label column as 0 (human) / 1 (machine).

    Accepts integers 0/1, booleans, or the strings human/machine/synthetic.

    Raises
    ------
    SchemaError
        Missing column, nulls, or other values; or only one class present.
    """
    if column not in frame.columns:
        raise SchemaError(f"{source}: no label column '{column}' (columns: {', '.join(frame.columns[:12])}); "
                          "name it with --label-column")
    values = frame.get_column(column)
    if values.null_count():
        rows = values.is_null().arg_true().to_list()[:5]
        raise SchemaError(f"{source}: label column '{column}' is null at rows {rows}; label every record")
    mapped = values.cast(pl.String).str.to_lowercase().replace_strict(LABEL_VALUES, default=None)
    bad = mapped.is_null().arg_true().to_list()
    if bad:
        raise SchemaError(f"{source}: label column '{column}' has values other than 0/1/human/machine "
                          f"at rows {bad[:5]}; use 1 for machine-written and 0 for human")
    y = mapped.cast(pl.Int64).to_numpy()
    if len(np.unique(y)) < 2:
        raise SchemaError(f"{source}: label column '{column}' has only one class; give both human and machine records")
    return y


class CharTfidfBaseline:
    """Baseline detector: TF-IDF character 1–4-grams and a logistic regression.

    Parameters
    ----------
    C : float, default 4.0
        Inverse regularisation strength.
    """

    def __init__(self, C: float = 4.0, max_features: int = 200_000) -> None:
        self.C = C
        self.max_features = max_features

    def fit(self, texts: Sequence[str], y: Sequence[int]) -> CharTfidfBaseline:
        self.vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                                           max_features=self.max_features, dtype=np.float32)
        x = self.vectorizer_.fit_transform(texts)
        self.classifier_ = LogisticRegression(C=self.C, solver="liblinear", max_iter=1000).fit(x, y)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier_.predict_proba(self.vectorizer_.transform(texts))


@dataclass
class ShareTrial:
    """Share-estimation accuracy at one true share over repeated held-out mixes."""

    true_share: float
    mean_estimate: float
    mean_abs_error: float
    max_abs_error: float
    coverage: float
    mean_naive: float
    trials: int
    mean_width: float = float("nan")

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def share_trials(
    p_machine: np.ndarray,
    p_human: np.ndarray,
    estimator: Callable[..., ShareEstimate],
    shares: Sequence[float] = (0.0, 0.1, 0.3, 0.6),
    size: int = 1000,
    trials: int = 20,
    seed: int = 0,
    groups_machine: np.ndarray | None = None,
    groups_human: np.ndarray | None = None,
) -> list[ShareTrial]:
    """Estimate the share of held-out mixes with known truth.

    Each trial draws ``size`` records without replacement (``round(share *
    size)`` machine, the rest human) from held-out probabilities and calls
    ``estimator(p, trial_seed)``; with ``groups_machine`` and ``groups_human``
    (document ids of those records) it calls ``estimator(p, trial_seed, groups)``.
    """
    with_groups = groups_machine is not None and groups_human is not None
    rng = np.random.default_rng(seed)
    out = []
    for share in shares:
        n1 = int(round(share * size))
        n0 = size - n1
        if n1 > p_machine.size or n0 > p_human.size:
            size_ok = min(p_machine.size / max(share, 1e-9), p_human.size / max(1 - share, 1e-9))
            raise SchemaError(f"not enough held-out records for a mix of {size} at share {share}; "
                              f"use size <= {int(size_ok)}")
        estimates, covered, naive, widths = [], [], [], []
        for t in range(trials):
            i1 = rng.choice(p_machine.size, n1, replace=False)
            i0 = rng.choice(p_human.size, n0, replace=False)
            p = np.concatenate([p_machine[i1], p_human[i0]])
            if with_groups:
                est = estimator(p, t, np.concatenate([np.asarray(groups_machine)[i1], np.asarray(groups_human)[i0]]))
            else:
                est = estimator(p, t)
            estimates.append(est.share)
            covered.append(est.low <= n1 / size <= est.high)
            widths.append(est.high - est.low)
            naive.append(est.naive_mean)
        err = np.abs(np.array(estimates) - n1 / size)
        out.append(ShareTrial(true_share=n1 / size, mean_estimate=float(np.mean(estimates)),
                              mean_abs_error=float(err.mean()), max_abs_error=float(err.max()),
                              coverage=float(np.mean(covered)), mean_naive=float(np.mean(naive)), trials=trials,
                              mean_width=float(np.mean(widths))))
    return out


def source_balanced_weights(labels: Sequence[int], sources: Sequence[str]) -> np.ndarray:
    """Sample weights that give every source the same total weight within its class.

    A class's weight is shared equally among its sources, so a small source
    (e.g. 1,000 Gemma continuations beside 9,000 ChatGPT turns) counts as
    much as a large one, and the detector does not learn mostly the largest
    generator. Weights have mean 1 within each class.

    Parameters
    ----------
    labels : sequence of int
        0 (human) or 1 (machine) per record.
    sources : sequence of str
        Source name per record.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> source_balanced_weights([1, 1, 1, 0], ["a", "a", "b", "h"]).round(2).tolist()
    [0.75, 0.75, 1.5, 1.0]
    """
    y = np.asarray(labels)
    src = np.asarray(sources, dtype=str)
    if y.shape != src.shape:
        raise ConfigError(f"{y.size} labels but {src.size} sources")
    weights = np.ones(y.size, dtype=np.float64)
    for cls in np.unique(y):
        in_class = y == cls
        names = np.unique(src[in_class])
        for name in names:
            member = in_class & (src == name)
            weights[member] = in_class.sum() / (names.size * member.sum())
    return weights


def fit_origin_scorer(train: pl.DataFrame, calib: pl.DataFrame | None = None, *, label_column: str = "label",
                      source_column: str | None = "source", group_column: str | None = "group",
                      show_progress: bool = False, **params) -> OriginScorer:
    """Fit an :class:`OriginScorer` on frames with ``text`` and a label column.

    When ``train`` has ``source_column``, records are weighted with
    :func:`source_balanced_weights`; when it has ``group_column``, the
    language-model features keep each group in one fold (and the calibration
    frame's groups drive the share interval's cluster bootstrap).
    """
    scorer = OriginScorer(**params)
    y = labels_of(train, label_column, "training data")
    n_machine = int(y.sum())
    if min(n_machine, y.size - n_machine) < MIN_PER_CLASS:
        raise ConfigError(
            f"training data: {y.size - n_machine} human and {n_machine} machine records; a detector needs at "
            f"least {MIN_PER_CLASS} of each (and more to hold out its calibration); give more labelled records"
        )
    weights = None
    if source_column and source_column in train.columns:
        weights = source_balanced_weights(y, train[source_column].cast(pl.String).fill_null("").to_list())
    groups = (train[group_column].cast(pl.String).fill_null("").to_list()
              if group_column and group_column in train.columns else None)
    fit_kw = {"groups": groups, "sample_weight": weights, "show_progress": show_progress}
    if calib is None:
        return scorer.fit(train["text"].to_list(), y, **fit_kw)
    calib_groups = (calib[group_column].cast(pl.String).to_list()
                    if group_column and group_column in calib.columns else None)
    return scorer.fit(train["text"].to_list(), y, calib_texts=calib["text"].to_list(),
                      calib_y=labels_of(calib, label_column, "calibration data"), calib_groups=calib_groups,
                      **fit_kw)


def evaluate_on(scorer, frame: pl.DataFrame, label_column: str = "label", source_column: str | None = "source",
                *, return_scores: bool = False):
    """Probabilities and a :class:`~synthfilter.evaluation.DetectorReport` on a labelled frame.

    For an :class:`OriginScorer` the ranking metrics use its uncalibrated
    scores (see :func:`~synthfilter.evaluation.evaluate_detector`); with
    ``return_scores`` they come back as a third value (``None`` for other
    scorers).
    """
    y = labels_of(frame, label_column)
    texts = frame["text"].to_list()
    scores = None
    if isinstance(scorer, OriginScorer):
        scores = scorer.decision_function(texts)
        p = scorer.calibrate(scores)
    else:
        p = scorer.predict_proba(texts)[:, 1]
    sources = frame[source_column].to_list() if source_column and source_column in frame.columns else None
    report = evaluate_detector(y, p, sources, scores=scores)
    return (p, report, scores) if return_scores else (p, report)
