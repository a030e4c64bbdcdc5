"""``synthfilter score``: score every record of a corpus."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import polars as pl
from rich.table import Table

from synthfilter.cli.common import (
    batch_size_option,
    console,
    default_output,
    duplicate_options,
    encoder_option,
    engine_options,
    manifest_path_for,
    model_options,
    parse_model,
    parse_text_dup_threshold,
    seed_option,
    share_correction_option,
    text_options,
)
from synthfilter.atomic import OutputSet
from synthfilter.io import (
    DEFAULT_MAX_TEXT_CHARS,
    check_output_path,
    read_corpus,
)
from synthfilter.errors import ConfigError, OutputError, SchemaError
from synthfilter.provenance import build_manifest, describe_inputs, file_sha256
from synthfilter.scoring import score_with_report
from synthfilter.shards import MANIFEST_NAME, is_sharded, read_sharded, resolve_shards, write_score_shards
from synthfilter.stages.share import check_share_correction


@click.command("score")
@click.argument("corpus", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Scores file [default: CORPUS with .scores.parquet]; with --engine ray, a folder of "
                   "shards [default: CORPUS with .scores].")
@text_options
@click.option("--keep", "keep", multiple=True,
              help="Input column to copy into the scores file (repeatable), e.g. --keep text.")
@click.option("--group-column", default=None,
              help="Column naming each record's document (a URL, a conversation id): the synthetic share's "
                   "interval then resamples whole documents, as it should when records are paragraphs.")
@encoder_option
@model_options
@click.option("--reference", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Gold human reference: rarity is measured against it instead of the corpus, and (20 records "
                   "or more) the share correction takes what human text scores from it.")
@click.option("--reference-text-column", default="text", show_default=True)
@share_correction_option("--reference")
@duplicate_options
@click.option("--index", type=click.Choice(["auto", "flat", "ivf", "hnsw"]), default="auto", show_default=True,
              help="FAISS index: exact, IVF, HNSW, or exact below 200,000 records and HNSW from there "
                   "(search effort raised until recall@k >= 0.95 on a sample; the manifest reports it).")
@click.option("--max-text-chars", default=DEFAULT_MAX_TEXT_CHARS, show_default=True, type=click.IntRange(1),
              help="Longest text accepted.")
@batch_size_option()
@seed_option
@engine_options
@click.option("--recompute", is_flag=True,
              help="Compute every score again even when an identical earlier run (same texts, encoder, detector, "
                   "options and seed) is cached; the embeddings, detector scores and sketches of texts seen "
                   "before are still taken from their caches.")
@click.option("--detector", type=click.Choice(["fast", "cascade", "full"]), default="fast", show_default=True,
              help="fast: the origin detector alone. cascade: records whose fast p_synthetic is in the cascade's "
                   "uncertain band are re-scored with the LM feature block (SmolLM2-135M; the lm extra; ~0.7 s per "
                   "record sent); full: every record. The manifest gives the share sent to the LM.")
@click.option("--cascade-model", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Cascade model folder for --detector cascade|full [default: the shipped origin-cascade-v2].")
@click.option("--quiet", is_flag=True, help="No progress bars or summary.")
def command(corpus: Path, output: Path | None, text_column: str, id_column: str | None, keep: tuple[str, ...],
            group_column: str | None, encoder: str, model: str, trusted_model: bool, reference: Path | None,
            reference_text_column: str, share_correction: str,
            k: int, dup_threshold: float, text_dup_threshold: float, index: str, max_text_chars: int,
            batch_size: int, seed: int, engine: str, ray_address: str | None, recompute: bool,
            detector: str, cascade_model: Path | None, quiet: bool) -> None:
    """Score CORPUS (Parquet, JSONL or CSV) record by record.

    Adds p_synthetic (calibrated probability of model origin), knn_distance,
    rarity (0-1, 1 = rarest), dup_cluster and is_near_duplicate, and reports the
    corpus's estimated synthetic share with a 95% interval. Writes
    CORPUS.scores.parquet and CORPUS.scores.manifest.json; never touches CORPUS.

    With --engine ray the per-record stages run on a Ray cluster and the
    scores are written as a folder of Parquet shards (one per input shard)
    with one manifest.json.

    Re-running on an unchanged corpus with the same settings reuses the
    earlier run's scores (local engine; the manifest names the run under
    reused_run); texts seen before are never encoded, scored or sketched
    again. --recompute forces a fresh computation of the scores.

    \b
    Example:
      synthfilter score examples/mixed_corpus.parquet --keep text
      synthfilter score shards/ --engine ray --ray-address auto -o scores/
    """
    if detector != "fast" and engine == "ray":
        raise ConfigError(f"--detector {detector} runs on the local engine; drop --engine ray or use --detector fast")
    if cascade_model is not None and detector == "fast":
        raise ConfigError("--cascade-model needs --detector cascade or full")
    if engine == "ray":
        _score_sharded(corpus, output, text_column=text_column, id_column=id_column, keep=keep,
                       group_column=group_column, encoder=encoder, model=model, trusted_model=trusted_model,
                       reference=reference, reference_text_column=reference_text_column, k=k,
                       dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, index=index,
                       max_text_chars=max_text_chars, batch_size=batch_size, seed=seed, ray_address=ray_address,
                       quiet=quiet, share_correction=share_correction)
        return
    if ray_address is not None:
        raise ConfigError("--ray-address needs --engine ray")
    if parse_model(model) is not None:  # no reference for a gold correction: say so before any work
        check_share_correction(share_correction, None if reference is None else -1)
    output = output or default_output(corpus, ".scores.parquet")
    inputs = (resolve_shards(corpus) if is_sharded(corpus) else [corpus]) + ([reference] if reference else [])
    check_output_path(output, inputs)
    manifest_path = manifest_path_for(output)
    check_output_path(manifest_path, inputs)

    if output.suffix.lower() not in (".parquet", ".pq"):
        raise OutputError(f"{output}: scores are written as Parquet; give -o a .parquet path")

    # Everything that can be checked is checked before the expensive encoding.
    detection_mode = detector
    detector = parse_model(model)
    if detector is not None:
        from synthfilter.origin import load_model

        detector = load_model(None if detector == "default" else detector, trusted=trusted_model)
    cascade = None
    if detection_mode != "fast":
        if detector is None:
            raise ConfigError(f"--detector {detection_mode} needs the origin detector; drop --model none")
        from synthfilter.cascade import load_cascade, require_lm

        require_lm(f"--detector {detection_mode} (the LM feature block)")
        cascade = load_cascade(cascade_model, fast_model=detector, mode=detection_mode)
    if is_sharded(corpus):
        frame = read_sharded(corpus, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    else:
        frame = read_corpus(corpus, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    keep_cols = ["text" if c == text_column else c for c in keep]
    missing = [c for c in keep if ("text" if c == text_column else c) not in frame.columns]
    if missing:
        raise SchemaError(f"{corpus}: no column(s) {', '.join(repr(c) for c in missing)} to --keep "
                          f"(columns: {', '.join(frame.columns[:12])})")
    ref_frame = None
    if reference is not None:
        ref_frame = read_corpus(reference, text_column=reference_text_column, max_text_chars=max_text_chars)
    result = score_with_report(
        frame, keep_columns=keep_cols, group_column=group_column, encoder=encoder, model=detector,
        trusted=trusted_model,
        reference=ref_frame, k=k, dup_threshold=dup_threshold,
        text_dup_threshold=parse_text_dup_threshold(text_dup_threshold), index=index, seed=seed,
        batch_size=batch_size, max_text_chars=max_text_chars, show_progress=not quiet, source=str(corpus),
        reuse=not recompute, detector=detection_mode, cascade=cascade, share_correction=share_correction,
    )
    params = {"text_column": text_column, "id_column": id_column, "keep": list(keep),
              "group_column": group_column, "encoder": encoder,
              "model": model, "reference": str(reference) if reference else None, "k": k,
              "dup_threshold": dup_threshold, "text_dup_threshold": text_dup_threshold, "index": index,
              "seed": seed, "max_text_chars": max_text_chars, "detector": detection_mode,
              "cascade_model": str(cascade_model) if cascade_model else None, "share_correction": share_correction}
    counts = _counts(result.table)
    # The scores and their manifest are one commit: the scores file is renamed last.
    with OutputSet([output, manifest_path]) as staged:
        result.table.write_parquet(staged[output], compression="zstd", statistics=False)
        manifest = build_manifest("score", inputs=inputs, parameters=params, counts=counts, **result.info)
        manifest["outputs"] = [{"path": str(output), "bytes": staged[output].stat().st_size,
                                "sha256": file_sha256(staged[output])}]
        staged[manifest_path].write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    if not quiet:
        _print_summary(result.table, result.info, counts, output, manifest_path)


def _score_sharded(corpus: Path, output: Path | None, *, text_column: str, id_column: str | None,
                   keep: tuple[str, ...], group_column: str | None, encoder: str, model: str, trusted_model: bool,
                   reference: Path | None, reference_text_column: str, k: int, dup_threshold: float,
                   text_dup_threshold: float, index: str, max_text_chars: int, batch_size: int, seed: int,
                   ray_address: str | None, quiet: bool, share_correction: str = "auto") -> None:
    """``score --engine ray``: a folder of score shards and one manifest."""
    import json

    from synthfilter.engine import require_ray

    require_ray()
    shards = resolve_shards(corpus)
    base = corpus if not any(ch in str(corpus) for ch in "*?[") else Path(str(corpus).split("*")[0].rstrip("/") or ".")
    output = output or default_output(base, ".scores")
    if output.is_file():
        raise OutputError(f"{output}: is a file; --engine ray writes a folder of shards, give a folder with -o")
    inputs = shards + ([reference] if reference else [])
    out_resolved = output.resolve()
    if any(p.resolve().parent == out_resolved for p in inputs):
        raise OutputError(f"{output}: holds input shards; choose another folder with -o")
    ref = None
    if reference is not None:
        ref = reference
    keep_cols = ["text" if c == text_column else c for c in keep]
    result = score_with_report(
        corpus, text_column=text_column, id_column=id_column, keep_columns=keep_cols, group_column=group_column,
        encoder=encoder, model=parse_model(model), trusted=trusted_model, reference=ref,
        reference_text_column=reference_text_column, k=k, dup_threshold=dup_threshold,
        text_dup_threshold=parse_text_dup_threshold(text_dup_threshold), index=index, seed=seed,
        batch_size=batch_size, max_text_chars=max_text_chars, show_progress=False, source=str(corpus),
        engine="ray", ray_address=ray_address, share_correction=share_correction,
    )
    params = {"text_column": text_column, "id_column": id_column, "keep": list(keep),
              "group_column": group_column, "encoder": encoder, "model": model,
              "reference": str(reference) if reference else None, "k": k, "dup_threshold": dup_threshold,
              "text_dup_threshold": text_dup_threshold, "index": index, "seed": seed,
              "max_text_chars": max_text_chars, "engine": "ray", "ray_address": ray_address,
              "share_correction": share_correction}
    table = result.table
    counts = _counts(table)
    names = [f"part-{i:05d}.parquet" for i in range(len(shards))]

    def manifest(final: list[Path], written: list[Path]) -> str:
        doc = build_manifest("score", inputs=inputs, outputs=[], parameters=params, counts=counts, **result.info)
        described = describe_inputs(written)
        for entry, path in zip(described, final):
            entry["path"] = str(path)
        doc["outputs"] = described
        return json.dumps(doc, indent=2, default=str) + "\n"

    write_score_shards(table, names, output, manifest)
    if not quiet:
        _print_summary(table.drop("shard"), result.info, counts, output, output / MANIFEST_NAME)


def _counts(table: pl.DataFrame) -> dict:
    counts = {
        "records": table.height,
        "near_duplicates": int(table["is_near_duplicate"].sum()),
        "duplicate_clusters": int(table.filter(pl.col("dup_cluster").is_duplicated())["dup_cluster"].n_unique()),
    }
    if "p_synthetic" in table.columns:
        counts["p_synthetic_ge_0.5"] = int((table["p_synthetic"] >= 0.5).sum())
    return counts


def _print_summary(table: pl.DataFrame, info: dict, counts: dict, output: Path, manifest: Path) -> None:
    summary = Table(title="synthfilter score", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("records", f"{counts['records']:,}")
    summary.add_row("near-duplicates", f"{counts['near_duplicates']:,} ({counts['near_duplicates'] / table.height:.1%}) "
                    f"in {counts['duplicate_clusters']:,} clusters")
    q = np.quantile(table["rarity"].to_numpy(), [0.1, 0.5, 0.9])
    summary.add_row(f"rarity (vs {info['tails']['rarity_against']})",
                    f"p10 {q[0]:.2f} · median {q[1]:.2f} · p90 {q[2]:.2f}; "
                    f"{int((table['rarity'] >= 0.95).sum()):,} records >= 0.95")
    index = info["tails"]["index"]
    if index.get("recall_at_k") is not None:
        summary.add_row("index", f"{index['kind'].upper()}, recall@k {index['recall_at_k']:.3f} vs exact "
                                 f"(n={index['recall_sample']})")
    if "origin" in info:
        share = info["origin"]["synthetic_share"]
        summary.add_row("synthetic share", f"{share['share']:.3f} (95% CI {share['low']:.3f}–{share['high']:.3f})")
        warning = info["origin"].get("share_check", {}).get("warning")
        if warning:
            summary.add_row("share check", f"[yellow]{warning}[/yellow]")
        summary.add_row("model", info["origin"]["model"])
        used = info["origin"].get("detector", {})
        if used.get("mode", "fast") != "fast":
            summary.add_row("detector", f"{used['mode']}: {used['model']}, LM {used['lm']}; "
                                        f"{used['lm_records']:,} records ({used['lm_fraction']:.1%}) sent to the LM")
        else:
            summary.add_row("detector", "fast")
    summary.add_row("encoder", info["encoder"])
    summary.add_row("wrote", f"{output}\n{manifest}")
    console.print(summary)
