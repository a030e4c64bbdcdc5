"""Sharded corpora: a file, a glob or a folder of Parquet/JSONL shards, in and out.

A sharded corpus is read shard by shard (each one validated like a single
file, :func:`synthfilter.io.validate_corpus`); records keep their ids and,
within each shard, their order; shards come in sorted path order. Scores of a
sharded run are written as a folder of Parquet shards (one per input shard,
same order) with one ``manifest.json``, assembled in a temporary folder
beside the target and renamed into place once.
"""

from __future__ import annotations

import glob as globlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from synthfilter.atomic import replace_folder
from synthfilter.errors import ConfigError, InputError, OutputError, SchemaError, describe_rows
from synthfilter.io import (
    DEFAULT_MAX_TEXT_CHARS,
    ID_COLUMN,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    read_table,
    validate_corpus,
)

#: Shard suffixes looked for in a folder.
SHARD_SUFFIXES = tuple(PARQUET_SUFFIXES) + tuple(JSONL_SUFFIXES)
#: Name of the manifest inside a folder of score shards.
MANIFEST_NAME = "manifest.json"


def resolve_shards(corpus: str | os.PathLike) -> list[Path]:
    """The shard files of ``corpus``: itself (a file), its matches (a glob) or its Parquet/JSONL files (a folder).

    Raises
    ------
    InputError
        When nothing matches.
    """
    text = str(corpus)
    path = Path(text)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SHARD_SUFFIXES
                       and not p.name.startswith((".", "_")))
        if not found:
            raise InputError(f"{path}: no Parquet or JSONL shards in this folder; "
                             f"give a folder of {', '.join(SHARD_SUFFIXES)} files")
        return found
    if any(ch in text for ch in "*?["):
        found = sorted(Path(p) for p in globlib.glob(text) if Path(p).is_file())
        if not found:
            raise InputError(f"{text}: the pattern matches no file; check the path")
        return found
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder; check the path")
    return [path]


def is_sharded(corpus: str | os.PathLike) -> bool:
    """Whether ``corpus`` names a folder or a glob rather than one file."""
    text = str(corpus)
    return Path(text).is_dir() or any(ch in text for ch in "*?[")


def read_shard(path: str | os.PathLike, *, text_column: str = "text", id_column: str | None = None,
               max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> tuple[pl.DataFrame, bool]:
    """Read and validate one shard; also say whether its ids are content hashes."""
    df = read_table(path)
    content = id_column is None and (ID_COLUMN not in df.columns or text_column == ID_COLUMN)
    return validate_corpus(df, source=str(path), text_column=text_column, id_column=id_column,
                           max_text_chars=max_text_chars), content


def renumber_content_ids(ids: pl.Series) -> pl.Series:
    """Content ids made per shard (``sha256:x``, ``sha256:x-1``) renumbered over the whole corpus.

    The result equals :func:`synthfilter.io.content_ids` of the concatenated texts.
    """
    base = ids.str.replace(r"-\d+$", "")
    n = pl.DataFrame({"b": base}).select(pl.int_range(pl.len()).over("b")).to_series()
    return pl.Series(ID_COLUMN, [b + (f"-{k}" if k else "") for b, k in zip(base.to_list(), n.to_list())],
                     dtype=pl.String)


def check_unique_ids(ids: pl.Series, shard: pl.Series, row: pl.Series, paths: Sequence[Path]) -> None:
    """Raise :class:`SchemaError` when an id appears in two shards."""
    dup = ~ids.is_first_distinct()
    if dup.any():
        first = int(dup.arg_true()[0])
        s = int(shard[first])
        rows = [int(r) for r, d, sh in zip(row.to_list(), dup.to_list(), shard.to_list()) if d and sh == s]
        raise SchemaError(f"{paths[s]}: ids seen in an earlier shard at {describe_rows(rows)}; "
                          "make ids unique across the corpus, or leave out --id-column to use content hashes")


def read_sharded(corpus: str | os.PathLike, *, text_column: str = "text", id_column: str | None = None,
                 max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> pl.DataFrame:
    """Read every shard of ``corpus`` into one validated frame (for the local engine).

    Returns
    -------
    polars.DataFrame
        ``id``, ``text``, the other columns (shards concatenated, schemas
        relaxed), in shard order then row order.
    """
    paths = resolve_shards(corpus)
    frames, contents = [], []
    for path in paths:
        frame, content = read_shard(path, text_column=text_column, id_column=id_column,
                                    max_text_chars=max_text_chars)
        frames.append(frame)
        contents.append(content)
    if len(frames) == 1:
        return frames[0]
    try:
        table = pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(f"{corpus}: shards have incompatible columns ({str(exc).splitlines()[0][:160]}); "
                          "give shards with one schema") from None
    if all(contents):
        table = table.with_columns(renumber_content_ids(table.get_column(ID_COLUMN)))
    shard = pl.Series([i for i, f in enumerate(frames) for _ in range(f.height)])
    row = pl.Series([r for f in frames for r in range(f.height)])
    check_unique_ids(table.get_column(ID_COLUMN), shard, row, paths)
    return table


@dataclass
class ShardSource:
    """A corpus for an engine: shard files, or an in-memory frame.

    Attributes
    ----------
    paths : list of Path, optional
        Shard files, read by the workers.
    frame : polars.DataFrame, optional
        Records already in memory (validated here).
    text_column, id_column, max_text_chars, source
        How to read and name the records.
    """

    paths: list[Path] | None
    frame: pl.DataFrame | None
    text_column: str = "text"
    id_column: str | None = None
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    source: str = "<data>"

    @classmethod
    def of(cls, data: Any, *, text_column: str = "text", id_column: str | None = None,
           max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, source: str = "<data>") -> ShardSource:
        """Wrap a path (file, glob, folder), a list of paths, a frame or a list of texts."""
        if isinstance(data, (str, os.PathLike)):
            return cls(resolve_shards(data), None, text_column, id_column, max_text_chars, str(data))
        if isinstance(data, pl.DataFrame):
            frame = validate_corpus(data, source=source, text_column=text_column, id_column=id_column,
                                    max_text_chars=max_text_chars)
            return cls(None, frame, "text", None, max_text_chars, source)
        if isinstance(data, Sequence) and data and all(isinstance(p, os.PathLike) for p in data):
            return cls([Path(p) for p in data], None, text_column, id_column, max_text_chars, source)
        if isinstance(data, Sequence) and not isinstance(data, bytes):
            frame = validate_corpus(pl.DataFrame({text_column: pl.Series(list(data), dtype=pl.String)}),
                                    source=source, text_column=text_column, max_text_chars=max_text_chars)
            return cls(None, frame, "text", None, max_text_chars, source)
        raise ConfigError("give a polars DataFrame, a list of strings, or a path to a file, glob or folder of shards")

    @property
    def shard_names(self) -> list[str]:
        """Output name of each shard's scores."""
        if self.paths is None:
            return ["part-00000.parquet"]
        return [f"part-{i:05d}.parquet" for i in range(len(self.paths))]


def write_score_shards(table: pl.DataFrame, shard_names: Sequence[str], out_dir: str | os.PathLike,
                       manifest: Any = None) -> list[Path]:
    """Write ``table`` (with a ``shard`` column) as one Parquet file per shard, plus a manifest.

    Parameters
    ----------
    table : polars.DataFrame
        Scores with a ``shard`` column (dropped from the files), rows in shard order.
    shard_names : list of str
        File name of each shard, by shard number.
    out_dir : path
        Target folder; replaced as a whole (a temporary folder beside it is renamed into place).
    manifest : callable, optional
        ``manifest(paths) -> str``: the manifest text, given the written shard
        files (to hash them); written as ``manifest.json`` in the folder.

    Returns
    -------
    list of Path
        The shard files, at their final place.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; sharded scores are written as a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise OutputError(f"{out}: the folder is not empty and holds no synthfilter scores; choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        written = []
        shard = table.get_column("shard")
        body = table.drop("shard")
        for i, name in enumerate(shard_names):
            path = tmp / name
            body.filter(shard == i).write_parquet(path)
            written.append(path)
        if manifest is not None:
            text = manifest([out / p.name for p in written], written)
            (tmp / MANIFEST_NAME).write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / name for name in shard_names]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
