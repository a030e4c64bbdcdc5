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

from synthfilter.cache import remembered_text_keys
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


def _plan(stages: Sequence[str], options: dict[str, Any], enc: Encoder | str, batch_size: int,
          show_progress: bool, engine: str) -> tuple[list, list, list]:
    """Record stages, global stages and whole-corpus (local-only) stages for the named stages."""
    from synthfilter.stages import EncodeStage, OriginRecordStage, ShareStage, SketchStage, TailGlobalStage

    encode = EncodeStage(enc, batch_size=batch_size, show_progress=show_progress)
    enc_id = enc.id if not isinstance(enc, (str, Path)) else None
    record: list = [encode]
    global_: list = []
    legacy: list = []
    for name in stages:
        if name == "origin" and _STAGES[name] is _builtin_origin():
            detector, cascade = options.get("detector", "fast"), options.get("cascade")
            origin = OriginRecordStage(options["model"], options["trusted"], corpus_encoder_id=enc_id,
                                       show_progress=show_progress, detector=detector, cascade=cascade,
                                       background=engine == "local")
            record.append(origin)
            global_.append((name, ShareStage(options["model"], options["trusted"], detector=detector, cascade=cascade,
                                             correction=options.get("share_correction", "auto")), origin.columns))
        elif name == "tails" and _STAGES[name] is TailStage:
            record.append(SketchStage(options["text_dup_threshold"]))
            stage = TailGlobalStage(k=options["k"], dup_threshold=options["dup_threshold"],
                                    text_dup_threshold=options["text_dup_threshold"], index=options["index"])
            global_.append((name, stage, stage.columns))
        else:
            stage = _STAGES[name](**options)
            if hasattr(stage, "process"):  # a per-record scorer
                record.append(stage)
                global_.append((name, None, tuple(stage.columns)))
            elif engine == "local":
                legacy.append(name)
                global_.append((name, stage, tuple(stage.columns)))
            else:
                raise ConfigError(f"stage {name!r} runs on the whole corpus (it has run(), not process()); "
                                  "use --engine local for it")
    return record, global_, legacy


def _prefetcher(stages: Sequence[Any], ctx: Any) -> Callable[[Any, dict[str, np.ndarray]], None]:
    """Hands each record stage's finished columns to the global stages that can start early."""
    early = [s for s in stages if hasattr(s, "prefetch")]

    def on_stage_done(_stage: Any, columns: dict[str, np.ndarray]) -> None:
        for stage in early:
            stage.prefetch(columns, ctx)

    return on_stage_done


def _builtin_origin() -> Any:
    from synthfilter.origin import OriginStage

    return OriginStage


@remembered_text_keys()  # the run's caches hash each text once
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
    engine: str = "local",
    ray_address: str | None = None,
    num_workers: int | None = None,
    reuse: bool = False,
    detector: str = "fast",
    cascade: Any = None,
    share_correction: str = "auto",
) -> ScoreResult:
    """Score records and return the table with the run's information.

    Parameters are those of :func:`score`; ``source`` names the data in error
    messages. ``detector`` (``"fast"``, ``"cascade"`` or ``"full"``) chooses
    how the origin stage scores (see :mod:`synthfilter.cascade`); ``cascade``
    is the :class:`~synthfilter.cascade.CascadeDetector` or its folder for the
    two LM modes (the shipped one by default). ``share_correction``
    chooses the share estimate's correction: ``"auto"`` (gold-human with a
    reference of at least 20 records, else the calibration split's),
    ``"calibration-split"``, ``"gold-human"`` or ``"gold-mixture"`` (see
    :mod:`synthfilter.share`; the gold ones need such a reference). With
    ``engine="ray"`` the table also has a ``shard`` column (the input shard
    of each record). With ``reuse`` (the CLI's default), a
    local run whose every input, id and option equals an earlier run's takes
    that run's score columns from :class:`~synthfilter.runcache.RunCache`
    instead of computing them (``info["reused_run"]`` then names it), and a
    computed run is stored there.
    """
    from synthfilter.engine import GlobalContext, get_engine

    timings: dict[str, float] = {}
    if stages is None:
        stages = ("origin", "tails") if model is not None else ("tails",)
    _import_builtin_stages()
    unknown = [s for s in stages if s not in _STAGES]
    if unknown:
        raise ConfigError(f"unknown scoring stage(s) {unknown}; available: {', '.join(sorted(_STAGES))}")
    eng = get_engine(engine, ray_address=ray_address, num_workers=num_workers)
    keep = list(keep_columns or [])
    if engine == "local":
        corpus: Any = _as_frame(data, text_column, id_column, max_text_chars, source)
        ref_source: Any = (None if reference is None
                           else _as_frame(reference, reference_text_column, None, max_text_chars, "reference"))
        missing = [c for c in keep if c not in corpus.columns]
        if missing:
            raise ConfigError(f"{source}: cannot keep missing column(s) {missing}; columns: {', '.join(corpus.columns)}")
        groups = document_ids(corpus, group_column, source)
    else:
        from synthfilter.shards import ShardSource

        corpus = ShardSource.of(data, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars,
                                source=source)
        ref_source = (None if reference is None else
                      ShardSource.of(reference, text_column=reference_text_column, max_text_chars=max_text_chars,
                                     source="reference"))
    from synthfilter.stages.share import check_share_correction

    if "origin" in stages:  # a gold correction without enough gold is refused before any work
        n_ref = None if ref_source is None else ref_source.height if engine == "local" else -1
        check_share_correction(share_correction, n_ref)
    if detector != "fast":
        model, cascade = _cascade_for(detector, cascade, model, trusted, engine)
    enc = get_encoder(encoder) if isinstance(encoder, (str, Path)) else encoder
    options = {"k": k, "dup_threshold": dup_threshold, "text_dup_threshold": text_dup_threshold, "index": index,
               "model": model, "trusted": trusted, "detector": detector, "cascade": cascade,
               "share_correction": share_correction}
    record_stages, global_stages, legacy = _plan(stages, options, enc, batch_size, show_progress, engine)

    base_columns = ["id", *[c for c in keep if c != "id"]]
    run_cache = None
    key = None
    if reuse and engine == "local" and not legacy:
        from synthfilter.runcache import RunCache

        key = _run_key(corpus, groups, ref_source, enc, record_stages, stages, options, seed)
        if key is not None:
            run_cache = RunCache()
            start = time.perf_counter()
            hit = run_cache.load(key, corpus.height)
            if hit is not None:
                columns, stored = hit
                timings["reused_run"] = time.perf_counter() - start
                table = pl.concat([corpus.select(base_columns), columns], how="horizontal")
                info = {**stored, "timings_s": {k_: round(v, 3) for k_, v in timings.items()},
                        "reused_run": key}
                return ScoreResult(table=table, info=info)

    carry = keep + ([group_column] if group_column and group_column not in keep else [])
    reference_records = None
    if ref_source is not None:
        start = time.perf_counter()
        # Encoded for rarity; scored by the detector too, so the share stage can take the human side of its
        # correction from this gold reference (synthfilter.stages.share).
        from synthfilter.stages import OriginRecordStage

        ref_stages = record_stages[:1] + [s for s in record_stages if isinstance(s, OriginRecordStage)]
        reference_records = eng.map_records(ref_source, ref_stages)
        timings["encode_reference"] = time.perf_counter() - start
    ctx = GlobalContext(reference=reference_records, groups=groups if engine == "local" else None, seed=seed)
    start = time.perf_counter()
    if engine == "local":
        records = eng.map_records(corpus, record_stages, carry=carry,
                                  on_stage_done=_prefetcher([s for _, s, _ in global_stages], ctx))
    else:
        records = eng.map_records(corpus, record_stages, carry=carry)
        ctx.groups = groups = document_ids(records.frame, group_column, source)
    timings["per_record"] = time.perf_counter() - start
    added: list[pl.DataFrame] = []
    for name, stage, columns in global_stages:
        start = time.perf_counter()
        if stage is None:
            out = {c: records.columns[c] for c in columns}
        elif name in legacy:
            out = _run_legacy(stage, records, reference_records, enc, ref_source, groups, seed, show_progress, ctx)
        else:
            out = stage.run(records, ctx)
            out = {c: (out[c] if c in out else records.columns[c]) for c in columns}
        timings[name] = time.perf_counter() - start
        frame = out if isinstance(out, pl.DataFrame) else pl.DataFrame(out)
        if not frame.columns:
            continue
        if frame.height != records.frame.height:  # pragma: no cover - stage contract
            raise RuntimeError(f"stage {name} returned {frame.height} rows for {records.frame.height} records")
        added.append(frame)
    base = records.frame.select(base_columns)
    if engine != "local":
        base = base.with_columns(records.frame.get_column("shard"))
    table = pl.concat([base, *added], how="horizontal")
    info = {
        "encoder": enc.id,
        "stages": list(stages),
        "engine": eng.name,
        "records": table.height,
        **ctx.info,
    }
    if run_cache is not None and key is not None:
        run_cache.save(key, table.drop(base_columns), info)
    info["timings_s"] = {k_: round(v, 3) for k_, v in timings.items()}
    if engine != "local":
        info["engine_info"] = eng.describe()
    return ScoreResult(table=table, info=info)


def _run_key(corpus: pl.DataFrame, groups: list[str] | None, reference: pl.DataFrame | None, enc: Encoder,
             record_stages: Sequence[Any], stages: Sequence[str], options: dict[str, Any], seed: int) -> str | None:
    """The :func:`~synthfilter.runcache.run_key` of a local run of built-in stages; ``None`` if it has none.

    A run with a registered third-party stage, or a detector without a
    content id, is never reused: nothing says what its output depends on.
    """
    import synthfilter
    from synthfilter.runcache import run_key
    from synthfilter.stages import OriginRecordStage

    builtin = {"origin": _builtin_origin(), "tails": TailStage}
    if any(name not in builtin or _STAGES[name] is not builtin[name] for name in stages):
        return None  # a stage registered by someone else under any name
    model_id = None
    for stage in record_stages:
        if isinstance(stage, OriginRecordStage):
            stage.setup()
            model_id = getattr(stage.scorer_, "model_id_", None)
            if model_id is None:
                return None
    settings = {
        "synthfilter": synthfilter.__version__, "encoder": enc.id, "model": model_id, "stages": list(stages),
        "seed": seed, **{k: options[k] for k in ("k", "dup_threshold", "text_dup_threshold", "index")},
    }
    if options.get("detector", "fast") != "fast" and "origin" in stages:
        # The fast mode's key is unchanged; the LM modes add the cascade's id, its LM and the mode.
        settings["detector"] = options["cascade"].describe(options["detector"])
    if options.get("share_correction", "auto") != "auto" and "origin" in stages:
        settings["share_correction"] = options["share_correction"]  # the default's key is unchanged
    return run_key(corpus.get_column("text").to_list(), settings, groups=groups,
                   reference=None if reference is None else reference.get_column("text").to_list())


def _cascade_for(detector: str, cascade: Any, model: Any, trusted: bool, engine: str) -> tuple[Any, Any]:
    """The fast detector and the cascade of an LM mode (``--detector cascade|full``), checked before any work."""
    from synthfilter.cascade import MODES, CascadeDetector, load_cascade, require_lm
    from synthfilter.origin import OriginScorer, load_model

    if detector not in MODES:
        raise ConfigError(f"detector must be one of {', '.join(MODES)}, not {detector!r}")
    if model is None:
        raise ConfigError(f"--detector {detector} needs the origin detector; drop --model none")
    if engine != "local":
        raise ConfigError(f"--detector {detector} runs on the local engine; use --engine local or --detector fast")
    if not isinstance(cascade, CascadeDetector):
        fast = model if isinstance(model, OriginScorer) else load_model(model, trusted=trusted)
        cascade = load_cascade(cascade, fast_model=fast, mode=detector)
    if cascade.lm is None:
        require_lm(f"--detector {detector} (the LM feature block)")
    return cascade.fast_(), cascade


def _run_legacy(stage: Stage, records: Any, reference_records: Any, enc: Encoder, ref_source: Any,
                groups: list[str] | None, seed: int, show_progress: bool, gctx: Any) -> pl.DataFrame:
    """Run a whole-corpus stage (``run(ctx)``) on the local engine."""
    ctx = ScoringContext(
        texts=records.texts, encoder=enc, embeddings=records.columns["embedding"],
        reference_texts=None if ref_source is None else ref_source.get_column("text").to_list(),
        reference_embeddings=None if reference_records is None else reference_records.columns["embedding"],
        groups=groups, seed=seed, show_progress=show_progress, info=gctx.info,
    )
    return stage.run(ctx)


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
    engine: str = "local",
    ray_address: str | None = None,
    detector: str = "fast",
    cascade: Any = None,
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
    index : {"auto", "flat", "ivf", "hnsw"}, default "auto"
        FAISS index kind (see :class:`~synthfilter.tails.TailScorer`).
    seed : int, default 0
        Seed of every random choice.
    show_progress : bool, default False
        Draw progress bars.
    engine : {"local", "ray"}, default "local"
        Where the per-record stages run: this process, or a Ray cluster (Ray
        Data; needs ``synthfilter[ray]``). With ``"ray"``, ``data`` may also be
        a path (a file, a glob or a folder of Parquet/JSONL shards) and the
        result has a ``shard`` column.
    ray_address : str, optional
        Ray cluster to join (``"auto"`` for a running one); a local cluster
        is started when none is given.
    detector : {"fast", "cascade", "full"}, default "fast"
        ``fast``: the origin detector alone. ``cascade``: the LM block (the
        ``lm`` extra) re-scores the records whose fast ``p_synthetic`` is in
        the cascade's uncertain band; ``full``: every record. Both add
        ``lm_scored`` (see :mod:`synthfilter.cascade`; local engine only).
    cascade : CascadeDetector or path, optional
        The cascade of the LM modes (the shipped ``origin-cascade-v2`` by default).

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
        engine=engine, ray_address=ray_address, detector=detector, cascade=cascade,
    ).table, data)
