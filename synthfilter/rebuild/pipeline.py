"""``rebuild``: from candidate and gold frames to a training set and its decisions.

This is the Python entry point behind ``synthfilter rebuild``. It

1. validates every input frame (``id`` and ``text``; see
   :func:`synthfilter.io.validate_corpus`);
2. scores the candidates that arrive raw (no ``p_synthetic``) with
   :func:`synthfilter.scoring.score_with_report`, the same stages and defaults
   as ``synthfilter score``;
3. recomputes the tail columns jointly over candidates and gold
   (:func:`synthfilter.rebuild.joint.joint_tails`) whenever gold is given or
   there is more than one candidate input, so that duplicates of gold records
   and duplicates across files are caught and rarity is measured against gold
   (one scored candidate file keeps its own ``dup_cluster``: only the
   near-duplicate edges that involve gold are searched and merged in);
4. selects with :func:`synthfilter.rebuild.selection.select`, and
5. assembles the training set (gold rows first, unaltered, then the kept
   candidates, in input order) and one decision row per input record.

Writing the files is :func:`synthfilter.rebuild.outputs.write_rebuild`'s job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from synthfilter.encoders import DEFAULT_ENCODER, Encoder, get_encoder
from synthfilter.errors import ConfigError, SchemaError
from synthfilter.io import DEFAULT_MAX_TEXT_CHARS, as_frame, document_ids, is_table, validate_corpus
from synthfilter.rebuild.joint import joint_tails
from synthfilter.rebuild.policy import GOLD, RebuildPolicy
from synthfilter.rebuild.selection import Selection, select
from synthfilter.share import ShareCalibration

#: Score columns that a candidate file may carry and the rebuild recomputes.
SCORE_COLUMNS = ("p_synthetic", "synthetic_score", "knn_distance", "rarity", "dup_cluster", "is_near_duplicate")
#: Columns the rebuild adds to the training set.
ADDED_COLUMNS = ("origin", "reason", "p_synthetic", "rarity")

Frames = pl.DataFrame | Sequence[pl.DataFrame]


@dataclass
class RebuildResult:
    """A rebuilt training set and everything needed to explain it.

    Attributes
    ----------
    training : polars.DataFrame
        The training set: gold rows (unaltered) then kept candidates, each in
        input order, with their original columns plus ``origin``, ``reason``,
        ``p_synthetic`` and ``rarity`` (score columns a candidate file carried
        are replaced by the values the selection used; score columns a gold
        file carried are dropped, its own columns are kept as they are).
    decisions : polars.DataFrame
        One row per input record: ``input``, ``row`` (within its input),
        ``id``, ``origin``, ``kept``, ``reason``, ``p_synthetic``,
        ``p_adjusted``, ``rarity``, ``dup_cluster``, ``rank``.
    selection : Selection
        Share estimates, limits and counts.
    policy : RebuildPolicy
        The policy applied.
    info : dict
        Model and encoder ids, how each stage ran, timings: for the manifest.
    """

    training: pl.DataFrame
    decisions: pl.DataFrame
    selection: Selection
    policy: RebuildPolicy
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, Any]:
        """Counts per reason (see :attr:`Selection.counts`)."""
        return self.selection.counts


def _as_list(frames: Frames | None) -> list[pl.DataFrame]:
    if frames is None:
        return []
    if is_table(frames):
        return [as_frame(frames)]
    out = list(frames)
    if out and all(isinstance(item, str) for item in out):  # one list of texts
        return [as_frame(out)]
    return [as_frame(item) for item in out]


def _names(given: Sequence[str] | None, n: int, kind: str) -> list[str]:
    if given is None:
        return [f"<{kind}[{i}]>" for i in range(n)] if n != 1 else [f"<{kind}>"]
    given = [str(g) for g in given]
    if len(given) != n:
        raise ConfigError(f"{len(given)} {kind} names for {n} {kind} frames")
    return given


def _share_check(candidates: pl.DataFrame, selection: Selection, calibration: ShareCalibration | None,
                 groups: Any, seed: int) -> dict | None:
    """The candidates' gold-human share checked against the gold-mixture one (``None`` without gold-human)."""
    from synthfilter.stages.share import share_check

    if calibration is None:
        return None
    p = candidates.get_column("p_synthetic").cast(pl.Float64).to_numpy()
    return share_check(p, selection.candidate_share, calibration, groups=groups, seed=seed)


def _load_scorer(model: Any, trusted: bool):
    if model is None:
        return None
    from synthfilter.origin import OriginScorer, load_model

    if isinstance(model, OriginScorer):
        return model
    return load_model(None if str(model) == "default" else model, trusted=trusted)


def _concat(frames: list[pl.DataFrame], what: str) -> pl.DataFrame:
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise SchemaError(
            f"{what}: the files' columns do not fit together ({first}); give files whose shared columns "
            "have the same types"
        ) from None


def _check_ids(cands: pl.DataFrame, gold: pl.DataFrame) -> None:
    both = pl.concat([cands.select("id", "text", "_input"), gold.select("id", "text", "_input")])
    clash = (
        both.group_by("id")
        .agg(pl.col("text").n_unique().alias("texts"), pl.col("_input").unique().sort().alias("inputs"))
        .filter(pl.col("texts") > 1)
        .sort("id")
    )
    if clash.height:
        row = clash.row(0, named=True)
        raise SchemaError(
            f"id '{row['id']}' names different texts in {', '.join(row['inputs'])}"
            f"{f' ({clash.height - 1} more ids clash)' if clash.height > 1 else ''}; ids must be unique "
            "across candidate and gold files: give distinct id columns (e.g. prefix them per file)"
        )


def rebuild(
    candidates: Frames,
    gold: Frames | None = None,
    policy: RebuildPolicy | None = None,
    *,
    model: Any = "default",
    trusted: bool = False,
    calibration: ShareCalibration | None = None,
    encoder: str | Encoder = DEFAULT_ENCODER,
    k: int = 10,
    dup_threshold: float = 0.95,
    text_dup_threshold: float | None = 0.8,
    text_column: str = "text",
    id_column: str | None = None,
    group_column: str | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    candidate_names: Sequence[str] | None = None,
    gold_names: Sequence[str] | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
    gold_correction: bool = True,
    share_correction: str = "auto",
) -> RebuildResult:
    """Build a training set that caps the synthetic share and keeps gold and rare records.

    Parameters
    ----------
    candidates : table, list of tables, or list of str
        Candidate records, scored (with ``p_synthetic``, from ``synthfilter
        score``) or raw (then scored here with the same defaults). A table is
        a polars or pandas DataFrame, a pyarrow Table or a
        ``datasets.Dataset`` (see :func:`synthfilter.io.as_frame`); the
        result's tables are polars DataFrames whatever came in.
    gold : table, list of tables, or list of str, optional
        Trusted human records: always kept, never altered, and the reference
        for rarity and for duplicates.
    policy : RebuildPolicy, optional
        Constraints and seed; ``RebuildPolicy()`` by default.
    model : "default", path, OriginScorer or None, default "default"
        The detector that produced (or will produce) ``p_synthetic``; its
        share calibration corrects the probabilities to the candidates'
        prior. ``None``: use ``calibration`` if given, else the probabilities
        as they are (every candidate must then be scored).
    trusted : bool, default False
        Allow pickle/joblib model files.
    calibration : ShareCalibration, optional
        Overrides the model's share calibration.
    encoder : str or Encoder, default "minilm"
        Encoder for the joint tail stage (and for scoring raw candidates);
        use the one the candidates were scored with.
    k, dup_threshold, text_dup_threshold : int, float, float or None
        Tail-stage parameters, as in ``synthfilter score``.
    text_column, id_column, max_text_chars
        How to read the frames (see :func:`synthfilter.io.validate_corpus`).
    group_column : str, optional
        Candidates' column naming each record's document (a URL, a
        conversation id): the share intervals then resample whole documents,
        as they should when records are paragraphs. Selection is unchanged.
    candidate_names, gold_names : list of str, optional
        Names of the inputs (file paths) for messages and the decisions.
    batch_size : int, default 32
        Encoder batch size.
    show_progress : bool, default False
        Draw progress bars.
    gold_correction : bool, default True
        With gold (at least :data:`synthfilter.share.MIN_GOLD` records), a
        model and no ``calibration``, score the gold and take the human side
        of the share correction from it
        (:meth:`synthfilter.share.ShareCalibration.with_gold_human`): the
        gold is human text of the candidates' own domain, where the model's
        calibration split may not be. ``False`` keeps the model's.
    share_correction : {"auto", "calibration-split", "gold-human", "gold-mixture"}, default "auto"
        The share correction with a model and no ``calibration``: ``"auto"``
        is what ``gold_correction`` says; ``"gold-mixture"`` reads the share
        as a mixture proportion against the gold
        (:meth:`synthfilter.share.ShareCalibration.with_gold_mixture`). The
        gold ones need gold of at least ``MIN_GOLD`` records.

    Returns
    -------
    RebuildResult

    Raises
    ------
    SchemaError
        For invalid inputs (missing columns, ids that clash across files).
    ConfigError
        For a policy that cannot be met; the message says what is possible.

    Examples
    --------
    >>> result = rebuild(scored, gold=human, policy=RebuildPolicy(max_synthetic=0.1))  # doctest: +SKIP
    >>> result.training.write_parquet("train.parquet")                                  # doctest: +SKIP
    """
    policy = RebuildPolicy() if policy is None else policy
    if not isinstance(policy, RebuildPolicy):
        raise ConfigError(f"policy must be a RebuildPolicy, not {type(policy).__name__}")
    timings: dict[str, float] = {}
    cand_frames, gold_frames = _as_list(candidates), _as_list(gold)
    if not cand_frames:
        raise ConfigError("no candidate data; give at least one candidate file")
    from synthfilter.stages.share import check_share_correction

    check_share_correction(share_correction, sum(g.height for g in gold_frames) if gold_frames else None)
    cand_names = _names(candidate_names, len(cand_frames), "candidates")
    gold_names_ = _names(gold_names, len(gold_frames), "gold")

    def prepared(frames: list[pl.DataFrame], names: list[str]) -> list[pl.DataFrame]:
        out = []
        for frame, name in zip(frames, names):
            if "_input" in frame.columns or "_row" in frame.columns:
                raise SchemaError(f"{name}: columns '_input' and '_row' are reserved; rename them")
            checked = validate_corpus(
                frame, source=name, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars
            )
            out.append(
                checked.with_columns(
                    _input=pl.lit(name, dtype=pl.String), _row=pl.int_range(checked.height, dtype=pl.Int64)
                )
            )
        return out

    cand_frames = prepared(cand_frames, cand_names)
    groups = None
    if group_column is not None:  # checked per file, before any scoring
        groups = [
            g for frame, name in zip(cand_frames, cand_names)
            for g in document_ids(frame.drop("_input", "_row"), group_column, name)
        ]
    gold_frames = prepared(gold_frames, gold_names_)
    for frame, name in zip(gold_frames, gold_names_):
        clash = [c for c in ("origin", "reason") if c in frame.columns]
        if clash:
            raise SchemaError(f"{name}: gold has column(s) {clash}, which the training set adds; rename them")

    scorer = _load_scorer(model, trusted)
    enc = get_encoder(encoder) if isinstance(encoder, (str, Path)) else encoder
    info: dict[str, Any] = {
        "model": getattr(scorer, "model_id_", None),
        "encoder": enc.id,
        "tails": {"k": k, "dup_threshold": dup_threshold, "text_dup_threshold": text_dup_threshold},
    }

    # 1. Score raw candidates (jointly, so they share one tail view) -----------------------
    raw = [i for i, f in enumerate(cand_frames) if "p_synthetic" not in f.columns]
    if raw:
        if scorer is None:
            raise ConfigError(
                f"{cand_names[raw[0]]}: no column 'p_synthetic' and no model to score it with; "
                "score it first with `synthfilter score`, or give a model"
            )
        from synthfilter.scoring import score_with_report

        start = time.perf_counter()
        raw_all = pl.concat([cand_frames[i] for i in raw], how="diagonal_relaxed")
        keep = [c for c in raw_all.columns if c != "id" and c not in SCORE_COLUMNS]
        # The joint stage below recomputes the tail columns when there is gold or more than one input.
        stages = ("origin",) if gold_frames or len(cand_frames) > 1 else None
        scored = score_with_report(
            raw_all, keep_columns=keep, group_column=group_column, encoder=enc, model=scorer, stages=stages, k=k,
            dup_threshold=dup_threshold,
            text_dup_threshold=text_dup_threshold, seed=policy.seed, batch_size=batch_size, show_progress=show_progress,
            source=", ".join(cand_names[i] for i in raw),
        )
        timings["score_raw"] = time.perf_counter() - start
        info["scored_raw"] = {"inputs": [cand_names[i] for i in raw], **scored.info}
        table = scored.table
        offset = 0
        for i in raw:
            n = cand_frames[i].height
            added = [c for c in SCORE_COLUMNS if c in table.columns and c not in cand_frames[i].columns]
            cand_frames[i] = table.slice(offset, n).select(cand_frames[i].columns + added)
            offset += n

    cands = _concat(cand_frames, "candidates")
    gold_all = _concat(gold_frames, "gold") if gold_frames else None
    gold_for_check = gold_all if gold_all is not None else cands.clear().select("id", "text", "_input")
    _check_ids(cands, gold_for_check)

    # 2. Joint tail view -------------------------------------------------------------------
    needs_tails = policy.dedup or policy.keep_rare is not None
    joint = needs_tails and (gold_all is not None or len(cand_frames) > 1 or (
        (policy.dedup and "dup_cluster" not in cands.columns)
        or (policy.keep_rare is not None and "rarity" not in cands.columns)
    ))
    # synthetic_score, where scoring wrote it, breaks ties between equal calibrated p.
    cand_sel = cands.select("id", "p_synthetic", *[c for c in ("synthetic_score",) if c in cands.columns])
    gold_sel = None if gold_all is None else gold_all.select("id")
    if joint:
        start = time.perf_counter()
        # One scored candidate file already holds its own clusters: only gold's edges are searched.
        reuse = (
            gold_all is not None and len(cand_frames) == 1 and not raw and "dup_cluster" in cands.columns
            and cands.get_column("dup_cluster").null_count() == 0
        )
        tails = joint_tails(
            cands.get_column("text").to_list(),
            [] if gold_all is None else gold_all.get_column("text").to_list(),
            enc, k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, seed=policy.seed,
            batch_size=batch_size, show_progress=show_progress,
            candidate_clusters=cands.get_column("dup_cluster").to_numpy() if reuse else None,
        )
        timings["joint_tails"] = time.perf_counter() - start
        cand_sel = cand_sel.with_columns(
            rarity=pl.Series(tails.candidate_rarity, dtype=pl.Float64),
            dup_cluster=pl.Series(tails.candidate_clusters, dtype=pl.Int64),
        )
        if gold_sel is not None:
            gold_sel = gold_sel.with_columns(dup_cluster=pl.Series(tails.gold_clusters, dtype=pl.Int64))
        info["tails"].update({"computed": "joint", **tails.info})
    else:
        for col in ("rarity", "dup_cluster"):
            if col in cands.columns:
                cand_sel = cand_sel.with_columns(cands.get_column(col))
        info["tails"].update({"computed": "from-scores" if needs_tails else "not-needed"})

    # 3. Select -----------------------------------------------------------------------------
    if calibration is None and scorer is not None:
        calibration = scorer.share_calibration_
        correction = share_correction if gold_correction or share_correction != "auto" else "calibration-split"
        if gold_all is not None and correction != "calibration-split":  # the share correction from the gold
            from synthfilter.stages.share import gold_calibration

            calibration, note = gold_calibration(scorer, gold_all.get_column("text").to_list(), correction=correction)
            info["share_correction"] = {"correction": calibration.correction, "n_gold": calibration.n_gold,
                                        **({"note": note} if note else {})}
    start = time.perf_counter()
    selection = select(cand_sel, gold_sel, policy, calibration=calibration, groups=groups)
    timings["select"] = time.perf_counter() - start
    info["calibration"] = "model" if calibration is not None else "none (probabilities used as given)"
    check = _share_check(cand_sel, selection, calibration, groups, policy.seed)
    if check is not None:
        info["share_check"] = check

    # 4. Decisions and training set ---------------------------------------------------------
    n_g = 0 if gold_all is None else gold_all.height
    where = pl.concat(
        ([gold_all.select("_input", "_row")] if gold_all is not None else []) + [cands.select("_input", "_row")]
    )
    decisions = selection.decisions.with_columns(input=where.get_column("_input"), row=where.get_column("_row"))
    decisions = decisions.select("input", "row", *[c for c in selection.decisions.columns if c != "row"])

    cand_dec = decisions.slice(n_g)
    kept_mask = cand_dec.get_column("kept")
    kept_c = (
        cands.drop([c for c in SCORE_COLUMNS if c in cands.columns])
        .with_columns(
            origin=pl.lit("candidate", dtype=pl.String),
            reason=cand_dec.get_column("reason"),
            p_synthetic=cand_dec.get_column("p_synthetic"),
            rarity=cand_dec.get_column("rarity"),
        )
        .filter(kept_mask)
    )
    parts = []
    if gold_all is not None:
        gold_out = gold_all.drop([c for c in SCORE_COLUMNS if c in gold_all.columns]).with_columns(
            origin=pl.lit(GOLD, dtype=pl.String),
            reason=pl.lit(GOLD, dtype=pl.String),
            p_synthetic=pl.lit(None, dtype=pl.Float64),
            rarity=pl.lit(None, dtype=pl.Float64),
        )
        parts.append(gold_out)
    parts.append(kept_c)
    training = _concat(parts, "training set").drop("_input", "_row")
    if gold_all is not None:
        _assert_gold_unaltered(gold_all, training)
    info["timings_s"] = {name: round(v, 3) for name, v in timings.items()}
    return RebuildResult(training=training, decisions=decisions, selection=selection, policy=policy, info=info)


def _assert_gold_unaltered(gold: pl.DataFrame, training: pl.DataFrame) -> None:
    """Internal invariant: the gold rows of the output equal the gold input, column by column."""
    cols = [c for c in gold.columns if c not in ("_input", "_row") and c not in SCORE_COLUMNS]
    head = training.slice(0, gold.height).select(cols)
    if not head.equals(gold.select(cols).cast(dict(head.schema))):  # pragma: no cover - a bug, not a user error
        raise RuntimeError("internal error: gold records changed during the rebuild")
    if np.any(training.slice(0, gold.height).get_column("origin").to_numpy() != GOLD):  # pragma: no cover
        raise RuntimeError("internal error: gold records out of place in the training set")
