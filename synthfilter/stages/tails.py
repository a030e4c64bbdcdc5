"""Global stage: k-NN rarity and near-duplicate clusters from per-record columns.

Takes the ``embedding``, ``norm_key`` and ``band_keys`` columns (never the
texts): the k-NN part comes from :func:`synthfilter.stages.knn.knn_tails`;
exact duplicates join through equal normal-form keys; records sharing a
MinHash band key are candidate pairs, checked by the engine where the texts
are (:class:`~synthfilter.stages.textdup.ShingleJaccard`); the clusters are
the connected components of all these edges, numbered in order of their
first record, exactly as :class:`~synthfilter.tails.TailScorer` numbers them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthfilter.engine.base import Columns, GlobalContext, RecordSet
from synthfilter.errors import ConfigError
from synthfilter.stages import textdup
from synthfilter.stages.knn import knn_tails

TAIL_COLUMNS = ("knn_distance", "rarity", "dup_cluster", "is_near_duplicate")


class TailGlobalStage:
    """Adds ``knn_distance``, ``rarity``, ``dup_cluster`` and ``is_near_duplicate``.

    Parameters
    ----------
    k, dup_threshold, text_dup_threshold, index, nlist, nprobe
        See :class:`~synthfilter.tails.TailScorer`.
    """

    name = "tails"
    columns = TAIL_COLUMNS

    def __init__(self, k: int = 10, dup_threshold: float = 0.95, text_dup_threshold: float | None = 0.8,
                 index: str = "auto", nlist: int | None = None, nprobe: int | None = None) -> None:
        if text_dup_threshold is not None and not 0.0 < text_dup_threshold <= 1.0:
            raise ConfigError(f"the text near-duplicate threshold must be in (0, 1], got {text_dup_threshold}")
        self.k, self.dup_threshold = k, dup_threshold
        self.text_dup_threshold, self.index = text_dup_threshold, index
        self.nlist, self.nprobe = nlist, nprobe
        self._pending: _Background | None = None

    def _knn(self, embeddings: np.ndarray, reference: np.ndarray | None, seed: int) -> Any:
        return knn_tails(embeddings, reference, k=self.k, dup_threshold=self.dup_threshold,
                         text_dup_threshold=self.text_dup_threshold, index=self.index, seed=seed,
                         nlist=self.nlist, nprobe=self.nprobe)

    def prefetch(self, columns: Columns, ctx: GlobalContext) -> bool:
        """Start the k-NN part in a background thread once the corpus's embeddings are known.

        The k-NN index needs only the ``embedding`` column, so an engine that
        has it for the whole corpus before the other record stages finish
        (the local engine) lets the index be built while they run; FAISS
        releases the GIL. :meth:`run` then takes the result, and computes it
        itself when nothing was started or the embeddings differ. The result
        is the same either way (the graph is built on one thread).

        Parameters
        ----------
        columns : dict of numpy.ndarray
            The corpus's columns so far.
        ctx : GlobalContext
            With the reference's records, when rarity is against a reference.

        Returns
        -------
        bool
            Whether the work was started.
        """
        if "embedding" not in columns or self._pending is not None:
            return False
        self._records_done = threading.Event()
        self._pending = _Background(self._knn_beside, columns["embedding"], _reference_embeddings(ctx), ctx.seed)
        return True

    def _knn_beside(self, embeddings: np.ndarray, reference: np.ndarray | None, seed: int) -> Any:
        """:meth:`_knn` in the background: one FAISS thread while the record stages run, all of them after."""
        import faiss

        from synthfilter.knn_index import thread_budget

        every = faiss.omp_get_max_threads()
        done = self._records_done
        with thread_budget(lambda: every if done.is_set() else 1):
            return self._knn(embeddings, reference, seed)

    def _take_pending(self, embeddings: np.ndarray, reference: np.ndarray | None, seed: int) -> Any:
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        self._records_done.set()  # the search may take every core now
        knn = pending.result()  # joined even when unusable, so no thread outlives the run
        started_with, started_reference, started_seed = pending.args
        same = (started_seed == seed and np.array_equal(started_with, embeddings)
                and (started_reference is reference
                     or (started_reference is not None and reference is not None
                         and np.array_equal(started_reference, reference))))
        return knn if same else None

    def run(self, records: RecordSet, ctx: GlobalContext) -> Columns:
        """Tail columns for every record, in order."""
        cols = records.columns
        sharded = getattr(records, "sharded", False)
        # The text edges first: they need no k-NN, so here they are found while a k-NN started by
        # prefetch() finishes.
        n = cols["norm_key"].shape[0]
        r, c = textdup.exact_pairs(cols["norm_key"])
        rows, targets = [r], [c]
        if self.text_dup_threshold is not None and n > 1:
            blank = np.all(cols["norm_key"] == textdup.BLANK_KEY, axis=1)
            first_of_form = np.zeros(n, dtype=bool)
            first_of_form[np.setdiff1d(np.arange(n), r)] = True
            if sharded:  # a distributed group-by on band keys; the keys stay with the workers
                from synthfilter.stages.sharded import sharded_candidate_pairs

                cand_r, cand_c = sharded_candidate_pairs(records, first_of_form & ~blank)
            else:
                cand_r, cand_c = textdup.candidate_pairs(cols["band_keys"], first_of_form & ~blank)
            if cand_r.size:
                ok = records.check_pairs(cand_r, cand_c, textdup.ShingleJaccard(self.text_dup_threshold))
                rows.append(cand_r[ok])
                targets.append(cand_c[ok])
        if sharded:  # the records are spread over workers: the same k-NN, shard by shard
            from synthfilter.stages.sharded import sharded_knn_tails

            knn = sharded_knn_tails(records, ctx.reference, k=self.k, dup_threshold=self.dup_threshold,
                                    text_dup_threshold=self.text_dup_threshold, index=self.index, seed=ctx.seed,
                                    nlist=self.nlist, nprobe=self.nprobe)
        else:
            reference = _reference_embeddings(ctx)
            knn = self._take_pending(cols["embedding"], reference, ctx.seed)
            if knn is None:
                knn = self._knn(cols["embedding"], reference, ctx.seed)
        ctx.info["tails"] = knn.info
        labels = knn.embedding_clusters
        _, first = np.unique(labels, return_index=True)
        rows.insert(0, np.arange(n, dtype=np.int64))
        targets.insert(0, first[np.searchsorted(np.unique(labels), labels)].astype(np.int64))
        clusters = components(n, np.concatenate(rows), np.concatenate(targets))
        first_seen = np.zeros(n, dtype=bool)
        first_seen[np.unique(clusters, return_index=True)[1]] = True
        return {
            "knn_distance": knn.knn_distance.astype(np.float64),
            "rarity": knn.rarity.astype(np.float64),
            "dup_cluster": clusters,
            "is_near_duplicate": ~first_seen,
        }


def _reference_embeddings(ctx: GlobalContext) -> np.ndarray | None:
    return None if ctx.reference is None else ctx.reference.columns["embedding"]


class _Background:
    """``fn(*args)`` in a daemon thread (an interrupt does not wait for it); :meth:`result` joins."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.args = args
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(fn,), name="synthfilter-knn", daemon=True)
        self._thread.start()

    def _work(self, fn: Callable[..., Any]) -> None:
        try:
            self._value = fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by result()
            self._error = exc

    def result(self) -> Any:
        """The function's value, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Connected components of an edge list, numbered 0, 1, ... in order of each one's first node."""
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_pos, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_pos))
    return order[inverse.ravel()].astype(np.int64)
