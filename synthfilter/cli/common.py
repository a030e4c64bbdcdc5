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


def _has_option(f: Callable, name: str) -> bool:
    return any(name in getattr(p, "opts", ()) for p in getattr(f, "__click_params__", ()))


def _set_verify(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    from synthfilter.cache import set_verify

    set_verify(value)
    return value


def _set_trusted_encoder(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    from synthfilter.encoders import trust_pickled_encoders

    trust_pickled_encoders(value)
    return value


def verify_option(f: Callable) -> Callable:
    """``--verify``: re-hash model and encoder weights even if unchanged since the last run.

    Added by :func:`model_options` and :func:`encoder_option` (once per
    command); it sets :func:`synthfilter.cache.set_verify` and passes no
    argument to the command.
    """
    if _has_option(f, "--verify"):
        return f
    return click.option(
        "--verify", is_flag=True, expose_value=False, is_eager=True, callback=_set_verify,
        help="Re-hash the model and encoder weights even if their size and modification time are unchanged "
             "since a previous run hashed them.",
    )(f)


def encoder_options(default: str | None = "minilm", note: str = "") -> Callable[[Callable], Callable]:
    """``--encoder`` (minilm, static, or a model folder), ``--trusted-encoder`` and ``--verify``.

    ``default=None`` leaves the choice to the command (``note`` says how, in ``--help``).
    """

    def decorate(f: Callable) -> Callable:
        f = verify_option(f)
        f = click.option(
            "--trusted-encoder", is_flag=True, expose_value=False, is_eager=True, callback=_set_trusted_encoder,
            help="Allow an --encoder folder whose weights are a pickle (pytorch_model.bin can run code when loaded).",
        )(f)
        return click.option(
            "--encoder", default=default, show_default=default is not None,
            help=f"Embedding model: {' or '.join(ENCODER_NAMES)}, or a local sentence-transformers folder.{note}",
        )(f)

    return decorate


encoder_option = encoder_options()


def _check_batch_size(ctx: click.Context, param: click.Parameter, value: int) -> int:
    from synthfilter.encoders import check_batch_size

    return check_batch_size(value)


def batch_size_option(default: int = 32) -> Callable[[Callable], Callable]:
    """``--batch-size``: encoding batch size; 0 or less stops with a one-line error before any work."""
    return click.option("--batch-size", default=default, show_default=True, type=int, callback=_check_batch_size,
                        help="Encoding batch size (a positive integer).")


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


def engine_options(f: Callable) -> Callable:
    """``--engine`` and ``--ray-address``."""
    f = click.option("--ray-address", default=None,
                     help="Ray cluster to join with --engine ray ('auto': the one `ray start` began); "
                          "a local one is started when left out.")(f)
    f = click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="Run in this process, or on a Ray cluster (needs: pip install 'synthfilter[ray]'); "
                          "ray reads and writes folders of shards.")(f)
    return f


def parse_text_dup_threshold(value: float) -> float | None:
    """Map ``--text-dup-threshold`` to the API's value (0 = off = ``None``)."""
    return value if value > 0 else None


def seed_option(f: Callable) -> Callable:
    """``--seed``."""
    return click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random choice.")(f)


def model_options(f: Callable) -> Callable:
    """``--model``, ``--trusted-model`` and ``--verify``."""
    f = verify_option(f)
    f = click.option("--trusted-model", is_flag=True,
                     help="Allow a pickle/joblib --model file (it can run code when loaded).")(f)
    f = click.option("--model", "model", default="default", show_default=True,
                     help="Origin detector folder; 'default' is the shipped model, 'none' skips p_synthetic.")(f)
    return f


def share_correction_option(gold_flag: str) -> Callable[[Callable], Callable]:
    """``--share-correction``; ``gold_flag`` names the command's gold option (``--reference``, ``--gold``)."""
    return click.option(
        "--share-correction", type=click.Choice(["auto", "calibration-split", "gold-human", "gold-mixture"]),
        default="auto", show_default=True,
        help=f"How the synthetic-share estimate is corrected. calibration-split: what human and machine text "
             f"score, from the detector's held-out data. gold-human: what human text scores from {gold_flag} (human "
             f"text of the corpus's domain), machine text from the held-out data; reads low for a generator the "
             f"detector never saw. gold-mixture: the share as a mixture proportion against {gold_flag}, no machine "
             f"side; assumes machine text is rare among the most human-looking scores (reads low where it is not) "
             f"and reads high by a few points at low shares with small samples. auto: gold-human with {gold_flag} of "
             f"20 records or more, else calibration-split. The gold ones need {gold_flag} (20 records or more).")


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
