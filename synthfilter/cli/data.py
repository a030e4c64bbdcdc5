"""``synthfilter data``: build the labelled origin corpus from the packaged sources."""

from __future__ import annotations

from pathlib import Path

import click

from synthfilter.cli.common import console, seed_option


@click.group("data")
def command() -> None:
    """Labelled corpora from the packaged real sources (ShareGPT, Brown, SpamAssassin, Gemma)."""


@command.command("build")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Parquet file to write.")
@click.option("--per-source", default=3000, show_default=True, type=click.IntRange(1),
              help="Records drawn per source at most.")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "calib", "test"]),
              help="Only these splits (repeatable) [default: all].")
@seed_option
def build(output: Path, per_source: int, splits: tuple[str, ...], seed: int) -> None:
    """Assemble a labelled corpus (id, text, label, source, group, split).

    Splits are by document/conversation, so no near-copy crosses train and test.
    Gemma continuations come from the generation cache (scripts/generate_gemma.py).
    """
    from synthfilter.data.corpus import build_corpus, write_corpus
    from synthfilter.io import check_output_path

    check_output_path(output)
    corpus = build_corpus(per_source=per_source, seed=seed, splits=splits or None)
    write_corpus(corpus, output)
    counts = corpus.group_by("source", "split").len().sort("source", "split")
    console.print(counts)
    console.print(f"wrote {corpus.height:,} records to {output}")
