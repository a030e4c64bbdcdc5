"""Score every record of a corpus: the stage registry and :func:`score`.

A scoring *stage* adds named columns to the records, from the texts and their
embeddings. Stages register themselves by name with :func:`register_stage`
(the tail stage here, the origin detector in :mod:`synthfilter.origin`), and
:func:`score` runs them in order over one shared :class:`ScoringContext`, so
that the embeddings are computed once and every stage's information lands in
the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from synthfilter.encoders import DEFAULT_ENCODER, Encoder, get_encoder
from synthfilter.errors import ConfigError
from synthfilter.io import DEFAULT_MAX_TEXT_CHARS, as_frame, document_ids, like_input, validate_corpus
from synthfilter.tails import TailScorer


@dataclass
class ScoringContext:
    """What the stages of one scoring run share.

    Attributes
    ----------
    texts : list of str
        The records' texts, in order.
    encoder : Encoder
        The encoder the embeddings come from.
    embeddings : numpy.ndarray
        ``(n, dim)`` L2-normalised embeddings of ``texts``.
    reference_texts, reference_embeddings : optional
        A gold reference distribution, when one is given.
    groups : list of str, optional
        Document id of each record, when the corpus names them.
    seed : int
        Seed for every random choice.
    show_progress : bool
        Whether stages may draw progress bars.
    info : dict
        Per-stage information for the manifest (filled by the stages).
    """

    texts: list[str]
    encoder: Encoder
    embeddings: np.ndarray
    reference_texts: list[str] | None = None
    reference_embeddings: np.ndarray | None = None
    groups: list[str] | None = None
    seed: int = 0
    show_progress: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """A scoring stage: adds :attr:`columns` to the records."""

    name: str
    columns: tuple[str, ...]

    def run(self, ctx: ScoringContext) -> pl.DataFrame:
        """Return a frame with :attr:`columns`, one row per record, in order."""
        ...


_STAGES: dict[str, Callable[..., Stage]] = {}


def register_stage(name: str) -> Callable[[Callable[..., Stage]], Callable[..., Stage]]:
    """Class decorator that makes a stage available to :func:`score` by name."""

    def decorate(factory: Callable[..., Stage]) -> Callable[..., Stage]:
        _STAGES[name] = factory
        return factory

    return decorate


def available_stages() -> list[str]:
    """Names of the registered stages."""
    _import_builtin_stages()
    return sorted(_STAGES)


def _import_builtin_stages() -> None:
    import synthfilter.origin  # noqa: F401  (registers "origin")


@register_stage("tails")
class TailStage:
    """Rarity, k-NN distance and near-duplicate clusters (see :mod:`synthfilter.tails`).

    Parameters
    ----------
    k, dup_threshold, text_dup_threshold, index : see :class:`~synthfilter.tails.TailScorer`
    """

    name = "tails"
    columns = ("knn_distance", "rarity", "dup_cluster", "is_near_duplicate")

    def __init__(self, k: int = 10, dup_threshold: float = 0.95, index: str = "auto",
                 text_dup_threshold: float | None = 0.8, **_: Any) -> None:
        self.k, self.dup_threshold, self.index = k, dup_threshold, index
        self.text_dup_threshold = text_dup_threshold

    def run(self, ctx: ScoringContext) -> pl.DataFrame:
        scorer = TailScorer(k=self.k, dup_threshold=self.dup_threshold, text_dup_threshold=self.text_dup_threshold,
                            index=self.index, seed=ctx.seed)
        if ctx.reference_embeddings is not None:
            scorer.fit(ctx.reference_embeddings)
            table = scorer.score(ctx.embeddings, ctx.texts)
            against = "reference"
        else:
            if len(ctx.texts) < 2:
                raise ConfigError("rarity needs at least 2 records, or a --reference")
            scorer.fit(ctx.embeddings)
            table = scorer.score(ctx.embeddings, ctx.texts, is_reference=True)
            against = "corpus"
        ctx.info["tails"] = {
            "params": scorer.get_params(),
            "rarity_against": against,
            "index": scorer.index_report_.to_dict(),
        }
        return table


@dataclass
class ScoreResult:
    """A scored corpus and what the run knows about itself.

    Attributes
    ----------
    table : polars.DataFrame
        ``id``, the kept input columns and the score columns.
    info : dict
        Encoder id, per-stage information (model id, index report, synthetic
        share estimate, ...), timings and counts: the manifest's body.
    """

    table: pl.DataFrame
    info: dict[str, Any]


def _as_frame(data: pl.DataFrame | Sequence[str], text_column: str, id_column: str | None,
              max_text_chars: int, source: str) -> pl.DataFrame:
    frame = as_frame(data, text_column)
    return validate_corpus(frame, source=source, text_column=text_column, id_column=id_column,
                           max_text_chars=max_text_chars)


def score_with_report(
    data: pl.DataFrame | Sequence[str],
    *,
    text_column: str = "text",
    id_column: str | None = None,
    keep_columns: Sequence[str] | None = None,
    group_column: str | None = None,
    encoder: str | Encoder = DEFAULT_ENCODER,
    model: Any = "default",
    trusted: bool = False,
    reference: pl.DataFrame | Sequence[str] | None = None,
    reference_text_column: str = "text",
    stages: Sequence[str] | None = None,
    k: int = 10,
    dup_threshold: float = 0.95,
    text_dup_threshold: float | None = 0.8,
    index: str = "auto",
    seed: int = 0,
    batch_size: int = 32,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    show_progress: bool = False,
    source: str = "<data>",
) -> ScoreResult:
    """Score records and return the table with the run's information.

    Parameters are those of :func:`score`; ``source`` names the data in error
    messages.
    """
    timings: dict[str, float] = {}
    frame = _as_frame(data, text_column, id_column, max_text_chars, source)
    if stages is None:
        stages = ("origin", "tails") if model is not None else ("tails",)
    _import_builtin_stages()
    unknown = [s for s in stages if s not in _STAGES]
    if unknown:
        raise ConfigError(f"unknown scoring stage(s) {unknown}; available: {', '.join(sorted(_STAGES))}")
    groups = document_ids(frame, group_column, source)
    enc = get_encoder(encoder) if isinstance(encoder, (str, Path)) else encoder
    texts = frame.get_column("text").to_list()

    start = time.perf_counter()
    embeddings = enc.encode(texts, batch_size=batch_size, show_progress=show_progress)
    timings["encode"] = time.perf_counter() - start

    ref_texts = ref_emb = None
    if reference is not None:
        ref_frame = _as_frame(reference, reference_text_column, None, max_text_chars, "reference")
        ref_texts = ref_frame.get_column("text").to_list()
        start = time.perf_counter()
        ref_emb = enc.encode(ref_texts, batch_size=batch_size, show_progress=show_progress)
        timings["encode_reference"] = time.perf_counter() - start

    ctx = ScoringContext(texts=texts, encoder=enc, embeddings=embeddings, reference_texts=ref_texts,
                         reference_embeddings=ref_emb, groups=groups, seed=seed, show_progress=show_progress)
    options = {"k": k, "dup_threshold": dup_threshold, "text_dup_threshold": text_dup_threshold, "index": index,
               "model": model, "trusted": trusted}
    columns = [frame.select("id")]
    keep = list(keep_columns or [])
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise ConfigError(f"{source}: cannot keep missing column(s) {missing}; columns: {', '.join(frame.columns)}")
    if keep:
        columns.append(frame.select([c for c in keep if c != "id"]))
    for name in stages:
        stage = _STAGES[name](**options)
        start = time.perf_counter()
        added = stage.run(ctx)
        timings[name] = time.perf_counter() - start
        if added.height != frame.height:  # pragma: no cover - stage contract
            raise RuntimeError(f"stage {name} returned {added.height} rows for {frame.height} records")
        columns.append(added)
    table = pl.concat(columns, how="horizontal")
    info = {
        "encoder": enc.id,
        "stages": list(stages),
        "records": frame.height,
        "timings_s": {k_: round(v, 3) for k_, v in timings.items()},
        **ctx.info,
    }
    return ScoreResult(table=table, info=info)


def score(
    data: pl.DataFrame | Sequence[str],
    *,
    text_column: str = "text",
    id_column: str | None = None,
    keep_columns: Sequence[str] | None = None,
    group_column: str | None = None,
    encoder: str | Encoder = DEFAULT_ENCODER,
    model: Any = "default",
    trusted: bool = False,
    reference: pl.DataFrame | Sequence[str] | None = None,
    stages: Sequence[str] | None = None,
    k: int = 10,
    dup_threshold: float = 0.95,
    text_dup_threshold: float | None = 0.8,
    index: str = "auto",
    seed: int = 0,
    show_progress: bool = False,
) -> pl.DataFrame:
    """Score every record for model origin and for its place in the distribution.

    Parameters
    ----------
    data : polars.DataFrame, pandas.DataFrame, pyarrow.Table, datasets.Dataset or list of str
        Records (a table with a text column) or bare texts; see
        :func:`synthfilter.io.as_frame`.
    text_column : str, default "text"
        Column holding the texts.
    id_column : str, optional
        Column of record ids; ``id`` if present, else content hashes.
    keep_columns : list of str, optional
        Input columns to carry into the output (``text`` included if named).
    group_column : str, optional
        Column naming each record's document (a URL, a conversation id): the
        synthetic share's interval then resamples whole documents.
    encoder : str or Encoder, default "minilm"
        ``"minilm"``, ``"static"``, a model folder, or an :class:`Encoder`.
    model : "default", path, OriginScorer or None, default "default"
        Origin detector; ``"default"`` is the shipped model, ``None`` skips
        ``p_synthetic``.
    trusted : bool, default False
        Allow loading a pickle/joblib model file (runs code on load).
    reference : polars.DataFrame or list of str, optional
        Gold reference: rarity is measured against it instead of the corpus.
    stages : list of str, optional
        Stage names to run; ``["origin", "tails"]`` by default.
    k : int, default 10
        Neighbours for rarity and near-duplicates.
    dup_threshold : float, default 0.95
        Cosine similarity for near-duplicates.
    text_dup_threshold : float or None, default 0.8
        Character-shingle Jaccard similarity for near-duplicates (small edits
        embeddings miss); ``None`` turns it off.
    index : {"auto", "flat", "ivf"}, default "auto"
        FAISS index kind.
    seed : int, default 0
        Seed of every random choice.
    show_progress : bool, default False
        Draw progress bars.

    Returns
    -------
    polars.DataFrame, pandas.DataFrame, pyarrow.Table or datasets.Dataset
        The input's table type (a polars DataFrame for a list of strings):
        ``id``, kept columns, then ``p_synthetic`` (if a model is used),
        ``knn_distance``, ``rarity``, ``dup_cluster``, ``is_near_duplicate``;
        one row per input record, in order.

    Examples
    --------
    >>> from synthfilter import score
    >>> table = score(["a cat sat", "a cat sat", "stock prices fell"], encoder="static", model=None, k=1)
    >>> table["is_near_duplicate"].to_list()
    [False, True, False]
    """
    return like_input(score_with_report(
        data, text_column=text_column, id_column=id_column, keep_columns=keep_columns, group_column=group_column,
        encoder=encoder,
        model=model, trusted=trusted, reference=reference, stages=stages, k=k, dup_threshold=dup_threshold,
        text_dup_threshold=text_dup_threshold, index=index, seed=seed, show_progress=show_progress,
    ).table, data)
