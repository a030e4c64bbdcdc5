"""Command-line entry point: ``python -m synthfilter.data.build --out PATH``.

Builds the origin corpus with :func:`synthfilter.data.corpus.build_corpus`,
writes it with :func:`synthfilter.data.corpus.write_corpus` (plus a
``PATH.manifest.json`` with the source provenance) and prints the record
counts per source and split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from synthfilter.data.corpus import (
    CORPUS_COLUMNS,
    SPLITS,
    build_corpus,
    describe_sources,
    write_corpus,
)
from synthfilter.data.schema import SOURCES
from synthfilter.errors import SynthfilterError
from synthfilter.provenance import build_manifest, write_manifest

__all__ = ["counts_table", "main"]

#: Columns kept with ``--minimal``.
MINIMAL_COLUMNS: tuple[str, ...] = ("id", "text", "label", "source", "group", "split")


def counts_table(corpus: pl.DataFrame) -> pl.DataFrame:
    """Records per source (rows) and split (columns), with totals.

    Parameters
    ----------
    corpus : polars.DataFrame
        A corpus with ``source`` and ``split`` columns.

    Returns
    -------
    polars.DataFrame
    """
    counts = corpus.group_by("source", "split").len()
    table = pl.DataFrame({"source": [s for s in SOURCES if s in set(corpus["source"])]})
    for split in SPLITS:
        part = counts.filter(pl.col("split") == split).select("source", pl.col("len").alias(split))
        table = table.join(part, on="source", how="left")
    table = table.with_columns(pl.col(list(SPLITS)).fill_null(0).cast(pl.Int64))
    return table.with_columns(pl.sum_horizontal(list(SPLITS)).alias("total"))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build and write the corpus; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m synthfilter.data.build", description="Build the labelled origin corpus."
    )
    parser.add_argument("--out", type=Path, required=True, help="output Parquet file")
    parser.add_argument("--per-source", type=int, default=3000, help="records per source at most (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-source draw (default 0)")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache root (default $SYNTHFILTER_CACHE or ~/.cache/synthfilter)"
    )
    parser.add_argument(
        "--gemma-path",
        type=Path,
        default=None,
        help="Gemma generation cache (default <cache>/gemma/continuations.jsonl)",
    )
    parser.add_argument("--gemma-prompts", type=int, default=None,
                        help="use the Gemma continuations of the first N seeded prompts only (default: all cached)")
    parser.add_argument("--smollm2-prompts", type=int, default=None,
                        help="use the SmolLM2 generations of the first N seeded prompts only (default: all cached)")
    parser.add_argument("--split", action="append", choices=SPLITS, help="draw only from this split (repeatable)")
    parser.add_argument("--source", action="append", choices=SOURCES, help="include only this source (repeatable)")
    parser.add_argument(
        "--no-manifest", dest="manifest", action="store_false", help="do not write PATH.manifest.json beside the corpus"
    )
    parser.add_argument("--minimal", action="store_true", help=f"keep only the columns {', '.join(MINIMAL_COLUMNS)}")
    args = parser.parse_args(argv)
    try:
        corpus = build_corpus(
            args.per_source,
            args.seed,
            args.cache_dir,
            sources=args.source or SOURCES,
            splits=args.split,
            gemma_path=args.gemma_path,
            gemma_prompts=args.gemma_prompts,
            smollm2_prompts=args.smollm2_prompts,
        )
        corpus = corpus.select(MINIMAL_COLUMNS if args.minimal else CORPUS_COLUMNS)
        write_corpus(corpus, args.out)
        if args.manifest:
            parameters = {
                "per_source": args.per_source,
                "seed": args.seed,
                "splits": args.split,
                "sources": args.source,
                "minimal": args.minimal,
                "gemma_prompts": args.gemma_prompts,
                "smollm2_prompts": args.smollm2_prompts,
            }
            manifest = build_manifest(
                "data build",
                outputs=[args.out],
                parameters=parameters,
                sources=describe_sources(args.cache_dir, args.gemma_path),
                counts=counts_table(corpus).to_dicts(),
            )
            write_manifest(args.out.with_name(args.out.name + ".manifest.json"), manifest)
    except SynthfilterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    with pl.Config(tbl_rows=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        print(counts_table(corpus))
    print(f"wrote {corpus.height} records to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
