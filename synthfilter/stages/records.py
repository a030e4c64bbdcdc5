"""Per-record stages: the encoder, the origin detector and the text sketches.

Each is a pure function of a batch of texts (and of the columns earlier
stages added): it loads its model once in ``setup`` and keeps no state
between batches, so an engine may run it on any shard in any process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synthfilter.cache import CachedDetector
from synthfilter.engine.base import Columns
from synthfilter.stages import textdup

EMBEDDING = "embedding"
#: Fewest texts to score for which :class:`OriginRecordStage` starts its second process (its start
#: costs about a second of the other core).
BACKGROUND_MIN_TEXTS = 2_000
#: Version of the cached sketch rows (bump when their computation changes).
SKETCH_FORMAT = "v1"


class EncodeStage:
    """Sentence embeddings of the texts: adds ``embedding`` (``(n, dim)`` float32, L2-normalised).

    Parameters
    ----------
    encoder : str or Encoder
        Encoder name, model folder, or an :class:`~synthfilter.encoders.Encoder`.
    batch_size : int, default 32
        Encoder batch size.
    show_progress : bool, default False
        Draw the encoder's progress bar.
    """

    name = "encode"
    columns = (EMBEDDING,)

    def __init__(self, encoder: Any, batch_size: int = 32, show_progress: bool = False) -> None:
        self.encoder, self.batch_size, self.show_progress = encoder, batch_size, show_progress

    def setup(self) -> None:
        """Load the encoder (once per worker)."""
        from synthfilter.encoders import get_encoder

        if not hasattr(self, "encoder_"):
            self.encoder_ = get_encoder(self.encoder) if isinstance(self.encoder, (str, Path)) else self.encoder

    def process(self, batch: Columns) -> Columns:
        """Embed ``batch["text"]``."""
        self.setup()
        texts = [str(t) for t in batch["text"]]
        return {EMBEDDING: np.asarray(
            self.encoder_.encode(texts, batch_size=self.batch_size, show_progress=self.show_progress),
            dtype=np.float32)}


class OriginRecordStage:
    """The origin detector per record: adds ``p_synthetic`` and ``synthetic_score``.

    When the detector's embedding block uses the corpus encoder (the same
    encoder id), it takes the ``embedding`` column instead of encoding the
    texts a second time.

    Parameters
    ----------
    model : "default", path or OriginScorer
        The detector.
    trusted : bool, default False
        Allow pickle/joblib model files.
    corpus_encoder_id : str, optional
        Id of the encoder behind the ``embedding`` column.
    show_progress : bool, default False
        Draw the detector's progress bars.
    detector : {"fast", "cascade", "full"}, default "fast"
        ``fast``: the detector alone. ``cascade``/``full``: a
        :class:`~synthfilter.cascade.CascadeDetector` (``cascade``) re-scores
        the uncertain band (or every record) with the LM block and adds
        ``lm_scored`` (bool: the record went through the LM).
    cascade : CascadeDetector, optional
        The cascade, for ``detector`` other than ``fast``.
    background : bool, default False
        Let :meth:`start` run the detector in a second process while the
        earlier stages run, when it does not take the corpus embeddings (the
        default MiniLM corpus encoder; the detector embeds with the static
        one): see :mod:`synthfilter.background`. The scores are the same.
    """

    name = "origin"

    def __init__(self, model: Any = "default", trusted: bool = False, corpus_encoder_id: str | None = None,
                 show_progress: bool = False, detector: str = "fast", cascade: Any = None,
                 background: bool = False) -> None:
        self.model, self.trusted = model, trusted
        self.corpus_encoder_id, self.show_progress = corpus_encoder_id, show_progress
        self.detector, self.cascade = detector, cascade
        self.background = background
        self.columns = ("p_synthetic", "synthetic_score") + (("lm_scored",) if detector != "fast" else ())
        self._pending: tuple[Any, Any, Any] | None = None  # (batch texts, CachedDetector, DetectorJob or None)

    def setup(self) -> None:
        """Load the detector (once per worker)."""
        from synthfilter.origin import OriginScorer, load_model

        if not hasattr(self, "scorer_"):
            self.scorer_ = (self.model if isinstance(self.model, OriginScorer)
                            else load_model(self.model, trusted=self.trusted))

    def reuses_embeddings(self) -> bool:
        """Whether the detector takes the corpus embeddings (same encoder id)."""
        self.setup()
        own = getattr(self.scorer_, "encoder_id_", None)
        return bool(self.scorer_.use_embeddings and own is not None and own == self.corpus_encoder_id)

    def start(self, batch: Columns) -> None:
        """Look the batch up in the score cache and, with ``background``, start scoring its misses elsewhere.

        Called by the local engine before the earlier stages run on the
        batch; :meth:`process` finishes the work. The second process is
        started only when the detector does not take the corpus embeddings,
        for at least :data:`BACKGROUND_MIN_TEXTS` texts to score, with two
        threads allowed (:func:`~synthfilter.origin.scoring_threads`).
        """
        from synthfilter.background import DetectorJob
        from synthfilter.origin import scoring_threads

        self.stop()
        self.setup()
        detector = CachedDetector(self.scorer_)
        todo = detector.missing([str(t) for t in batch["text"]])
        job = None
        if (self.background and len(todo) >= BACKGROUND_MIN_TEXTS and scoring_threads() > 1
                and not self.reuses_embeddings()):
            job = DetectorJob(self.scorer_, todo)
        self._pending = (batch["text"], detector, job)

    def stop(self) -> None:
        """Stop what :meth:`start` began, if anything (the engine calls it when a batch ends or fails)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[2] is not None:
            pending[2].close()

    def process(self, batch: Columns) -> Columns:
        """Score ``batch["text"]``: raw log-odds and calibrated probability."""
        self.setup()
        texts = [str(t) for t in batch["text"]]
        embeddings = batch.get(EMBEDDING) if self.reuses_embeddings() else None
        detector, job = CachedDetector(self.scorer_), None
        if self._pending is not None and self._pending[0] is batch["text"]:
            _, detector, job = self._pending
        try:
            raw = np.asarray(detector.decision_function(
                texts, show_progress=self.show_progress, embeddings=embeddings, job=job), dtype=np.float64)
        finally:
            self.stop()
        if self.detector != "fast":
            out = self.cascade.score(texts, raw=raw, mode=self.detector, show_progress=self.show_progress)
            return {"p_synthetic": out.p_synthetic.astype(np.float64), "synthetic_score": out.synthetic_score,
                    "lm_scored": out.lm_scored}
        p = self.scorer_.calibrate(raw)
        return {"p_synthetic": p.astype(np.float64), "synthetic_score": raw}


class SketchStage:
    """Text keys for duplicate detection: adds ``norm_key`` and, with a threshold, ``band_keys``.

    ``norm_key`` (``(n, 2)`` uint64) identifies the normalised text (equal
    normal forms are exact duplicates); ``band_keys`` (``(n, bands)`` uint64)
    are the MinHash LSH band keys of its character shingles (see
    :mod:`synthfilter.stages.textdup`); texts that share a band key are
    candidate near-duplicates. Both are cached by text (SHA-256) beside the
    embeddings, so a re-run sketches only the texts it has not seen.

    Parameters
    ----------
    text_dup_threshold : float or None
        Jaccard threshold the banding is chosen for; ``None``: ``norm_key`` only.
    cache : bool, default True
        Keep the keys in ``<cache folder>/sketches`` (see
        :func:`synthfilter.cache.default_cache_dir`).
    """

    name = "sketch"

    def __init__(self, text_dup_threshold: float | None = 0.8, cache: bool = True) -> None:
        self.text_dup_threshold, self.cache = text_dup_threshold, cache
        self.columns = ("norm_key",) + (("band_keys",) if text_dup_threshold is not None else ())

    def setup(self) -> None:
        """Nothing to load."""

    def _compute(self, texts: list[str]) -> np.ndarray:
        parts = [textdup.norm_keys(texts)]
        if self.text_dup_threshold is not None:
            parts.append(textdup.band_keys_of(texts, self.text_dup_threshold))
        return np.concatenate(parts, axis=1)

    def _store(self) -> Any:
        """The cache of this banding's rows: ``norm_key`` then the band keys."""
        from synthfilter.cache import ArrayStore, default_cache_dir
        from synthfilter.neardup import lsh_bands

        name, width = "norm", 2
        if self.text_dup_threshold is not None:
            bands, rows = lsh_bands(self.text_dup_threshold, textdup.NUM_PERM)
            name += (f"-minhash-s{textdup.SHINGLE_SIZE}-p{textdup.NUM_PERM}-seed{textdup.MINHASH_SEED}"
                     f"-b{bands}r{rows}")
            width += bands
        return ArrayStore(default_cache_dir() / "sketches" / f"{SKETCH_FORMAT}-{name}.sqlite", width=width,
                          dtype=np.uint64)

    def process(self, batch: Columns) -> Columns:
        """Keys of ``batch["text"]``."""
        from synthfilter.cache import cached_rows

        texts = [str(t) for t in batch["text"]]
        if self.cache:
            with self._store() as store:
                keys, _, _ = cached_rows(texts, store, self._compute)
        else:
            keys = self._compute(texts)
        out = {"norm_key": np.ascontiguousarray(keys[:, :2])}
        if self.text_dup_threshold is not None:
            out["band_keys"] = np.ascontiguousarray(keys[:, 2:])
        return out
