"""The local engine: record stages in-process, over the corpus in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from synthfilter.engine.base import Columns, PairCheck, RecordStage


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

    def __init__(self, columns: Columns, frame: pl.DataFrame, texts: list[str]) -> None:
        self.columns, self.frame, self.texts = columns, frame, texts

    def check_pairs(self, rows: np.ndarray, cols: np.ndarray, check: PairCheck) -> np.ndarray:
        """Apply ``check`` to the pairs' texts."""
        return np.asarray(check([self.texts[i] for i in rows], [self.texts[j] for j in cols]), dtype=bool)


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
        for start in range(0, len(texts), step):
            batch: Columns = {"text": np.asarray(texts[start:start + step], dtype=object)}
            for stage in stages:
                batch.update(stage.process(batch))
                if whole and on_stage_done is not None:
                    on_stage_done(stage, {k: v for k, v in batch.items() if k != "text"})
            batch.pop("text")
            parts.append(batch)
        columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}
        if not whole and on_stage_done is not None:
            for stage in stages:
                on_stage_done(stage, columns)
        frame = source.select("id", *[c for c in carry if c not in ("id",)])
        return LocalRecordSet(columns, frame, texts)
