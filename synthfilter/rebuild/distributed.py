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
from synthfilter.rebuild.pipeline import SCORE_COLUMNS, RebuildResult, _load_scorer
from synthfilter.rebuild.policy import RebuildPolicy
from synthfilter.rebuild.selection import select
from synthfilter.share import ShareCalibration
from synthfilter.shards import read_shard, resolve_shards

DECISIONS_NAME = "_decisions.parquet"
MANIFEST_NAME = "_manifest.json"
#: Columns the selection may read.
SELECTION_COLUMNS = ("id", "p_synthetic", "synthetic_score", "rarity", "dup_cluster")


def _small_columns(path: str, text_column: str, id_column: str | None, max_text_chars: int,
                   group_column: str | None) -> pl.DataFrame:
    """On a worker: read one shard, validate it, return only what the selection needs."""
    frame, _ = read_shard(path, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    cols = [c for c in SELECTION_COLUMNS if c in frame.columns]
    if group_column is not None:
        document_ids(frame, group_column, path)
        cols.append(group_column)
    return frame.select(cols)


def _write_training(path: str, out: str, text_column: str, id_column: str | None, max_text_chars: int,
                    kept: np.ndarray, reason: list, p: np.ndarray, rarity: np.ndarray) -> str:
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
    timings: dict[str, float] = {}
    read = {"text_column": text_column, "id_column": id_column, "max_text_chars": max_text_chars}

    start = time.perf_counter()
    small_task = ray.remote(num_cpus=0.5)(_small_columns)
    with engine.errors():
        smalls = ray.get([small_task.remote(str(p), **read, group_column=group_column) for p in paths])
    timings["read_columns"] = time.perf_counter() - start
    try:
        cands = pl.concat(smalls, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"{scores}: shards have incompatible columns ({str(exc).splitlines()[0][:120]})") from None
    if "p_synthetic" not in cands.columns:
        raise ConfigError(f"{scores}: no column 'p_synthetic'; score the shards first with "
                          "`synthfilter score --engine ray --keep text`")
    if cands.get_column("id").is_duplicated().any():
        raise ConfigError(f"{scores}: ids repeat across shards; make ids unique across the corpus")
    groups = None if group_column is None else cands.get_column(group_column).cast(pl.String).to_list()
    scorer = _load_scorer(model, trusted)
    if calibration is None and scorer is not None:
        calibration = scorer.share_calibration_
    start = time.perf_counter()
    selection = select(cands.select([c for c in SELECTION_COLUMNS if c in cands.columns]), None, policy,
                       calibration=calibration, groups=groups)
    timings["select"] = time.perf_counter() - start
    decisions = selection.decisions.with_columns(input=pl.lit(str(scores), dtype=pl.String),
                                                 row=pl.int_range(cands.height, dtype=pl.Int64))
    decisions = decisions.select("input", "row", *[c for c in selection.decisions.columns if c != "row"])

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        start = time.perf_counter()
        write_task = ray.remote(num_cpus=0.5)(_write_training)
        offset, refs, names = 0, [], []
        for i, (path, small) in enumerate(zip(paths, smalls)):
            part = decisions.slice(offset, small.height)
            offset += small.height
            name = f"part-{i:05d}.parquet"
            names.append(name)
            refs.append(write_task.remote(str(path), str(tmp / name), **read,
                                          kept=part.get_column("kept").to_numpy(),
                                          reason=part.get_column("reason").to_list(),
                                          p=part.get_column("p_synthetic").to_numpy(),
                                          rarity=part.get_column("rarity").to_numpy()))
        with engine.errors():
            ray.get(refs)
        timings["write_training"] = time.perf_counter() - start
        decisions.write_parquet(tmp / DECISIONS_NAME)
        manifest = _manifest(paths, tmp, names, selection, policy, scorer, engine, timings, parameters or {},
                             out)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = {"model": getattr(scorer, "model_id_", None), "engine": "ray", "engine_info": engine.describe(),
            "tails": {"computed": "from-scores"}, "timings_s": {k: round(v, 3) for k, v in timings.items()}}
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
