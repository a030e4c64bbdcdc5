"""All metrics of one batch, optionally against one reference.

:func:`batch_metrics` is the plain entry point (arrays and texts in, a dict of
floats out). :class:`EmbeddedSet` holds a set's embeddings, texts and the
derived structures (FAISS index and k-NN radii, Gaussian moments, tokens,
text fingerprints) so that the monitor builds them once and reuses them
across the many reference subsamples of its null distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from synthfilter.monitor import distance, neighbours, spread, text_stats
from synthfilter.monitor.specs import METRIC_NAMES
from synthfilter.normalise import text_fingerprints

__all__ = ["EmbeddedSet", "MetricParams", "ShareFn", "batch_metrics", "compute_metrics"]

#: ``share_fn(p_synthetic) -> (share, low, high)``.
ShareFn = Callable[[np.ndarray], tuple[float, float, float]]


@dataclass(frozen=True)
class MetricParams:
    """Settings shared by every metric computation.

    Parameters
    ----------
    k : int, default 5
        Neighbour rank for the k-NN support radii (precision, recall, tail recall).
    tail_fraction : float, default 0.1
        Share of the reference, by k-NN radius, that forms its tail.
    dup_threshold : float, default 0.95
        Cosine similarity at which two records are near-duplicates.
    bandwidth : float, optional
        RBF kernel width for MMD; the reference's median pairwise distance when
        ``None``.
    """

    k: int = 5
    tail_fraction: float = 0.1
    dup_threshold: float = 0.95
    bandwidth: float | None = None


@dataclass(eq=False)
class EmbeddedSet:
    """A set of records: unit embeddings, optional texts, optional p_synthetic.

    Derived structures are computed on first use and cached.

    Parameters
    ----------
    embeddings : numpy.ndarray of shape (n, d)
    texts : sequence of str, optional
    p_synthetic : numpy.ndarray of shape (n,), optional
    k : int, default 5
        Neighbour rank for :attr:`support`.
    """

    embeddings: np.ndarray
    texts: Sequence[str] | None = None
    p_synthetic: np.ndarray | None = None
    k: int = 5
    _tokens: list[list[str]] | None = field(default=None, repr=False)
    _fingerprints: list[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.embeddings = neighbours.as_float32_unit(self.embeddings)
        n = self.embeddings.shape[0]
        if self.texts is not None and len(self.texts) != n:
            raise ValueError(f"{len(self.texts)} texts for {n} embeddings")
        if self.p_synthetic is not None and len(self.p_synthetic) != n:
            raise ValueError(f"{len(self.p_synthetic)} probabilities for {n} embeddings")

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def tokens(self) -> list[list[str]] | None:
        """Word tokens of each text (``None`` without texts)."""
        if self._tokens is None and self.texts is not None:
            self._tokens = [text_stats.tokenize(t) for t in self.texts]
        return self._tokens

    @property
    def fingerprints(self) -> list[bytes] | None:
        """Normalised-text hashes (exact-duplicate keys), ``None`` without texts."""
        if self._fingerprints is None and self.texts is not None:
            self._fingerprints = text_fingerprints(self.texts)
        return self._fingerprints

    @cached_property
    def support(self) -> neighbours.SupportSet:
        """FAISS index and k-NN radii."""
        return neighbours.SupportSet(self.embeddings, self.k)

    @cached_property
    def moments(self) -> distance.GaussianMoments:
        """Mean, covariance and covariance square root."""
        return distance.GaussianMoments(self.embeddings)

    def self_kernel(self, bandwidth: float) -> float:
        """Mean RBF kernel value over all pairs of this set (cached per bandwidth)."""
        cache = self.__dict__.setdefault("_self_kernel", {})
        if bandwidth not in cache:
            cache[bandwidth] = distance.mean_self_kernel(self.embeddings, bandwidth)
        return cache[bandwidth]

    @cached_property
    def duplicate_labels(self) -> np.ndarray:
        """Near-duplicate cluster label of each record (cosine >= 0.95 or same normalised text)."""
        return neighbours.near_duplicate_clusters(self.embeddings, 0.95, self.fingerprints)

    def subset(self, index: np.ndarray) -> EmbeddedSet:
        """The records at ``index`` (tokens and fingerprints are reused, not recomputed)."""
        index = np.asarray(index)
        texts = None if self.texts is None else [self.texts[i] for i in index]
        p = None if self.p_synthetic is None else np.asarray(self.p_synthetic)[index]
        out = EmbeddedSet(self.embeddings[index], texts, p, self.k)
        if self._tokens is not None:
            out._tokens = [self._tokens[i] for i in index]
        if self._fingerprints is not None:
            out._fingerprints = [self._fingerprints[i] for i in index]
        return out


def _own_metrics(batch: EmbeddedSet, params: MetricParams) -> dict[str, float | None]:
    x = batch.embeddings
    out: dict[str, float | None] = {
        "mean_cosine_distance": spread.mean_pairwise_cosine_distance(x),
        "covariance_trace": spread.covariance_trace(x),
        "participation_ratio": spread.participation_ratio(x),
        "effective_rank": spread.effective_rank(x),
        "vendi_score": spread.vendi_score(x),
    }
    if params.dup_threshold == 0.95:
        labels = batch.duplicate_labels
    else:
        labels = neighbours.near_duplicate_clusters(x, params.dup_threshold, batch.fingerprints)
    out["near_duplicate_rate"] = neighbours.near_duplicate_rate(labels)
    tokens = batch.tokens
    if tokens is not None:
        out["distinct_1"] = text_stats.distinct_n(tokens, 1)
        out["distinct_2"] = text_stats.distinct_n(tokens, 2)
        out["type_token_ratio"] = text_stats.mean_type_token_ratio(tokens)
        out.update(text_stats.length_stats(tokens))
    return out


def _reference_metrics(batch: EmbeddedSet, reference: EmbeddedSet, params: MetricParams) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    out.update(neighbours.precision_recall(batch.support, reference.support, params.tail_fraction))
    bandwidth = params.bandwidth if params.bandwidth is not None else distance.median_bandwidth(reference.embeddings)
    out["mmd_rbf"] = distance.mmd_rbf(
        batch.embeddings, reference.embeddings, bandwidth, y_self_kernel=reference.self_kernel(bandwidth)
    )
    out["frechet_distance"] = distance.frechet_distance(batch.moments, reference.moments)
    if batch.fingerprints is not None and reference.fingerprints is not None:
        known = set(reference.fingerprints)
        out["reference_overlap"] = float(np.mean([f in known for f in batch.fingerprints]))
    return out


def compute_metrics(
    batch: EmbeddedSet,
    reference: EmbeddedSet | None = None,
    params: MetricParams = MetricParams(),
    share_fn: ShareFn | None = None,
    own: dict[str, float | None] | None = None,
) -> dict[str, float | None]:
    """Every metric of :data:`~synthfilter.monitor.specs.METRICS` for one batch.

    Parameters
    ----------
    batch : EmbeddedSet
    reference : EmbeddedSet, optional
        Without it, the reference metrics are ``None``.
    params : MetricParams
    share_fn : callable, optional
        ``share_fn(p) -> (share, low, high)``; used when ``batch`` carries
        ``p_synthetic``. Without it the share is the mean probability.
    own : dict, optional
        Already computed batch-only metrics (reused by the monitor).

    Returns
    -------
    dict
        Metric name -> float, or ``None`` where it cannot be computed (no
        texts, no reference, no probabilities). Keys follow
        :data:`~synthfilter.monitor.specs.METRIC_NAMES`, plus
        ``synthetic_share_low`` and ``synthetic_share_high``.
    """
    if len(batch) < 2:
        raise ValueError("a batch needs at least 2 records")
    values: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
    values.update(own if own is not None else _own_metrics(batch, params))
    if reference is not None:
        values.update(_reference_metrics(batch, reference, params))
    values["synthetic_share_low"] = values["synthetic_share_high"] = None
    if batch.p_synthetic is not None:
        p = np.asarray(batch.p_synthetic, dtype=np.float64)
        share, low, high = share_fn(p) if share_fn is not None else (float(p.mean()), None, None)
        values["synthetic_share"], values["synthetic_share_low"], values["synthetic_share_high"] = share, low, high
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in values.items()}


def batch_metrics(
    batch_embeddings: np.ndarray,
    reference_embeddings: np.ndarray | None = None,
    *,
    texts: Sequence[str] | None = None,
    reference_texts: Sequence[str] | None = None,
    p_synthetic: np.ndarray | None = None,
    share_fn: ShareFn | None = None,
    k: int = 5,
    tail_fraction: float = 0.1,
    dup_threshold: float = 0.95,
    bandwidth: float | None = None,
) -> dict[str, float | None]:
    """Diversity metrics of a batch, against a reference when one is given.

    A single comparison, with no null distribution and no alarms; see
    :class:`~synthfilter.monitor.DiversityMonitor` for those.

    Parameters
    ----------
    batch_embeddings : numpy.ndarray of shape (n, d)
        Embeddings of the batch (rows are L2-normalised here), ``n >= 2`` and
        ``n > k`` for the k-NN metrics.
    reference_embeddings : numpy.ndarray of shape (m, d), optional
        Embeddings of the gold reference, ``m > k``.
    texts, reference_texts : sequence of str, optional
        Texts, for the text statistics, exact duplicates and overlap.
    p_synthetic : numpy.ndarray of shape (n,), optional
        Calibrated probability that each batch record is machine-written.
    share_fn : callable, optional
        ``share_fn(p) -> (share, low, high)``; the mean of ``p`` without it.
    k : int, default 5
        Neighbour rank of the k-NN radii.
    tail_fraction : float, default 0.1
        The reference's rarest share that tail recall looks at.
    dup_threshold : float, default 0.95
        Cosine similarity of near-duplicates.
    bandwidth : float, optional
        MMD kernel width (median heuristic on the reference by default).

    Returns
    -------
    dict
        Metric name -> value or ``None`` (see
        :data:`~synthfilter.monitor.specs.METRICS` for meanings and ranges).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 8))
    >>> m = batch_metrics(x, x)
    >>> m["precision"], m["recall"], m["mmd_rbf"]
    (1.0, 1.0, 0.0)
    """
    params = MetricParams(k=k, tail_fraction=tail_fraction, dup_threshold=dup_threshold, bandwidth=bandwidth)
    batch = EmbeddedSet(batch_embeddings, texts, p_synthetic, k)
    reference = None if reference_embeddings is None else EmbeddedSet(reference_embeddings, reference_texts, None, k)
    return compute_metrics(batch, reference, params, share_fn)
