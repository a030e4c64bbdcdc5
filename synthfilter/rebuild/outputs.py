"""Writing a rebuild's files: all or nothing, never over an input, gold checked.

The training set, the decisions and the manifest are each written to a
temporary file beside their target; the gold files' SHA-256 are compared with
their values from before reading; only then are the three committed as one
(:class:`synthfilter.atomic.OutputSet`): the old training set is removed, the
decisions and the manifest are renamed into place, and the training set last,
so a training set is never found beside a manifest that is not its own. Any
exception or interrupt before the commit removes the temporary files and
leaves every existing file as it was; a kill during the renames is completed
by the next run writing into that folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from synthfilter.errors import OutputError
from synthfilter.atomic import OutputSet
from synthfilter.io import check_output_path
from synthfilter.provenance import (
    build_manifest,
    describe_inputs,
    file_sha256,
)
from synthfilter.rebuild.pipeline import RebuildResult

_PARQUET_SUFFIXES = (".parquet", ".pq")


def default_paths(output: str | Path) -> tuple[Path, Path]:
    """``train.parquet`` -> (``train.decisions.parquet``, ``train.manifest.json``) beside it."""
    output = Path(output)
    stem = output.name
    for ext in _PARQUET_SUFFIXES:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return output.with_name(stem + ".decisions.parquet"), output.with_name(stem + ".manifest.json")


def check_output_paths(
    output: str | Path,
    decisions: str | Path | None = None,
    manifest: str | Path | None = None,
    inputs: Sequence[str | Path] = (),
) -> tuple[Path, Path, Path]:
    """Resolve the three output paths and refuse any that is an input, a folder or a clash.

    Raises
    ------
    OutputError
        If an output would overwrite an input or another output, is not a
        ``.parquet`` file where one is needed, or cannot be written.
    """
    output = Path(output)
    if output.suffix.lower() not in _PARQUET_SUFFIXES:
        raise OutputError(f"{output}: the training set is written as Parquet; give -o a .parquet path")
    dflt_dec, dflt_man = default_paths(output)
    decisions = Path(decisions) if decisions is not None else dflt_dec
    manifest = Path(manifest) if manifest is not None else dflt_man
    paths = (output, decisions, manifest)
    if len({p.resolve() for p in paths}) != 3:
        raise OutputError(
            f"{output}, {decisions} and {manifest} must be three different files; change --decisions or --manifest"
        )
    for path in paths:
        check_output_path(path, inputs)
    return output, decisions, manifest


def _write_parquet(df: pl.DataFrame, path: Path) -> None:
    # Same settings as synthfilter.io.atomic_write_parquet: deterministic bytes.
    df.write_parquet(path, compression="zstd", statistics=False)


def _describe(path: Path, final: Path) -> dict[str, Any]:
    return {"path": str(final), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _check_gold(before: Mapping[str, str], when: str) -> dict[str, str]:
    after = {}
    for path, digest in before.items():
        try:
            now = file_sha256(path)
        except OSError as exc:
            raise OutputError(f"{path}: gold file became unreadable {when} ({exc.strerror}); nothing was written") from None
        if now != digest:
            raise OutputError(
                f"{path}: gold file changed during the run (sha256 {digest[:12]}… before reading, {now[:12]}… "
                f"{when}); nothing was written; re-run on a stable copy"
            )
        after[path] = now
    return after


def build_rebuild_manifest(
    result: RebuildResult,
    *,
    candidate_paths: Sequence[str | Path] = (),
    gold_paths: Sequence[str | Path] = (),
    gold_sha256: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest body of a rebuild (without the outputs section)."""
    sel = result.selection
    inputs = describe_inputs([*candidate_paths, *gold_paths])
    roles = ["candidate"] * len(candidate_paths) + ["gold"] * len(gold_paths)
    for entry, role in zip(inputs, roles):
        entry["role"] = role
    params = {**result.policy.to_dict(), **dict(parameters or {})}
    manifest = build_manifest(
        "rebuild",
        parameters=params,
        policy=result.policy.to_dict(),
        seed=result.policy.seed,
        model={"id": result.info.get("model"), "calibration": result.info.get("calibration")},
        encoder={"id": result.info.get("encoder")},
        counts=sel.counts,
        synthetic_share={
            "candidates": sel.candidate_share.to_dict(),
            "output": sel.output_share.to_dict(),
            "prior_used": round(sel.prior, 6),
            "note": "output share is the expectation under the detector's calibrated, prior-adjusted "
            "probabilities (gold counts 0); it is as good as the detector",
        },
        limits=sel.limits,
        tails=result.info.get("tails"),
        timings_s=result.info.get("timings_s"),
    )
    manifest["inputs"] = inputs
    if "share_check" in result.info:
        manifest["synthetic_share"]["check"] = result.info["share_check"]
    if "scored_raw" in result.info:
        manifest["scored_raw"] = result.info["scored_raw"]
    if gold_sha256 is not None:
        manifest["gold_integrity"] = {
            "checked": "sha256 of each gold file before reading and after writing the outputs",
            "files": [{"path": str(p), "sha256": d} for p, d in gold_sha256.items()],
            "unchanged": True,
        }
    return manifest


def write_rebuild(
    result: RebuildResult,
    output: str | Path,
    *,
    decisions: str | Path | None = None,
    manifest: str | Path | None = None,
    candidate_paths: Sequence[str | Path] = (),
    gold_paths: Sequence[str | Path] = (),
    gold_sha256: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the training set, the decisions and the manifest, all or nothing.

    Parameters
    ----------
    result : RebuildResult
        What :func:`synthfilter.rebuild.rebuild` returned.
    output : str or Path
        The training set (``.parquet``).
    decisions, manifest : str or Path, optional
        Defaults: ``<stem>.decisions.parquet`` and ``<stem>.manifest.json``
        beside ``output``.
    candidate_paths, gold_paths : sequence of path
        The input files (hashed into the manifest; never overwritten).
    gold_sha256 : mapping of path to hex digest, optional
        Each gold file's SHA-256 taken *before it was read*; checked again
        after the outputs are written. Computed now when not given.
    parameters : mapping, optional
        Further run parameters for the manifest (encoder, k, ...).

    Returns
    -------
    dict
        The manifest written.

    Raises
    ------
    OutputError
        If an output would overwrite an input, or a gold file changed during
        the run (then nothing is left written).
    """
    inputs = [*candidate_paths, *gold_paths]
    output, decisions, manifest_path = check_output_paths(output, decisions, manifest, inputs)
    if gold_sha256 is None:
        gold_sha256 = {str(p): file_sha256(p) for p in gold_paths}
    gold_sha256 = {str(p): d for p, d in gold_sha256.items()}

    # One commit: the training set is the primary file, renamed last (see synthfilter.atomic.OutputSet).
    with OutputSet([output, decisions, manifest_path]) as staged:
        tmp_training, tmp_decisions = staged[output], staged[decisions]
        _write_parquet(result.training, tmp_training)
        _write_parquet(result.decisions, tmp_decisions)
        body = build_rebuild_manifest(
            result, candidate_paths=candidate_paths, gold_paths=gold_paths, gold_sha256=gold_sha256,
            parameters=parameters,
        )
        body["outputs"] = [
            {**_describe(tmp_training, output), "role": "training"},
            {**_describe(tmp_decisions, decisions), "role": "decisions"},
        ]
        _check_gold(gold_sha256, "after writing the outputs")
        staged[manifest_path].write_text(json.dumps(body, indent=2, sort_keys=False, default=str) + "\n",
                                         encoding="utf-8")
    # Renamed. A gold file that changed in the last instant invalidates the outputs.
    try:
        _check_gold(gold_sha256, "after writing the outputs")
    except OutputError:
        for path in (output, decisions, manifest_path):
            path.unlink(missing_ok=True)
        raise
    return body
