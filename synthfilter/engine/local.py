"""The local engine: record stages in-process, over the corpus in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from synthfilter.engine.base import Columns, PairCheck, RecordStage
from synthfilter.interrupts import check_interrupted


@dataclass
class LocalKept:
    """Values kept by :meth:`LocalRecordSet.map_shards` (one per shard; here, one)."""

    values: list[Any]

    def __len__(self) -> int:
        return len(self.values)


class LocalRecordSet:
    """Record-stage columns and the texts, all in this process.

    Attributes
    ----------
    columns : dict of numpy.ndarray
        The stages' columns, in corpus order.
    frame : polars.DataFrame
        ``id`` and the carried input columns, in corpus order.
    texts : list of str
        The texts.
    """

    def __init__(self, columns: Columns, frame: pl.DataFrame, texts: list[str], shard_rows: int | None = None
                 ) -> None:
        self.columns, self.frame, self.texts = columns, frame, texts
        self.shard_rows = shard_rows

    def check_pairs(self, rows: np.ndarray, cols: np.ndarray, check: PairCheck) -> np.ndarray:
        """Apply ``check`` to the pairs' texts."""
        return np.asarray(check([self.texts[i] for i in rows], [self.texts[j] for j in cols]), dtype=bool)

    #: Everything is in this process: global stages gather columns directly.
    sharded = False

    def _parts(self, columns: Sequence[str]) -> list[Columns]:
        """The corpus as one shard (or shards of ``shard_rows`` records, to test sharded functions)."""
        n = len(self.texts)
        step = self.shard_rows or max(n, 1)
        parts = []
        for start in range(0, max(n, 1), step):
            stop = min(start + step, n)
            part: Columns = {c: (np.asarray(self.texts[start:stop], dtype=object) if c == "text"
                                 else self.columns[c][start:stop]) for c in columns}
            part["pos"] = np.arange(start, stop, dtype=np.int64)
            parts.append(part)
        return parts

    def map_shards(self, fn: Callable[[Columns], Any], columns: Sequence[str], *, keep: bool = False
                   ) -> list[Any] | LocalKept:
        """Apply ``fn`` to each shard in turn (see :meth:`synthfilter.engine.base.RecordSet.map_shards`)."""
        out = [fn(part) for part in self._parts(columns)]
        return LocalKept(out) if keep else out

    def map_shard_pairs(self, fn: Callable[[Columns, Any], Any], columns: Sequence[str], kept: LocalKept,
                        combine: Callable[[list[Any]], Any]) -> list[Any]:
        """``combine([fn(part, v) for v in kept])`` for each shard, in turn."""
        return [combine([fn(part, value) for value in kept.values]) for part in self._parts(columns)]

    def map_kept(self, kept: LocalKept, fn: Callable[[Any], Any]) -> list[Any]:
        """Apply ``fn`` to each kept value."""
        return [fn(value) for value in kept.values]

    def group_by_key(self, emit: Callable[[Columns], tuple[np.ndarray, Columns]], columns: Sequence[str],
                     reduce: Callable[[Columns], Any], *, buckets: int | None = None) -> list[Any]:
        """Group the corpus's emitted rows by ``key % buckets`` (one bucket by default) and reduce each."""
        nb = max(1, int(buckets or 1))
        pieces: list[list[Columns]] = [[] for _ in range(nb)]
        for part in self._parts(columns):
            keys, payload = emit(part)
            which = np.asarray(keys, dtype=np.uint64) % np.uint64(nb)
            for b in range(nb):
                pieces[b].append({c: np.asarray(v)[which == b] for c, v in payload.items()})
        return [reduce({c: np.concatenate([p[c] for p in bucket]) for c in bucket[0]}) for bucket in pieces]


class LocalEngine:
    """Runs record stages in this process.

    Parameters
    ----------
    batch_rows : int, optional
        Records per batch; ``None`` (default) runs each stage once over the
        whole corpus, as a single call (the encoders batch internally).
    """

    name = "local"

    def __init__(self, batch_rows: int | None = None) -> None:
        self.batch_rows = batch_rows

    def map_records(self, source: pl.DataFrame, stages: Sequence[RecordStage], carry: Sequence[str] = (),
                    on_stage_done: Callable[[RecordStage, Columns], None] | None = None) -> LocalRecordSet:
        """Run ``stages`` over a validated corpus frame (``id``, ``text``, ...).

        Parameters
        ----------
        source : polars.DataFrame
            The records (see :func:`synthfilter.io.validate_corpus`).
        stages : list of RecordStage
            Run in order; each sees the columns of the ones before.
        carry : list of str
            Input columns to hand back beside ``id``.
        on_stage_done : callable, optional
            ``on_stage_done(stage, columns)`` is called as soon as a stage's
            columns are known for the whole corpus (right after the stage
            when the corpus is one batch, else at the end), so that work which
            needs only those columns can start while later stages run.

        Returns
        -------
        LocalRecordSet
        """
        texts = source.get_column("text").to_list()
        for stage in stages:
            stage.setup()
        step = self.batch_rows or max(len(texts), 1)
        whole = step >= len(texts)
        parts: list[Columns] = []
        starters = [stage for stage in stages if hasattr(stage, "start")]
        try:
            for start in range(0, len(texts), step):
                batch: Columns = {"text": np.asarray(texts[start:start + step], dtype=object)}
                for stage in starters:  # work that needs the texts alone begins before the earlier stages
                    stage.start(batch)
                for stage in stages:
                    check_interrupted()
                    batch.update(stage.process(batch))
                    if whole and on_stage_done is not None:
                        on_stage_done(stage, {k: v for k, v in batch.items() if k != "text"})
                batch.pop("text")
                parts.append(batch)
        finally:
            for stage in starters:
                stage.stop()
        columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}
        if not whole and on_stage_done is not None:
            for stage in stages:
                on_stage_done(stage, columns)
        frame = source.select("id", *[c for c in carry if c not in ("id",)])
        return LocalRecordSet(columns, frame, texts)
