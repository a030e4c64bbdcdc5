"""What a stage is and what an engine does with it.

Two kinds of stage make up a scoring pipeline:

* a :class:`RecordStage` is a pure function of a batch of records: it gets
  the batch's columns (``text`` and the columns earlier stages added) and
  returns new columns, one value per record. It loads its models in
  :meth:`RecordStage.setup`, once per worker, and keeps no state between
  batches, so any engine may run it on any shard, in any number of processes;
* a :class:`GlobalStage` needs the whole corpus, but only through small
  per-record columns (vectors, sketches, scores) that the engine gathers for
  it; where it must look at two records' texts together (verifying a
  near-duplicate candidate pair) it asks the engine with a :class:`PairCheck`,
  and the engine runs the check where the texts are.

An :class:`Engine` runs record stages over a corpus and hands back a
:class:`RecordSet`; it knows nothing of what a stage computes, and the stages
know nothing of the engine.

A record set also offers a few generic distributed primitives, so that a
global stage can work where the records are instead of gathering wide
columns (embeddings, sketches) in one process: :meth:`RecordSet.map_shards`
(a function over each shard's columns, its results returned or kept with the
engine as a :class:`Kept` handle), :meth:`RecordSet.map_shard_pairs` (a
function over every pair of a shard and a kept value, combined per shard),
:meth:`RecordSet.map_kept` (a function over each kept value, where it is) and
:meth:`RecordSet.group_by_key` (rows hash-partitioned by a key into buckets, a
function over each bucket). The local engine runs them in-process over one
shard; the Ray engine as Ray tasks over the object store.
:mod:`synthfilter.stages.sharded` writes the tail stage's k-NN index and
MinHash LSH grouping with them; a record set whose ``sharded`` is true (Ray)
gets those, the local engine keeps its single-index path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: A batch or a table of columns: name -> one-dimensional (or ``(n, d)``) array.
Columns = dict[str, np.ndarray]


@runtime_checkable
class RecordStage(Protocol):
    """A per-record stage: columns in, more columns out, one value per record.

    A stage may also have ``start(batch)`` and ``stop()``: the local engine
    calls ``start`` with the batch's texts before any stage processes it (so
    work that needs the texts alone can begin in the background while the
    earlier stages run; ``process`` then finishes it) and ``stop`` when the
    batches end, normally or not.

    Attributes
    ----------
    name : str
        Stage name (for timings and messages).
    columns : tuple of str
        Columns it adds.
    """

    name: str
    columns: tuple[str, ...]

    def setup(self) -> None:
        """Load models; called once per worker before the first batch."""
        ...

    def process(self, batch: Columns) -> Columns:
        """Return :attr:`columns` for the records of ``batch`` (same length, same order)."""
        ...


class PairCheck(Protocol):
    """A test on pairs of texts, run by the engine where the texts are."""

    def __call__(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Boolean array: whether each pair ``(left[i], right[i])`` passes."""
        ...


class RecordSet(Protocol):
    """The outcome of running record stages: small columns here, texts with the engine.

    Attributes
    ----------
    columns : dict of numpy.ndarray
        Every column the stages added, plus ``id``, ``shard`` and ``row``
        (and kept input columns), in corpus order: shard by shard, each in
        its input order.
    """

    columns: Columns
    #: Whether the records are spread over workers, so that global stages should use the
    #: primitives below (sharded functions) rather than gather whole columns here.
    sharded: bool

    def check_pairs(self, rows: np.ndarray, cols: np.ndarray, check: PairCheck) -> np.ndarray:
        """Apply ``check`` to the texts of records ``rows[i]`` and ``cols[i]`` (corpus positions)."""
        ...

    def map_shards(self, fn: Callable[[Columns], Any], columns: Sequence[str], *, keep: bool = False
                   ) -> list[Any] | Kept:
        """Apply ``fn`` to each shard of ``columns``, where the shard is.

        Parameters
        ----------
        fn : callable
            ``fn(part)``: ``part`` is a :data:`Columns` of the shard's rows
            (the named columns, ``text`` allowed, plus ``pos``, their int64
            corpus positions, ascending). It must be picklable (a
            module-level function or a :func:`functools.partial` of one).
        columns : list of str
            Columns the function reads.
        keep : bool, default False
            Leave the results with the engine and return a :class:`Kept`
            handle instead of the results.

        Returns
        -------
        list or Kept
            One result per shard, in corpus order.
        """
        ...

    def map_shard_pairs(self, fn: Callable[[Columns, Any], Any], columns: Sequence[str], kept: Kept,
                        combine: Callable[[list[Any]], Any]) -> list[Any]:
        """For each shard: ``combine([fn(part, value) for value in kept])``, every call where its data is.

        Each ``fn`` call sees one shard's rows (as in :meth:`map_shards`) and
        one kept value (of this record set or another), so no call holds
        more than one shard of each; ``combine`` gets that shard's partial
        results, in the order of ``kept``, and returns a small result.

        Returns
        -------
        list
            One combined result per shard, in corpus order.
        """
        ...

    def map_kept(self, kept: Kept, fn: Callable[[Any], Any]) -> list[Any]:
        """Apply ``fn`` to each value of ``kept`` where it is; the (small) results, in order."""
        ...

    def group_by_key(self, emit: Callable[[Columns], tuple[np.ndarray, Columns]], columns: Sequence[str],
                     reduce: Callable[[Columns], Any], *, buckets: int | None = None) -> list[Any]:
        """A distributed group-by: rows hash-partitioned by key into buckets, ``reduce`` per bucket.

        Parameters
        ----------
        emit : callable
            ``emit(part) -> (keys, payload)`` on each shard (``part`` as in
            :meth:`map_shards`): ``keys`` uint64, one per payload row;
            ``payload`` columns of equal length. Rows go to bucket
            ``key % buckets``, so equal keys meet in one bucket.
        columns : list of str
            Columns ``emit`` reads.
        reduce : callable
            ``reduce(payload)`` on the concatenated payload rows of one bucket
            (in shard order); returns a small result.
        buckets : int, optional
            Buckets; the engine's choice by default.

        Returns
        -------
        list
            One result per bucket.
        """
        ...


class Kept(Protocol):
    """Per-shard values an engine holds for :meth:`RecordSet.map_shard_pairs` or :meth:`RecordSet.map_kept`."""

    def __len__(self) -> int:
        """Number of values (one per shard)."""
        ...


@runtime_checkable
class GlobalStage(Protocol):
    """A stage over the whole corpus, from the record stages' columns."""

    name: str

    def run(self, records: RecordSet, ctx: GlobalContext) -> Columns:
        """Return the stage's per-record columns (may be empty); put its report in ``ctx.info``."""
        ...


@dataclass
class GlobalContext:
    """What global stages share besides the records.

    Attributes
    ----------
    reference : RecordSet, optional
        A gold reference's columns (its embeddings), when one is given.
    groups : list of str, optional
        Document id of each record, for the share estimate's interval.
    seed : int
        Seed of every random choice.
    info : dict
        Per-stage reports, for the manifest.
    """

    reference: RecordSet | None = None
    groups: list[str] | None = None
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """Runs record stages over a corpus."""

    name: str

    def map_records(self, source: Any, stages: Sequence[RecordStage]) -> RecordSet:
        """Run ``stages`` in order over every record of ``source``."""
        ...
