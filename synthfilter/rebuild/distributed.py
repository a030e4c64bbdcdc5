"""``rebuild`` over a sharded scores folder on Ray: selection on the driver, texts on the workers.

The selection (:func:`synthfilter.rebuild.selection.select`) needs only a few
small columns per record (``id``, ``p_synthetic``, ``synthetic_score``,
``rarity``, ``dup_cluster``): Ray tasks read just those columns of each shard
and the driver selects. The workers then read their shards again, keep the
selected rows and write the training set as shards. The texts never reach the
driver. The decisions are those of :func:`synthfilter.rebuild.rebuild` on the
concatenated shards (one input, named by the folder; ``row`` counts over the
whole corpus).

Everything goes into one folder, assembled under a temporary name and
renamed into place once: ``part-<n>.parquet`` (the training set, one shard per
input shard), ``_decisions.parquet`` and ``_manifest.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from synthfilter.atomic import replace_folder
from synthfilter.errors import ConfigError, OutputError
from synthfilter.io import DEFAULT_MAX_TEXT_CHARS, document_ids, validate_corpus
from synthfilter.rebuild.pipeline import SCORE_COLUMNS, RebuildResult, _load_scorer, _share_check
from synthfilter.rebuild.policy import RebuildPolicy
from synthfilter.rebuild.selection import select
from synthfilter.share import ShareCalibration
from synthfilter.shards import read_shard, resolve_shards

DECISIONS_NAME = "_decisions.parquet"
MANIFEST_NAME = "_manifest.json"
#: Columns the selection may read.
SELECTION_COLUMNS = ("id", "p_synthetic", "synthetic_score", "rarity", "dup_cluster")


def _small_columns(path: str, text_column: str, id_column: str | None, max_text_chars: int,
                   group_column: str | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """On a worker: read one shard, validate it, return only what the selection needs (and its empty schema)."""
    frame, _ = read_shard(path, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    cols = [c for c in SELECTION_COLUMNS if c in frame.columns]
    if group_column is not None:
        document_ids(frame, group_column, path)
        cols.append(group_column)
    return frame.select(cols), frame.clear()


def _texts_of(path: str, ids: list[str], text_column: str, id_column: str | None, max_text_chars: int
              ) -> pl.DataFrame:
    """On a worker: ``id`` and text of the shard's records whose id is in ``ids``."""
    frame, _ = read_shard(path, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    return frame.filter(pl.col("id").is_in(ids)).select("id", "text")


def _write_training(path: str, out: str, text_column: str, id_column: str | None, max_text_chars: int,
                    kept: np.ndarray, reason: list, p: np.ndarray, rarity: np.ndarray,
                    template: pl.DataFrame | None = None) -> str:
    """On a worker: the kept rows of one shard, with the columns the training set adds."""
    frame, _ = read_shard(path, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    training = (
        frame.drop([c for c in SCORE_COLUMNS if c in frame.columns])
        .with_columns(
            origin=pl.lit("candidate", dtype=pl.String),
            reason=pl.Series(reason, dtype=pl.String),
            p_synthetic=pl.Series(p, dtype=pl.Float64),
            rarity=pl.Series(rarity, dtype=pl.Float64),
        )
        .filter(pl.Series(kept, dtype=pl.Boolean))
    )
    if template is not None:  # the columns and types of the whole training set (gold's first)
        training = pl.concat([template, training], how="diagonal_relaxed")
    training.write_parquet(out)
    return out


def rebuild_sharded(
    scores: str | os.PathLike,
    output: str | os.PathLike,
    policy: RebuildPolicy | None = None,
    *,
    model: Any = "default",
    trusted: bool = False,
    calibration: ShareCalibration | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    group_column: str | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    ray_address: str | None = None,
    parameters: dict | None = None,
    gold: list[pl.DataFrame] | None = None,
    gold_names: list[str] | None = None,
    encoder: str = "minilm",
    k: int = 10,
    dup_threshold: float = 0.95,
    text_dup_threshold: float | None = 0.8,
    batch_size: int = 32,
    gold_correction: bool = True,
    share_correction: str = "auto",
) -> RebuildResult:
    """Rebuild a training set from sharded scores on a Ray cluster.

    Parameters
    ----------
    scores : path
        A folder, glob or file of scored shards (``synthfilter score`` output
        kept with ``--keep text``): ``id``, the text, ``p_synthetic`` and,
        as the policy needs them, ``rarity`` and ``dup_cluster``.
    output : path
        Folder to write (replaced as a whole).
    policy : RebuildPolicy, optional
        Constraints and seed.
    model, trusted, calibration, text_column, id_column, group_column, max_text_chars
        As in :func:`synthfilter.rebuild.rebuild`.
    ray_address : str, optional
        Cluster to join.
    parameters : dict, optional
        Extra parameters to record in the manifest.
    gold : list of polars.DataFrame, optional
        Gold records (``id``, ``text``, ...), read on the driver (gold is
        small): always kept, the reference for rarity and for duplicates.
        Their texts are embedded on the workers, and the tails that involve
        gold are computed shard by shard
        (:func:`synthfilter.rebuild.sharded_joint.sharded_gold_tails`), as
        the local engine computes them (:func:`~synthfilter.rebuild.joint.joint_tails`).
        The training set's first part, ``part-00000.parquet``, then holds gold.
    gold_names : list of str, optional
        Their file names, for the decisions.
    encoder, k, dup_threshold, text_dup_threshold, batch_size
        The joint tail stage's settings, as in :func:`synthfilter.rebuild.rebuild`
        (use the encoder the candidates were scored with).
    gold_correction : bool, default True
        With gold and no ``calibration``, take the human side of the share
        correction from the gold, as :func:`synthfilter.rebuild.rebuild` does.
    share_correction : {"auto", "calibration-split", "gold-human", "gold-mixture"}, default "auto"
        As in :func:`synthfilter.rebuild.rebuild`.

    Returns
    -------
    RebuildResult
        With an empty ``training`` frame (the training set is in ``output``,
        written by the workers) and the decisions.
    """
    from synthfilter.engine import get_engine

    policy = RebuildPolicy() if policy is None else policy
    engine = get_engine("ray", ray_address=ray_address)
    engine.connect()
    import ray

    paths = resolve_shards(scores)
    out = Path(output)
    if any(out.resolve() == p.resolve().parent for p in paths) or out.resolve() == Path(scores).resolve():
        raise OutputError(f"{out}: the output folder holds the input shards; choose another -o")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file())):
        raise OutputError(f"{out}: exists and is not a synthfilter training-set folder; choose another -o")
    from synthfilter.stages.share import check_share_correction

    check_share_correction(share_correction, sum(g.height for g in gold) if gold else None)
    timings: dict[str, float] = {}
    read = {"text_column": text_column, "id_column": id_column, "max_text_chars": max_text_chars}

    start = time.perf_counter()
    small_task = ray.remote(num_cpus=0.5)(_small_columns)
    with engine.errors():
        read_back = ray.get([small_task.remote(str(p), **read, group_column=group_column) for p in paths])
    smalls = [small for small, _ in read_back]
    timings["read_columns"] = time.perf_counter() - start
    try:
        cands = pl.concat(smalls, how="diagonal_relaxed")
        cand_schema = pl.concat([empty for _, empty in read_back], how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"{scores}: shards have incompatible columns ({str(exc).splitlines()[0][:120]})") from None
    if "p_synthetic" not in cands.columns:
        raise ConfigError(f"{scores}: no column 'p_synthetic'; score the shards first with "
                          "`synthfilter score --engine ray --keep text`")
    if cands.get_column("id").is_duplicated().any():
        raise ConfigError(f"{scores}: ids repeat across shards; make ids unique across the corpus")
    groups = None if group_column is None else cands.get_column(group_column).cast(pl.String).to_list()
    scorer = _load_scorer(model, trusted)
    gold_all = _gold_frame(gold or [], gold_names, read) if gold else None
    correction_info: dict[str, Any] | None = None
    if calibration is None and scorer is not None:
        calibration = scorer.share_calibration_
        correction = share_correction if gold_correction or share_correction != "auto" else "calibration-split"
        if gold_all is not None and correction != "calibration-split":  # as the local engine: from the gold
            from synthfilter.stages.share import gold_calibration

            calibration, note = gold_calibration(scorer, gold_all.get_column("text").to_list(), correction=correction)
            correction_info = {"correction": calibration.correction, "n_gold": calibration.n_gold,
                                **({"note": note} if note else {})}
    tails_info: dict[str, Any] = {"computed": "from-scores"}
    cand_sel = cands.select([c for c in SELECTION_COLUMNS if c in cands.columns])
    gold_sel = None
    if gold_all is not None:
        _check_gold_ids(gold_all, cands, paths, read, engine)
        gold_sel = gold_all.select("id")
        if policy.dedup or policy.keep_rare is not None:
            start = time.perf_counter()
            tails = _gold_tails(scores, cands, gold_all, engine, read, encoder=encoder, k=k,
                                dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold,
                                seed=policy.seed, batch_size=batch_size)
            timings["joint_tails"] = time.perf_counter() - start
            cand_sel = cands.select("id", "p_synthetic", *[c for c in ("synthetic_score",) if c in cands.columns]
                                    ).with_columns(rarity=pl.Series(tails.candidate_rarity, dtype=pl.Float64),
                                                   dup_cluster=pl.Series(tails.candidate_clusters, dtype=pl.Int64))
            gold_sel = gold_sel.with_columns(dup_cluster=pl.Series(tails.gold_clusters, dtype=pl.Int64))
            tails_info = {"computed": "joint", "k": k, "dup_threshold": dup_threshold,
                          "text_dup_threshold": text_dup_threshold, **tails.info}
        else:
            tails_info = {"computed": "not-needed"}
    start = time.perf_counter()
    selection = select(cand_sel, gold_sel, policy, calibration=calibration, groups=groups)
    check = _share_check(cand_sel, selection, calibration, groups, policy.seed)
    timings["select"] = time.perf_counter() - start
    n_g = 0 if gold_all is None else gold_all.height
    where = pl.concat(([gold_all.select("_input", "_row")] if gold_all is not None else []) + [
        pl.DataFrame({"_input": pl.Series([str(scores)] * cands.height, dtype=pl.String),
                      "_row": pl.int_range(cands.height, dtype=pl.Int64, eager=True)})])
    decisions = selection.decisions.with_columns(input=where.get_column("_input"), row=where.get_column("_row"))
    decisions = decisions.select("input", "row", *[c for c in selection.decisions.columns if c != "row"])
    template = None
    if gold_all is not None:
        template = _training_template(gold_all, cand_schema)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        start = time.perf_counter()
        write_task = ray.remote(num_cpus=0.5)(_write_training)
        offset, refs, names = n_g, [], []
        if gold_all is not None:  # gold first, unaltered, as the local engine writes it
            names.append("part-00000.parquet")
            _gold_training(gold_all, template).write_parquet(tmp / names[0])
        for i, (path, small) in enumerate(zip(paths, smalls), start=len(names)):
            part = decisions.slice(offset, small.height)
            offset += small.height
            name = f"part-{i:05d}.parquet"
            names.append(name)
            refs.append(write_task.remote(str(path), str(tmp / name), **read,
                                          kept=part.get_column("kept").to_numpy(),
                                          reason=part.get_column("reason").to_list(),
                                          p=part.get_column("p_synthetic").to_numpy(),
                                          rarity=part.get_column("rarity").to_numpy(), template=template))
        with engine.errors():
            ray.get(refs)
        timings["write_training"] = time.perf_counter() - start
        decisions.write_parquet(tmp / DECISIONS_NAME)
        inputs = [*paths, *[Path(g) for g in (gold_names or []) if gold_all is not None and Path(g).is_file()]]
        manifest = _manifest(inputs, tmp, names, selection, policy, scorer, engine, timings, parameters or {},
                             out)
        if gold_all is not None:
            manifest["tails"] = tails_info
        if correction_info is not None:
            manifest["share_correction"] = correction_info
        if check is not None:
            manifest["share_check"] = check
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = {"model": getattr(scorer, "model_id_", None), "engine": "ray", "engine_info": engine.describe(),
            "tails": tails_info, "timings_s": {name: round(v, 3) for name, v in timings.items()},
            **({"share_correction": correction_info} if correction_info is not None else {}),
            **({"share_check": check} if check is not None else {})}
    return RebuildResult(training=pl.DataFrame(), decisions=decisions, selection=selection, policy=policy,
                         info=info)


def _manifest(paths, tmp: Path, names, selection, policy, scorer, engine, timings, parameters, out: Path) -> dict:
    from synthfilter.provenance import build_manifest, describe_inputs

    manifest = build_manifest(
        "rebuild", inputs=paths, outputs=[], parameters={**parameters, "policy": policy.to_dict()
                                                         if hasattr(policy, "to_dict") else repr(policy)},
        counts=selection.counts, model=getattr(scorer, "model_id_", None), engine=engine.describe(),
        timings_s={k: round(v, 3) for k, v in timings.items()},
    )
    described = describe_inputs([tmp / n for n in [*names, DECISIONS_NAME]])
    for entry, name in zip(described, [*names, DECISIONS_NAME]):
        entry["path"] = str(out / name)
    manifest["outputs"] = described
    return manifest


def _gold_frame(frames: list[pl.DataFrame], names: list[str] | None, read: dict) -> pl.DataFrame:
    """Gold files validated and tagged with ``_input`` / ``_row``, concatenated (as the local engine does)."""
    from synthfilter.rebuild.pipeline import _concat

    names = [f"<gold[{i}]>" for i in range(len(frames))] if names is None else list(names)
    out = []
    for frame, name in zip(frames, names):
        if "_input" in frame.columns or "_row" in frame.columns:
            raise ConfigError(f"{name}: columns '_input' and '_row' are reserved; rename them")
        clash = [c for c in ("origin", "reason") if c in frame.columns]
        if clash:
            raise ConfigError(f"{name}: gold has column(s) {clash}, which the training set adds; rename them")
        checked = validate_corpus(frame, source=name, text_column=read["text_column"], id_column=read["id_column"],
                                  max_text_chars=read["max_text_chars"])
        out.append(checked.with_columns(_input=pl.lit(name, dtype=pl.String),
                                        _row=pl.int_range(checked.height, dtype=pl.Int64)))
    return _concat(out, "gold")


def _check_gold_ids(gold: pl.DataFrame, cands: pl.DataFrame, paths: list, read: dict, engine: Any) -> None:
    """Refuse an id that names different texts in gold and the candidates (their texts read on the workers)."""
    import ray

    from synthfilter.errors import SchemaError

    shared = gold.filter(pl.col("id").is_in(cands.get_column("id").implode()))
    if shared.height == 0:
        return
    ids = shared.get_column("id").to_list()
    task = ray.remote(num_cpus=0.5)(_texts_of)
    with engine.errors():
        found = pl.concat(ray.get([task.remote(str(p), ids, **read) for p in paths]))
    clash = shared.join(found, on="id", suffix="_cand").filter(pl.col("text") != pl.col("text_cand")).sort("id")
    if clash.height:
        row = clash.row(0, named=True)
        raise SchemaError(
            f"id '{row['id']}' names different texts in the candidates and {row['_input']}"
            f"{f' ({clash.height - 1} more ids clash)' if clash.height > 1 else ''}; ids must be unique "
            "across candidate and gold files: give distinct id columns (e.g. prefix them per file)"
        )


def _gold_tails(scores: Any, cands: pl.DataFrame, gold: pl.DataFrame, engine: Any, read: dict, *, encoder: str,
                k: int, dup_threshold: float, text_dup_threshold: float | None, seed: int, batch_size: int) -> Any:
    """Gold and the candidates' texts embedded on the workers; the tails that involve gold, shard by shard."""
    from synthfilter.encoders import get_encoder
    from synthfilter.rebuild.sharded_joint import sharded_gold_tails
    from synthfilter.shards import ShardSource
    from synthfilter.stages import EncodeStage, SketchStage

    if "dup_cluster" not in cands.columns or cands.get_column("dup_cluster").null_count():
        raise ConfigError(f"{scores}: --gold with --engine ray needs the candidates' dup_cluster; score them with "
                          "`synthfilter score --engine ray --keep text` (tails on)")
    encoder_id = get_encoder(encoder).id
    source = ShardSource.of(scores, text_column=read["text_column"], id_column=read["id_column"],
                            max_text_chars=read["max_text_chars"], source=str(scores))
    records = engine.map_records(source, [EncodeStage(encoder, batch_size=batch_size),
                                          SketchStage(text_dup_threshold)])
    if records.frame.get_column("id").to_list() != cands.get_column("id").to_list():  # pragma: no cover - a bug
        raise RuntimeError("internal error: the candidates' order differs between two reads")
    gold_texts = gold.get_column("text").to_list()
    gold_records = engine.map_records(ShardSource.of(gold.select("id", "text"), source="gold"),
                                      [EncodeStage(encoder, batch_size=batch_size)])
    gold_x = np.asarray(gold_records.columns["embedding"], dtype=np.float32)  # gold is small: gathered here
    return sharded_gold_tails(records, cands.get_column("dup_cluster").to_numpy(), gold_texts, gold_x, k=k,
                              dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, seed=seed,
                              encoder_id=encoder_id)


def _gold_rows(gold: pl.DataFrame) -> pl.DataFrame:
    from synthfilter.rebuild.policy import GOLD

    return gold.drop([c for c in SCORE_COLUMNS if c in gold.columns]).with_columns(
        origin=pl.lit(GOLD, dtype=pl.String), reason=pl.lit(GOLD, dtype=pl.String),
        p_synthetic=pl.lit(None, dtype=pl.Float64), rarity=pl.lit(None, dtype=pl.Float64))


def _training_template(gold: pl.DataFrame, cand_schema: pl.DataFrame) -> pl.DataFrame:
    """The training set's columns and types, empty: gold's rows then the candidates', as the local concat makes them."""
    cand = cand_schema.drop([c for c in SCORE_COLUMNS if c in cand_schema.columns]).with_columns(
        _input=pl.lit(None, dtype=pl.String), _row=pl.lit(None, dtype=pl.Int64),
        origin=pl.lit(None, dtype=pl.String), reason=pl.lit(None, dtype=pl.String),
        p_synthetic=pl.lit(None, dtype=pl.Float64), rarity=pl.lit(None, dtype=pl.Float64))
    return pl.concat([_gold_rows(gold).clear(), cand], how="diagonal_relaxed").drop("_input", "_row").clear()


def _gold_training(gold: pl.DataFrame, template: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([template, _gold_rows(gold).drop("_input", "_row")], how="diagonal_relaxed")
