"""``synthfilter data``: build the labelled origin corpus from the packaged sources."""

from __future__ import annotations

from pathlib import Path

import click

from synthfilter.cli.common import console, seed_option


@click.group("data")
def command() -> None:
    """Labelled corpora from the packaged real sources (ShareGPT, Brown, SpamAssassin, Gemma, SmolLM2)."""


@command.command("build")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Parquet file to write.")
@click.option("--per-source", default=3000, show_default=True, type=click.IntRange(1),
              help="Records drawn per source at most.")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "calib", "test"]),
              help="Only these splits (repeatable) [default: all].")
@click.option("--gemma-prompts", type=click.IntRange(1), default=None,
              help="Only the Gemma continuations of the first N seeded prompts (origin-v4: 942) [default: all "
                   "cached].")
@click.option("--smollm2-prompts", type=click.IntRange(1), default=None,
              help="Only the SmolLM2 generations of the first N seeded prompts (origin-v4: 1500) [default: all "
                   "cached].")
@seed_option
def build(output: Path, per_source: int, splits: tuple[str, ...], gemma_prompts: int | None,
          smollm2_prompts: int | None, seed: int) -> None:
    """Assemble a labelled corpus (id, text, label, source, group, split).

    Splits are by document/conversation, so no near-copy crosses train and test.
    Gemma and SmolLM2 text comes from their generation caches (scripts/generate_gemma.py,
    scripts/generate_smollm2.py; `make model` makes both).
    """
    from synthfilter.data.corpus import build_corpus, write_corpus
    from synthfilter.io import check_output_path

    check_output_path(output)
    corpus = build_corpus(per_source=per_source, seed=seed, splits=splits or None, gemma_prompts=gemma_prompts,
                          smollm2_prompts=smollm2_prompts)
    write_corpus(corpus, output)
    counts = corpus.group_by("source", "split").len().sort("source", "split")
    console.print(counts)
    console.print(f"wrote {corpus.height:,} records to {output}")
