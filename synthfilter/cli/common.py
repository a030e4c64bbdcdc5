"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from synthfilter.encoders import ENCODER_NAMES

#: Messages and tables on stderr; in logs (not a terminal) lines are not wrapped at 80 columns.
console = Console(stderr=True, **({} if sys.stderr.isatty() else {"width": 200, "soft_wrap": True}))


def encoder_option(f: Callable) -> Callable:
    """``--encoder``: minilm (default), static, or a model folder."""
    return click.option(
        "--encoder", default="minilm", show_default=True,
        help=f"Embedding model: {' or '.join(ENCODER_NAMES)}, or a local sentence-transformers folder.",
    )(f)


def text_options(f: Callable) -> Callable:
    """``--text-column`` and ``--id-column``."""
    f = click.option("--id-column", default=None,
                     help="Column of record ids [default: 'id' if present, else a content hash].")(f)
    f = click.option("--text-column", default="text", show_default=True, help="Column holding the texts.")(f)
    return f


def duplicate_options(f: Callable) -> Callable:
    """``-k``, ``--dup-threshold`` and ``--text-dup-threshold`` (the tail stage's settings)."""
    f = click.option("--text-dup-threshold", default=0.8, show_default=True, type=click.FloatRange(0.0, 1.0),
                     help="Character-shingle Jaccard similarity at which two texts are near-duplicates "
                          "(catches small edits embeddings miss); 0 turns it off.")(f)
    f = click.option("--dup-threshold", default=0.95, show_default=True, type=click.FloatRange(0.0, 1.0),
                     help="Cosine similarity at which two records are near-duplicates.")(f)
    f = click.option("-k", "--neighbours", "k", default=10, show_default=True, type=click.IntRange(1, 1000),
                     help="Neighbours for rarity and near-duplicates.")(f)
    return f


def parse_text_dup_threshold(value: float) -> float | None:
    """Map ``--text-dup-threshold`` to the API's value (0 = off = ``None``)."""
    return value if value > 0 else None


def seed_option(f: Callable) -> Callable:
    """``--seed``."""
    return click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random choice.")(f)


def model_options(f: Callable) -> Callable:
    """``--model`` and ``--trusted-model``."""
    f = click.option("--trusted-model", is_flag=True,
                     help="Allow a pickle/joblib --model file (it can run code when loaded).")(f)
    f = click.option("--model", "model", default="default", show_default=True,
                     help="Origin detector folder; 'default' is the shipped model, 'none' skips p_synthetic.")(f)
    return f


def parse_model(value: str) -> Any:
    """Map the ``--model`` string to what :func:`synthfilter.score` takes."""
    return None if value.lower() == "none" else value


def default_output(input_path: Path, suffix: str) -> Path:
    """``corpus.parquet`` -> ``corpus<suffix>`` beside it."""
    name = input_path.name
    for ext in (".parquet", ".pq", ".jsonl", ".ndjson", ".csv"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return input_path.with_name(name + suffix)


def manifest_path_for(output: Path) -> Path:
    """``x.parquet`` -> ``x.manifest.json``."""
    return output.with_name(output.name.removesuffix(".parquet") + ".manifest.json")
