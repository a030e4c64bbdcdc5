"""Whole-run results, so that re-scoring an unchanged corpus recomputes nothing.

:func:`synthfilter.scoring.score` is a pure function of the texts (in
order), the document groups, the reference texts, the encoder and detector
ids (which cover their weights, calibration and settings), every option and
the seed. :func:`run_key` digests all of these; :class:`RunCache` keeps the
score columns and the run's report under that key, one Parquet file per run
(the report in the file's metadata), written to a temporary file and renamed
into place, so a kill at any instant leaves either the whole entry or none.

A hit therefore returns exactly what the first run computed; the manifest
says the columns were reused and from which run. The per-text caches
(embeddings, detector scores, sketches) still serve a corpus that changed.
A cache entry that cannot be read (truncated, tampered, another format) is
ignored with one warning line, and the run computes everything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from synthfilter.cache import default_cache_dir, text_keys, warn_once

__all__ = ["RUN_FORMAT", "RunCache", "run_key"]

#: Version of the key and of the stored entries (bump when either changes).
RUN_FORMAT = "synthfilter.run/1"
#: Entries kept; the least recently used beyond this are removed.
KEEP_RUNS = 8
_META_KEY = b"synthfilter.run"


def run_key(texts: Sequence[str], settings: dict[str, Any], *,
            groups: Sequence[str] | None = None, reference: Sequence[str] | None = None) -> str:
    """A digest of everything a scoring run's output depends on.

    Parameters
    ----------
    texts : sequence of str
        The corpus's texts, in order.
    settings : dict
        JSON-serialisable ids and options: encoder and detector ids, stage
        names, k-NN and near-duplicate settings, the seed, ...
    groups : sequence of str, optional
        Each record's document id (the share's interval resamples them).
    reference : sequence of str, optional
        The reference's texts, in order.

    Returns
    -------
    str
        A 64-character hex digest.
    """
    h = hashlib.sha256()
    h.update(RUN_FORMAT.encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, values in (("texts", texts), ("groups", groups), ("reference", reference)):
        h.update(f"\x00{name}:{-1 if values is None else len(values)}\x00".encode())
        for key in text_keys(str(value) for value in values or ()):
            h.update(key)
    return h.hexdigest()


class RunCache:
    """Score columns and reports of earlier runs, by :func:`run_key`.

    Parameters
    ----------
    folder : str or Path, optional
        Where the entries live; :func:`~synthfilter.cache.default_cache_dir`
        ``/ "runs"`` by default.
    keep : int, default 8
        Entries kept (least recently used removed first).
    """

    def __init__(self, folder: str | Path | None = None, keep: int = KEEP_RUNS) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir() / "runs"
        self.keep = keep

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.parquet"

    def load(self, key: str, rows: int) -> tuple[pl.DataFrame, dict[str, Any]] | None:
        """The stored columns and report for ``key``, or ``None``.

        Parameters
        ----------
        key : str
            From :func:`run_key`.
        rows : int
            Records the run has; an entry of another length is ignored.

        Returns
        -------
        (polars.DataFrame, dict) or None
        """
        import pyarrow.parquet as pq

        path = self._path(key)
        if not path.is_file():
            return None
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
            if meta.get("format") != RUN_FORMAT or meta.get("key") != key or table.num_rows != rows:
                raise ValueError("the entry is not this run's")
            frame = pl.from_arrow(table.replace_schema_metadata(None))
            assert isinstance(frame, pl.DataFrame)
            os.utime(path)  # recently used
        except Exception as exc:  # noqa: BLE001 - a bad entry only costs a recomputation
            warn_once(f"ignoring an unreadable cached run {path.name} ({type(exc).__name__}: {exc}); "
                      "scoring from scratch", topic=f"run-cache-{key}")
            return None
        return frame, meta["info"]

    def save(self, key: str, columns: pl.DataFrame, info: dict[str, Any]) -> None:
        """Store a run's score columns and report (atomically; failures only warn).

        Parameters
        ----------
        key : str
            From :func:`run_key`.
        columns : polars.DataFrame
            The computed columns (not the carried input columns).
        info : dict
            The run's report, JSON-serialisable.
        """
        import pyarrow.parquet as pq

        from synthfilter.atomic import atomic_path

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            table = columns.to_arrow()
            meta = json.dumps({"format": RUN_FORMAT, "key": key, "info": info}, default=str).encode()
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: meta})
            with atomic_path(self._path(key)) as tmp:
                pq.write_table(table, tmp)
            self._prune()
        except Exception as exc:  # noqa: BLE001 - the cache never makes a run fail
            root = default_cache_dir()
            if isinstance(exc, OSError) and (root == self.folder or root in self.folder.parents):
                # The cache folder itself: one line for all the caches under it (as ArrayStore says it).
                warn_once(f"cache folder {root} is unusable ({type(exc).__name__}: {exc}); "
                          "continuing without a cache", topic=f"root:{root}")
            else:
                warn_once(f"cannot keep this run's results in {self.folder} ({type(exc).__name__}: {exc}); "
                          "a re-run will score again", topic="run-cache-save")

    def _prune(self) -> None:
        entries = sorted(self.folder.glob("*.parquet"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[self.keep:]:
            old.unlink(missing_ok=True)
