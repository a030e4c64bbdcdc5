"""The diversity monitor: metrics of each batch, judged against the reference's own variability.

How alarms are decided
----------------------
A metric's value means little on its own: Vendi scores grow with batch size,
k-NN recall depends on the reference's size, text statistics on the genre. So
every batch is compared with what *the reference itself* gives under exactly
the same protocol:

1. **Batch value.** The batch (a random subsample of it when it is larger
   than ``h = min(n_reference // 2, max_half)``) is measured against
   ``n_splits`` (default 4) random halves of the reference, each of ``h``
   records; its value is the mean over the halves. Batch-only metrics
   (dispersion, Vendi score, ...) are computed on the batch itself.
2. **Null distribution.** ``n_null`` (default 30) times, a pseudo-batch of
   the same size is drawn from the reference (whole groups when groups are
   given, so that records of one conversation or document never sit on both
   sides), and measured in the same way against ``n_splits`` halves of ``h``
   records drawn from the *rest* of the reference. The ``n_null`` values are
   what a fresh sample of the reference's own distribution scores.
3. **Alarm.** A metric alarms when the batch value lies beyond the null mean
   by more than ``sigma`` (default 4) null standard deviations in the
   metric's bad direction. Pseudo-batches are drawn without replacement from
   a finite reference, so they vary less than fresh batches would, and the
   null mean is itself estimated from that reference: for a mean-like
   statistic a fresh batch differs from it with variance
   ``(1/m + 1/N) sigma^2`` while pseudo-batches vary by ``(1/m - 1/N)
   sigma^2``. The standard deviation is therefore multiplied by
   ``sqrt((N + m) / (N - m))`` (1.73 when the batch is half the reference's
   ``N`` records, about 1 for a small batch). It is then floored at the metric's
   :attr:`~synthfilter.monitor.specs.MetricSpec.min_scale` and at 1 % of the
   null mean, so that a metric that barely varies does not alarm on a
   negligible change. ``thresholds={"near_duplicate_rate": 0.05}`` replaces a
   metric's bound with an absolute one; ``None`` switches that alarm off.

The alarm is named after the metric's group (``narrowing``, ``tail``,
``shift``, ``duplication``, ``synthetic``). A batch record that is a copy of
a reference record keeps that record's own rarity (see
:func:`~synthfilter.monitor.neighbours.knn_distance_to`), so a batch drawn
from the reference itself is judged fairly.

What to expect
--------------
Measured with ``benchmarks/monitor/bench_monitor.py`` (human references of
300-1,100 paragraphs from Brown, SpamAssassin and ShareGPT; every set drawn
as whole documents or conversations): fresh human batches of 150 paragraphs
raised no alarm in 40 draws at ``sigma=4`` (up to 10 % alarm at ``sigma=3``);
the reference minus its rarest 20 % raised the tail alarm in every draw once
the reference held 600 records or more. Batches of machine text (ChatGPT
conversations, Gemma continuations) were mostly *not* flagged: machine
paragraphs are not narrower than human ones in embedding space (their Vendi
score is higher) and only somewhat poorer in wording, so diversity alone is a
partial check for machine text; the ``synthetic_share`` metric is the direct
one. Power grows with the batch and the reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from synthfilter.errors import ConfigError, InputError
from synthfilter.monitor.distance import median_bandwidth
from synthfilter.monitor.metrics import (
    EmbeddedSet,
    MetricParams,
    _own_metrics,
    compute_metrics,
)
from synthfilter.monitor.neighbours import faiss_threads, knn_distance_to
from synthfilter.monitor.origin_link import resolve_origin
from synthfilter.monitor.specs import METRIC_NAMES, METRICS, get_spec

__all__ = ["MONITOR_SCHEMA", "Alarm", "BatchResult", "DiversityMonitor", "MonitorRun", "NullSummary"]

MONITOR_SCHEMA = "synthfilter.monitor/1"
#: Exit code of ``synthfilter monitor`` when an alarm fires.
ALARM_EXIT_CODE = 3
#: Relative floor of the null spread (share of the null mean's magnitude).
REL_SCALE_FLOOR = 0.01
_MIN_REFERENCE = 20
_EXAMPLES = 10
_SNIPPET = 300
_PROJECTION_POINTS = 600


@dataclass(frozen=True)
class NullSummary:
    """A metric's null distribution and the bound that decides its alarm.

    Attributes
    ----------
    mean, std, q05, q95 : float
        Of the null values (reference half vs. reference half).
    scale : float
        The spread used: ``max(std * sqrt((N + m) / (N - m)), min_scale,
        1% of |mean|)`` for a reference of ``N`` and batches of ``m`` records.
    bound : float or None
        The alarm bound (``None`` when the alarm is off).
    z : float or None
        ``(value - mean) / scale``.
    source : str
        ``"null"`` (sigma rule) or ``"override"`` (user threshold).
    """

    mean: float
    std: float
    q05: float
    q95: float
    scale: float
    bound: float | None
    z: float | None
    source: str = "null"


@dataclass(frozen=True)
class Alarm:
    """One metric beyond its bound.

    Attributes
    ----------
    metric, group : str
    value, bound : float
    bad : {"low", "high"}
    message : str
        The alarm in words.
    """

    metric: str
    group: str
    value: float
    bound: float
    bad: str
    message: str


@dataclass
class BatchResult:
    """Metrics, null summaries and alarms of one batch.

    Attributes
    ----------
    name : str
        The batch's name (file path on the command line).
    n : int
        Records in the batch.
    n_compared : int
        Records per comparison (the batch is subsampled to the size of a
        reference half when it is larger).
    values : dict
        Metric name -> value or ``None``; also ``synthetic_share_low``/``_high``.
    null : dict
        Metric name -> :class:`NullSummary` (metrics with a bad direction).
    alarms : list of Alarm
    notes : list of str
    duplicates : list of dict
        The largest near-duplicate clusters: ``size``, ``ids``, ``text``.
    rarest : list of dict
        Batch records farthest from the reference: ``id``, ``knn_distance``
        (cosine distance to the k-th nearest reference record, see
        :func:`~synthfilter.monitor.neighbours.knn_distance_to`), ``text``.
    projection : list of [x, y]
        2-D PCA coordinates (fitted on the reference) of up to 600 records.
    """

    name: str
    n: int
    n_compared: int
    values: dict[str, float | None]
    null: dict[str, NullSummary]
    alarms: list[Alarm]
    notes: list[str] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    rarest: list[dict] = field(default_factory=list)
    projection: list[list[float]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``"alarm"`` if any alarm fired, else ``"ok"``."""
        return "alarm" if self.alarms else "ok"

    @property
    def alarm_groups(self) -> list[str]:
        """Distinct groups of the alarms, in metric order."""
        return list(dict.fromkeys(a.group for a in self.alarms))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "name": self.name,
            "n": self.n,
            "n_compared": self.n_compared,
            "status": self.status,
            "alarm_groups": self.alarm_groups,
            "values": dict(self.values),
            "null": {k: asdict(v) for k, v in self.null.items()},
            "alarms": [asdict(a) for a in self.alarms],
            "notes": list(self.notes),
            "duplicates": self.duplicates,
            "rarest": self.rarest,
            "projection": self.projection,
        }


@dataclass
class MonitorRun:
    """The monitor's output for a sequence of batches against one reference.

    Attributes
    ----------
    reference : dict
        ``name``, ``n``, optional ``sha256``, ``self`` (batch-only metrics of
        the whole reference) and ``projection`` (2-D PCA coordinates).
    parameters : dict
        The monitor's parameters, including the seed.
    batches : list of BatchResult
    encoder : str
        Encoder id.
    origin : dict
        Where ``p_synthetic`` came from (``source``, ``note``).
    extra : dict
        Further sections (inputs, versions, timings) added by the caller.
    """

    reference: dict
    parameters: dict
    batches: list[BatchResult]
    encoder: str
    origin: dict
    extra: dict = field(default_factory=dict)

    @property
    def has_alarm(self) -> bool:
        """Whether any batch alarmed."""
        return any(b.alarms for b in self.batches)

    def to_dict(self) -> dict:
        """JSON-ready form (``schema`` = :data:`MONITOR_SCHEMA`)."""
        return _finite({
            "schema": MONITOR_SCHEMA,
            "status": "alarm" if self.has_alarm else "ok",
            "encoder": self.encoder,
            "parameters": self.parameters,
            "origin": self.origin,
            "metrics": [spec.to_dict() for spec in METRICS],
            "reference": self.reference,
            "batches": [b.to_dict() for b in self.batches],
            **self.extra,
        })

    def to_json(self) -> str:
        """Strict JSON (non-finite numbers become ``null``)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def to_frame(self) -> pl.DataFrame:
        """One row per batch: name, n, status, alarm groups and messages, then every metric and its bound."""
        rows = []
        for b in self.batches:
            row: dict[str, Any] = {
                "batch": b.name,
                "n": b.n,
                "n_compared": b.n_compared,
                "status": b.status,
                "alarm_groups": ",".join(b.alarm_groups),
                "alarms": " | ".join(a.message for a in b.alarms),
            }
            for name in METRIC_NAMES:
                row[name] = b.values.get(name)
                if name == "synthetic_share":
                    row["synthetic_share_low"] = b.values.get("synthetic_share_low")
                    row["synthetic_share_high"] = b.values.get("synthetic_share_high")
            for name in METRIC_NAMES:
                summary = b.null.get(name)
                row[f"{name}__bound"] = None if summary is None else summary.bound
            rows.append(row)
        schema = {"batch": pl.String, "n": pl.Int64, "n_compared": pl.Int64, "status": pl.String,
                  "alarm_groups": pl.String, "alarms": pl.String}
        schema.update({k: pl.Float64 for k in (rows[0] if rows else {}) if k not in schema})
        return pl.DataFrame(rows, schema=schema)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.floating, np.integer)):
        return _finite(obj.item())
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class DiversityMonitor:
    """Measures batches against a gold reference and raises alarms relative to the reference's own variability.

    Parameters
    ----------
    encoder : str or Encoder, default "minilm"
        Encoder for texts given without embeddings (see
        :func:`~synthfilter.encoders.get_encoder`).
    k : int, default 5
        Neighbour rank of the k-NN support radii.
    tail_fraction : float, default 0.1
        Share of the reference (largest k-NN radii) that tail recall covers.
    dup_threshold : float, default 0.95
        Cosine similarity of near-duplicates.
    n_null : int, default 30
        Pseudo-batches drawn from the reference for the null distribution.
    n_splits : int, default 4
        Comparison halves each batch (and each pseudo-batch) is measured
        against; its value is the mean over them.
    max_half : int, default 2000
        Largest comparison half: references over twice this size are
        compared through random subsets of this size, which bounds the cost.
    sigma : float, default 4.0
        Alarm margin in null standard deviations.
    thresholds : mapping, optional
        Metric name -> absolute bound replacing the sigma rule, or ``None`` to
        switch that metric's alarm off.
    p_synthetic : callable, optional
        ``p_synthetic(texts) -> array`` of calibrated machine probabilities.
    share_estimator : callable, optional
        ``share_estimator(p) -> ShareEstimate | (share, low, high)``.
    origin_model : "default", path, OriginScorer or None, default "default"
        Origin detector used when ``p_synthetic`` is not given; ``None`` skips
        the synthetic share. A missing shipped model only adds a note.
    trusted_model : bool, default False
        Allow a pickle/joblib origin model file.
    projection : bool, default True
        Compute 2-D PCA coordinates for the HTML report.
    seed : int, default 0
        Seed of the splits, subsamples and bootstrap.

    Attributes
    ----------
    reference_ : EmbeddedSet
        The reference (embeddings, texts, p_synthetic).
    reference_name_ : str
    reference_groups_ : numpy.ndarray or None
    bandwidth_ : float
        MMD kernel width (median pairwise distance of the reference).
    half_size_ : int
        Records per comparison half (``min(n // 2, max_half)``); batches are
        subsampled to at most this size.
    comparison_halves_ : list of numpy.ndarray
        Reference indices of the ``n_splits`` halves batches are compared with.
    origin_ : OriginLink
    encoder_id_ : str
    pca_ : sklearn.decomposition.PCA or None

    Examples
    --------
    >>> monitor = DiversityMonitor(encoder="static").fit(gold_texts)      # doctest: +SKIP
    >>> result = monitor.check(batch_texts, name="batch-1")               # doctest: +SKIP
    >>> result.status, [a.message for a in result.alarms]                 # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        encoder: Any = "minilm",
        k: int = 5,
        tail_fraction: float = 0.1,
        dup_threshold: float = 0.95,
        n_null: int = 30,
        n_splits: int = 4,
        max_half: int = 2000,
        sigma: float = 4.0,
        thresholds: Mapping[str, float | None] | None = None,
        p_synthetic: Callable[[Sequence[str]], np.ndarray] | None = None,
        share_estimator: Callable[[np.ndarray], Any] | None = None,
        origin_model: Any = "default",
        trusted_model: bool = False,
        projection: bool = True,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.k = k
        self.tail_fraction = tail_fraction
        self.dup_threshold = dup_threshold
        self.n_null = n_null
        self.n_splits = n_splits
        self.max_half = max_half
        self.sigma = sigma
        self.thresholds = thresholds
        self.p_synthetic = p_synthetic
        self.share_estimator = share_estimator
        self.origin_model = origin_model
        self.trusted_model = trusted_model
        self.projection = projection
        self.seed = seed

    _PARAMS = ("encoder", "k", "tail_fraction", "dup_threshold", "n_null", "n_splits", "max_half", "sigma",
               "thresholds", "p_synthetic", "share_estimator", "origin_model", "trusted_model", "projection",
               "seed")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> DiversityMonitor:
        """Set constructor parameters, as scikit-learn's ``set_params``."""
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ConfigError(f"DiversityMonitor has no parameter '{name}'")
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------------ set-up
    def _validate(self) -> None:
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise ConfigError(f"k must be a positive integer, got {self.k!r}")
        if not 0 < self.tail_fraction <= 0.5:
            raise ConfigError(f"tail_fraction must be in (0, 0.5], got {self.tail_fraction!r}")
        if not 0 < self.dup_threshold <= 1:
            raise ConfigError(f"dup_threshold must be in (0, 1], got {self.dup_threshold!r}")
        if not (isinstance(self.n_null, (int, np.integer)) and self.n_null >= 5):
            raise ConfigError(f"n_null must be an integer >= 5, got {self.n_null!r}")
        if not (isinstance(self.n_splits, (int, np.integer)) and self.n_splits >= 1):
            raise ConfigError(f"n_splits must be a positive integer, got {self.n_splits!r}")
        if not (isinstance(self.max_half, (int, np.integer)) and self.max_half >= 2 * (self.k + 1)):
            raise ConfigError(f"max_half must be an integer >= 2(k+1) = {2 * (self.k + 1)}, got {self.max_half!r}")
        if not self.sigma > 0:
            raise ConfigError(f"sigma must be positive, got {self.sigma!r}")
        for name in self.thresholds or {}:
            if name not in METRIC_NAMES:
                raise ConfigError(f"unknown metric '{name}' in thresholds; use one of {', '.join(METRIC_NAMES)}")
            if get_spec(name).bad == "none":
                raise ConfigError(f"metric '{name}' is informational and has no alarm to set a threshold for")

    def _encoder_obj(self):
        if not isinstance(self.encoder, str):
            return self.encoder
        if not hasattr(self, "_encoder_cache"):
            from synthfilter.encoders import get_encoder

            self._encoder_cache = get_encoder(self.encoder)
        return self._encoder_cache

    def _embed(self, texts: Sequence[str] | None, embeddings: np.ndarray | None, what: str) -> np.ndarray:
        if embeddings is not None:
            emb = np.asarray(embeddings)
            if emb.ndim != 2 or emb.shape[0] == 0:
                raise InputError(f"{what}: embeddings must be a non-empty 2-D array, got shape {emb.shape}")
            if texts is not None and len(texts) != emb.shape[0]:
                raise InputError(f"{what}: {len(texts)} texts but {emb.shape[0]} embeddings")
            if not np.isfinite(emb).all():
                raise InputError(f"{what}: embeddings contain NaN or infinite values")
            return emb
        if texts is None:
            raise InputError(f"{what}: give texts or embeddings")
        return self._encoder_obj().encode(list(texts))

    def fit(
        self,
        texts: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
        *,
        groups: Sequence[Any] | None = None,
        name: str = "reference",
    ) -> DiversityMonitor:
        """Store the gold reference and prepare the null distributions.

        Parameters
        ----------
        texts : sequence of str, optional
            Reference texts (needed for text statistics and the synthetic share).
        embeddings : numpy.ndarray of shape (n, d), optional
            Reference embeddings; computed with ``encoder`` from ``texts`` when
            omitted.
        groups : sequence, optional
            Group of each reference record (conversation, document). Null
            pseudo-batches are then drawn as whole groups, and no record of a
            pseudo-batch's groups sits in the halves it is compared with.
        name : str, default "reference"

        Returns
        -------
        DiversityMonitor
            ``self``.
        """
        self._validate()
        emb = self._embed(texts, embeddings, name)
        n = emb.shape[0]
        minimum = max(_MIN_REFERENCE, 4 * (self.k + 1))
        if n < minimum:
            raise InputError(f"{name}: {n} reference records; the monitor needs at least {minimum} (k={self.k})")
        if groups is not None and len(groups) != n:
            raise InputError(f"{name}: {len(groups)} groups for {n} records")
        self.origin_ = resolve_origin(
            self.p_synthetic, self.share_estimator, model=self.origin_model, trusted=self.trusted_model, seed=self.seed
        )
        p_ref = self.origin_.p_synthetic(texts) if (texts is not None and self.origin_.available) else None
        self.reference_ = EmbeddedSet(emb, None if texts is None else list(texts), p_ref, self.k)
        self.reference_name_ = name
        self.reference_groups_ = None if groups is None else np.asarray(groups, dtype=object)
        self.bandwidth_ = median_bandwidth(self.reference_.embeddings, seed=self.seed)
        if embeddings is None:
            self.encoder_id_ = str(getattr(self._encoder_obj(), "id", self.encoder))
        elif isinstance(self.encoder, str):
            self.encoder_id_ = f"{self.encoder} (precomputed embeddings)"
        else:
            self.encoder_id_ = str(getattr(self.encoder, "id", type(self.encoder).__name__))
        _ = self.reference_.tokens, self.reference_.fingerprints  # computed once, shared by every subset
        self.pca_ = None
        if self.projection:
            from sklearn.decomposition import PCA

            self.pca_ = PCA(n_components=2, random_state=self.seed).fit(self.reference_.embeddings)
        self.half_size_ = min(n // 2, int(self.max_half))
        self.group_codes_ = None
        if self.reference_groups_ is not None:
            self.group_codes_ = np.unique(self.reference_groups_.astype(str), return_inverse=True)[1]
            largest = int(np.bincount(self.group_codes_).max())
            if n - largest < self.half_size_:
                raise InputError(
                    f"{name}: one group holds {largest} of {n} reference records, so no null sample can leave "
                    "half the reference outside it; give more reference records or smaller groups"
                )
        rng = np.random.default_rng([self.seed, 0])
        self.comparison_halves_ = [np.sort(rng.choice(n, size=self.half_size_, replace=False))
                                   for _ in range(self.n_splits)]
        return self

    def _null_draw(self, rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
        """A pseudo-batch of ``m`` reference records and the records it leaves for comparison halves.

        With groups, whole groups are taken until they hold ``m`` records, ``m``
        of their records form the pseudo-batch, and none of those groups'
        records is left for the halves.
        """
        n = len(self.reference_)
        if self.group_codes_ is None:
            perm = rng.permutation(n)
            return np.sort(perm[:m]), np.sort(perm[m:])
        counts = np.bincount(self.group_codes_)
        for _ in range(20):  # prefer a draw that leaves a full half for comparison
            order = rng.permutation(counts.size)
            take = order[: int(np.searchsorted(np.cumsum(counts[order]), m)) + 1]
            taken = np.isin(self.group_codes_, take)
            if n - int(taken.sum()) >= self.half_size_:
                break
        batch = np.sort(rng.choice(np.flatnonzero(taken), size=m, replace=False))
        return batch, np.flatnonzero(~taken)

    def _check_fitted(self) -> None:
        if not hasattr(self, "reference_"):
            raise ConfigError("DiversityMonitor is not fitted; call fit(reference) first")

    @property
    def params_(self) -> MetricParams:
        """The metric settings in use (bandwidth fixed from the reference)."""
        return MetricParams(self.k, self.tail_fraction, self.dup_threshold, self.bandwidth_)

    # ------------------------------------------------------------------ checking
    def check(
        self,
        texts: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
        *,
        name: str = "batch",
        ids: Sequence[str] | None = None,
    ) -> BatchResult:
        """Measure one batch (see :meth:`check_many`)."""
        return self.check_many([{"texts": texts, "embeddings": embeddings, "name": name, "ids": ids}])[0]

    def check_many(self, batches: Sequence[Mapping[str, Any]]) -> list[BatchResult]:
        """Measure several batches, sharing the reference splits between them.

        Parameters
        ----------
        batches : sequence of mapping
            Each with ``texts`` and/or ``embeddings``, and optional ``name``
            and ``ids``.

        Returns
        -------
        list of BatchResult
            In the order given.
        """
        self._check_fitted()
        sets, infos = self._prepare(batches)
        # Many small searches and matrix products: one thread each is faster than
        # idle OpenMP/BLAS threads spinning against each other.
        with faiss_threads(1), threadpool_limits(1):
            return self._compare(sets, infos)

    def _prepare(self, batches: Sequence[Mapping[str, Any]]) -> tuple[list[EmbeddedSet], list[dict[str, Any]]]:
        ref = self.reference_
        sets: list[EmbeddedSet] = []
        infos: list[dict[str, Any]] = []
        for i, item in enumerate(batches):
            name = str(item.get("name") or f"batch {i + 1}")
            texts = item.get("texts")
            emb = self._embed(texts, item.get("embeddings"), name)
            if emb.shape[1] != ref.embeddings.shape[1]:
                raise InputError(
                    f"{name}: embeddings have {emb.shape[1]} dimensions, the reference {ref.embeddings.shape[1]}; "
                    "use the same encoder for both"
                )
            n = emb.shape[0]
            if n <= self.k + 1:
                raise InputError(f"{name}: {n} records; a batch needs more than k+1={self.k + 1} records")
            p = self.origin_.p_synthetic(texts) if (texts is not None and self.origin_.available) else None
            bset = EmbeddedSet(emb, None if texts is None else list(texts), p, self.k)
            _ = bset.tokens, bset.fingerprints
            sets.append(bset)
            ids = item.get("ids")
            infos.append({"name": name, "ids": [str(x) for x in ids] if ids is not None else
                          [f"row {j}" for j in range(n)], "m": min(n, self.half_size_)})
        return sets, infos

    def _compare(self, sets: list[EmbeddedSet], infos: list[dict[str, Any]]) -> list[BatchResult]:
        params = self.params_
        ref = self.reference_
        halves = [ref.subset(idx) for idx in self.comparison_halves_]
        sizes = sorted({info["m"] for info in infos})
        null_values = {m: self._null_values(m, params) for m in sizes}
        results = []
        for i, bset in enumerate(sets):
            m = infos[i]["m"]
            # Own stream per batch size, so a batch's result does not depend on the other batches.
            rng = np.random.default_rng([self.seed, 2, len(bset)])
            own = _own_metrics(bset, params) if m == len(bset) else None
            observed = []
            for half in halves:
                sub = bset if m == len(bset) else bset.subset(np.sort(rng.choice(len(bset), size=m, replace=False)))
                observed.append(compute_metrics(_without_p(sub), half, params, None, own))
            values = _mean_metrics(observed)
            if bset.fingerprints is not None and ref.fingerprints is not None:
                known = set(ref.fingerprints)  # overlap with the whole reference, not with one half
                values["reference_overlap"] = float(np.mean([f in known for f in bset.fingerprints]))
            results.append(self._summarise(bset, infos[i], values, null_values[m]))
        return results

    def _null_values(self, m: int, params: MetricParams) -> list[dict]:
        """``n_null`` values of every metric for pseudo-batches of ``m`` reference records."""
        ref = self.reference_
        rng = np.random.default_rng([self.seed, 1, m])
        out = []
        for _ in range(self.n_null):
            batch_idx, pool = self._null_draw(rng, m)
            pseudo = ref.subset(batch_idx)
            own = _own_metrics(pseudo, params)
            values = []
            for _ in range(self.n_splits):
                half = ref.subset(np.sort(rng.choice(pool, size=min(self.half_size_, pool.size), replace=False)))
                values.append(compute_metrics(_without_p(pseudo), half, params, None, own))
            value = _mean_metrics(values)
            if pseudo.p_synthetic is not None and self.origin_.share_fn is not None:
                value["synthetic_share"] = self.origin_.share_fn(np.asarray(pseudo.p_synthetic, dtype=np.float64))[0]
            out.append(value)
        return out

    def _summarise(self, bset: EmbeddedSet, info: dict, observed: dict, null: list[dict]) -> BatchResult:
        values: dict[str, float | None] = {name: observed.get(name) for name in METRIC_NAMES}
        values["synthetic_share_low"] = values["synthetic_share_high"] = None
        notes: list[str] = []
        if bset.p_synthetic is not None and self.origin_.share_fn is not None:
            share, low, high = self.origin_.share_fn(np.asarray(bset.p_synthetic, dtype=np.float64))
            values["synthetic_share"], values["synthetic_share_low"], values["synthetic_share_high"] = share, low, high
            if self.origin_.note:
                notes.append(self.origin_.note)
        elif self.origin_.note:
            notes.append(self.origin_.note)
        elif bset.texts is None:
            notes.append("synthetic_share not computed: the batch has no texts")
        if info["m"] < len(bset):
            notes.append(
                f"batch subsampled to {info['m']} records per comparison (the size of a reference half); "
                f"values are means over {self.n_splits} subsamples"
            )
        summaries: dict[str, NullSummary] = {}
        alarms: list[Alarm] = []
        # Pseudo-batches are drawn without replacement from a finite reference, so
        # they vary less than fresh batches do, and the null mean is itself an
        # estimate from that reference: a fresh batch differs from it with
        # variance (1/m + 1/N) sigma^2, while pseudo-batches vary by (1/m - 1/N) sigma^2.
        n_ref = len(self.reference_)
        fpc = float(np.sqrt((n_ref + info["m"]) / max(n_ref - info["m"], 1)))
        overrides = dict(self.thresholds or {})
        for spec in METRICS:
            if spec.bad == "none":
                continue
            xs = np.array([v[spec.name] for v in null if v.get(spec.name) is not None], dtype=np.float64)
            value = values.get(spec.name)
            if xs.size < 2:
                continue
            mean, std = float(xs.mean()), float(xs.std(ddof=1))
            scale = max(std * fpc, spec.min_scale, REL_SCALE_FLOOR * abs(mean))
            sign = -1.0 if spec.bad == "low" else 1.0
            source = "null"
            bound: float | None = mean + sign * self.sigma * scale
            if spec.name in overrides:
                bound, source = overrides[spec.name], "override"
            z = None if value is None else (value - mean) / scale
            summaries[spec.name] = NullSummary(
                mean, std, float(np.quantile(xs, 0.05)), float(np.quantile(xs, 0.95)), scale, bound, z, source
            )
            if value is None or bound is None:
                continue
            if (spec.bad == "low" and value < bound) or (spec.bad == "high" and value > bound):
                alarms.append(Alarm(spec.name, spec.group, value, float(bound), spec.bad,
                                    _alarm_message(spec.name, value, bound, mean, z, source)))
        return BatchResult(
            name=info["name"], n=len(bset), n_compared=info["m"], values=values, null=summaries,
            alarms=alarms, notes=notes, duplicates=self._duplicates(bset, info["ids"]),
            rarest=self._rarest(bset, info["ids"]), projection=self._project(bset.embeddings),
        )

    # ------------------------------------------------------------------ examples for the report
    def _duplicates(self, bset: EmbeddedSet, ids: list[str]) -> list[dict]:
        labels = bset.duplicate_labels
        counts = np.bincount(labels)
        out = []
        for label in np.argsort(-counts, kind="stable")[:_EXAMPLES]:
            if counts[label] < 2:
                break
            members = np.flatnonzero(labels == label)
            out.append({
                "size": int(counts[label]),
                "ids": [ids[j] for j in members[:5]],
                "text": None if bset.texts is None else bset.texts[members[0]][:_SNIPPET],
            })
        return out

    def _rarest(self, bset: EmbeddedSet, ids: list[str]) -> list[dict]:
        squared = knn_distance_to(bset.embeddings, self.reference_.support)
        cosine = np.clip(squared / 2.0, 0.0, 2.0)  # ||a-b||^2 = 2 - 2 cos for unit vectors
        order = np.argsort(-cosine, kind="stable")[:_EXAMPLES]
        return [{"id": ids[j], "knn_distance": float(cosine[j]),
                 "text": None if bset.texts is None else bset.texts[j][:_SNIPPET]} for j in order]

    def _project(self, emb: np.ndarray) -> list[list[float]]:
        if self.pca_ is None:
            return []
        if emb.shape[0] > _PROJECTION_POINTS:
            rng = np.random.default_rng([self.seed, 2])
            emb = emb[np.sort(rng.choice(emb.shape[0], _PROJECTION_POINTS, replace=False))]
        return np.round(self.pca_.transform(emb), 4).tolist()

    # ------------------------------------------------------------------ whole run
    def run(self, batches: Sequence[Mapping[str, Any]]) -> MonitorRun:
        """Measure batches and package the result with the reference's description.

        Parameters
        ----------
        batches : sequence of mapping
            As for :meth:`check_many`.

        Returns
        -------
        MonitorRun
        """
        results = self.check_many(batches)
        ref = self.reference_
        # The reference's own spread, for context; on a sample of it when it is large.
        sample = ref
        if len(ref) > 2 * self.max_half:
            rng = np.random.default_rng([self.seed, 3])
            sample = ref.subset(np.sort(rng.choice(len(ref), size=2 * self.max_half, replace=False)))
        with faiss_threads(1), threadpool_limits(1):
            own = _own_metrics(sample, self.params_)
        reference = {
            "name": self.reference_name_,
            "n": len(ref),
            "grouped_splits": self.reference_groups_ is not None,
            "self": own,
            "self_sample_size": len(sample),
            "projection": self._project(ref.embeddings),
        }
        if self.pca_ is not None:
            reference["projection_explained_variance"] = [round(float(v), 4) for v in self.pca_.explained_variance_ratio_]
        parameters = {k: v for k, v in self.get_params().items() if k not in ("p_synthetic", "share_estimator")}
        parameters["encoder"] = parameters["encoder"] if isinstance(parameters["encoder"], str) else self.encoder_id_
        parameters["origin_model"] = str(parameters["origin_model"]) if parameters["origin_model"] is not None else None
        parameters["bandwidth"] = self.bandwidth_
        return MonitorRun(
            reference=reference, parameters=parameters, batches=results, encoder=self.encoder_id_,
            origin={"source": self.origin_.source, "note": self.origin_.note},
        )


def _mean_metrics(values: list[dict]) -> dict[str, float | None]:
    """Mean of each metric over several comparisons (``None`` where it was never computed)."""
    out: dict[str, float | None] = {}
    for name in values[0]:
        xs = [v[name] for v in values if v.get(name) is not None]
        out[name] = float(np.mean(xs)) if xs else None
    return out


def _without_p(sub: EmbeddedSet) -> EmbeddedSet:
    # The synthetic share of a batch is computed once on the whole batch (_summarise).
    if sub.p_synthetic is None:
        return sub
    out = EmbeddedSet.__new__(EmbeddedSet)
    out.__dict__.update(sub.__dict__)
    out.p_synthetic = None
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _alarm_message(name: str, value: float, bound: float, mean: float, z: float | None, source: str) -> str:
    spec = get_spec(name)
    word = "below" if spec.bad == "low" else "above"
    reason = (f"user threshold {_fmt(bound)}" if source == "override"
              else f"alarm bound {_fmt(bound)}; reference samples give {_fmt(mean)}"
              + (f", z = {z:+.1f}" if z is not None else ""))
    what = {
        "narrowing": "the batch is narrower than the reference",
        "tail": "the batch no longer covers the reference's rare records",
        "shift": "the batch's distribution has moved away from the reference",
        "duplication": "the batch repeats itself",
        "synthetic": "the batch looks machine-written",
    }[spec.group]
    return f"{spec.group}: {spec.label} = {_fmt(value)} is {word} the {reason} — {what}"
