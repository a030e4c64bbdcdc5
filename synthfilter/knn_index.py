"""The k-nearest-neighbour index behind rarity and near-duplicates, in shardable steps.

Vectors are L2-normalised float32 and compared by inner product (cosine).
In one process (:func:`build_index`) the search is exact (``IndexFlatIP``)
below :data:`HNSW_THRESHOLD` vectors, and an HNSW graph from there (below).
Sharded (:mod:`synthfilter.stages.sharded`), it is exact below
:data:`IVF_THRESHOLD` vectors and from there on an inverted file
(``IndexIVFFlat``, vectors stored uncompressed, so the similarities it
returns are exact and only the candidate set is approximate):

* ``nlist = 2 * sqrt(n)`` cells (2,000 at a million vectors), their centroids
  trained by k-means on a seeded sample of ``TRAIN_PER_CELL * nlist`` vectors
  (:func:`train_ivf`), so training costs the same at any corpus size;
* ``nprobe``, the cells visited per query, is chosen from the *measured*
  recall (:func:`choose_nprobe`): on a seeded sample of queries the exact
  neighbours are computed by brute force, then ``nprobe`` starts at
  :data:`START_NPROBE` and doubles until recall@k reaches ``target``
  (0.95 by default) or every cell is visited. The chosen ``nprobe`` and its
  measured recall go into the index report. The cells needed depend on how
  clustered the embeddings are: the static encoder's embeddings of short
  real texts needed 64 of 632 cells (recall 0.977) at 100,000 records;
  structureless data (random Gaussian vectors) needs nearly all of them, and
  the report says so rather than returning a poor neighbour list.

From :data:`HNSW_THRESHOLD` vectors :func:`build_index` uses a graph instead
(``IndexHNSWFlat``, :func:`build_hnsw`): the static encoder's embeddings of
short real texts are poorly clustered, so IVF had to visit 64 of 632 cells
(10 % of the corpus per query) for recall@10 0.977 at 100,000 records, and
the cells to visit grow with the corpus; HNSW's search cost grows with the
logarithm of the corpus. ``efSearch`` (the candidate list per query) is
chosen from the measured recall like ``nprobe`` (:func:`choose_ef_search`),
and the graph is built on one thread, so the same vectors always give the
same graph and the same neighbours. Vectors are stored uncompressed, so the
similarities returned are exact here too. Measured on 100,000 real static
embeddings (M = 32): built in 13-15 s on one thread, recall@11 0.963 at
``efSearch`` 64, where IVF needed 39 of 632 cells for 0.952.

Product quantisation would save memory but needs re-ranking to return exact
similarities, which the near-duplicate threshold (cosine >= 0.95) depends on.
HNSW graphs cannot be merged across shards; an IVF index (``index="ivf"``)
with a shared, once-trained coarse quantizer is mergeable, and every step
below is a plain function, so a distributed engine can run them shard by
shard:

1. :func:`train_ivf` once, on a sample (the driver);
2. :func:`fill_ivf` per shard of vectors, with their global ids; the shards'
   indexes can be merged (:func:`merge_ivf`) or kept apart;
3. :func:`search_index` of each block of queries against each shard, then
   :func:`merge_neighbours` of the per-shard top-k lists (exact, since each
   shard returns exact similarities);
4. :func:`knn_distance` and :func:`rarity_from_distances` turn the merged
   lists into the score columns.

Memory stays linear: the index holds one float32 copy of the vectors, queries
run in blocks of ``batch_size``, and no ``n x n`` array is ever formed.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from synthfilter.errors import ConfigError

__all__ = [
    "HNSW_THRESHOLD",
    "IVF_THRESHOLD",
    "IndexReport",
    "build_hnsw",
    "build_index",
    "choose_ef_search",
    "choose_nprobe",
    "default_nlist",
    "drop_self",
    "exact_neighbours",
    "fill_ivf",
    "knn_distance",
    "merge_ivf",
    "merge_neighbours",
    "normalise_vectors",
    "rarity_from_distances",
    "recall_at_k",
    "search_index",
    "train_ivf",
]

#: Index size from which the sharded index (``index="auto"``, :mod:`synthfilter.stages.sharded`) uses IVF
#: instead of exact search.
IVF_THRESHOLD = 50_000
#: Index size from which :func:`build_index` (``kind="auto"``, one process) uses an HNSW graph instead of
#: exact search. Measured on one thread on real static (64-dimensional) embeddings, exact search of every
#: row took 15, 35 and 61 s of CPU at 100,000, 150,000 and 200,000 rows, against 19, 35 and 82 s for the
#: graph built and searched to recall@10 0.95 (``efSearch`` doubles to 128 at 200,000); with the same
#: vectors in 384 dimensions, 62 and 242 s against 73 and 275 s at 100,000 and 200,000
#: (``benchmarks/tails/bench_exact_vs_hnsw.py``). Below this size exact search costs no more, and is exact.
HNSW_THRESHOLD = 200_000
#: Training vectors per IVF cell (FAISS warns below 39).
TRAIN_PER_CELL = 50
#: First ``nprobe`` tried by :func:`choose_nprobe`.
START_NPROBE = 8
#: Neighbours per node of the HNSW graph.
HNSW_M = 32
#: Candidate list while building the HNSW graph.
HNSW_EF_CONSTRUCTION = 40
#: First ``efSearch`` tried by :func:`choose_ef_search`.
START_EF_SEARCH = 32
#: Default recall@k target for :func:`choose_nprobe` and :func:`choose_ef_search`.
RECALL_TARGET = 0.95
#: Queries per search call.
BATCH_SIZE = 16_384


@dataclass(frozen=True)
class IndexReport:
    """How the neighbour search ran.

    Attributes
    ----------
    kind : str
        ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"``.
    n_indexed : int
        Vectors in the index.
    nlist, nprobe : int or None
        IVF cells and cells visited per query.
    recall_at_k : float or None
        For IVF: recall@k against exact search on a sample of queries, at the
        ``nprobe`` used; ``None`` for exact search.
    recall_sample : int
        Queries in that sample.
    recall_target : float or None
        The recall ``nprobe`` was chosen to reach (``None`` when ``nprobe``
        was given).
    train_size : int
        Vectors the IVF centroids were trained on.
    nprobe_trials : tuple of (int, float)
        Each ``nprobe`` (IVF) or ``efSearch`` (HNSW) tried and its measured recall.
    hnsw_m, ef_search : int or None
        HNSW graph degree and candidate list per query.
    """

    kind: str
    n_indexed: int
    nlist: int | None = None
    nprobe: int | None = None
    recall_at_k: float | None = None
    recall_sample: int = 0
    recall_target: float | None = None
    train_size: int = 0
    nprobe_trials: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    hnsw_m: int | None = None
    ef_search: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        out = dict(self.__dict__)
        out["nprobe_trials"] = [list(t) for t in self.nprobe_trials]
        return out


def normalise_vectors(x: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """Checked, L2-normalised, C-contiguous float32 copy of ``x`` (zero rows stay zero).

    Raises
    ------
    ConfigError
        For an empty or non-2-D array, or NaN / infinite values.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ConfigError(f"{what}: expected a non-empty 2-D array of embeddings, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{what}: embeddings contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def default_nlist(n: int) -> int:
    """IVF cells for ``n`` vectors: ``2 * sqrt(n)``, at most ``n // 39`` (at least 1)."""
    return max(1, min(int(2 * math.sqrt(n)), n // 39))


def train_ivf(sample: np.ndarray, nlist: int, seed: int = 0) -> faiss.IndexIVFFlat:
    """An empty inner-product IVF index whose centroids are trained on ``sample``.

    Parameters
    ----------
    sample : numpy.ndarray, shape (m, dim)
        Normalised vectors to train on (:func:`build_index` passes a seeded
        sample of ``TRAIN_PER_CELL * nlist`` of them).
    nlist : int
        Cells (k-means centroids).
    seed : int, default 0
        k-means seed.

    Returns
    -------
    faiss.IndexIVFFlat
        Trained and empty; copy it with ``faiss.clone_index`` (or ship it with
        ``faiss.serialize_index``) for each shard.
    """
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if nlist < 1 or nlist > sample.shape[0]:
        raise ConfigError(f"nlist must be between 1 and the {sample.shape[0]} training vectors, got {nlist}")
    quantizer = faiss.IndexFlatIP(sample.shape[1])
    index = faiss.IndexIVFFlat(quantizer, sample.shape[1], int(nlist), faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    index.cp.seed = int(seed)
    index.cp.max_points_per_centroid = max(256, -(-sample.shape[0] // nlist))  # train on the whole sample
    index.train(sample)
    return index


def fill_ivf(trained: faiss.IndexIVFFlat, vectors: np.ndarray, ids: np.ndarray | None = None) -> faiss.IndexIVFFlat:
    """A copy of the trained index holding ``vectors`` under ``ids`` (global row numbers).

    Indexes filled from different shards with the same ``trained`` index can
    be merged with :func:`merge_ivf` or searched apart and their results
    merged with :func:`merge_neighbours`.
    """
    index = faiss.clone_index(trained)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.arange(vectors.shape[0], dtype=np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (vectors.shape[0],):
        raise ConfigError(f"{ids.shape[0]} ids for {vectors.shape[0]} vectors")
    index.add_with_ids(vectors, ids)
    return index


def merge_ivf(shards: Sequence[faiss.IndexIVFFlat]) -> faiss.IndexIVFFlat:
    """One index holding every shard's vectors (the shards share one trained quantizer)."""
    if not shards:
        raise ConfigError("no index shards to merge")
    merged = faiss.clone_index(shards[0])
    for shard in shards[1:]:
        merged.merge_from(faiss.clone_index(shard), 0)
    return merged


def _drop_self(sims: np.ndarray, ids: np.ndarray, query_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``k + 1`` results without the query itself (else without the last)."""
    is_self = ids == query_ids[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), ids.shape[1] - 1)
    keep = np.ones(ids.shape, dtype=bool)
    keep[np.arange(ids.shape[0]), drop] = False
    shape = (ids.shape[0], ids.shape[1] - 1)
    return sims[keep].reshape(shape)[:, :k], ids[keep].reshape(shape)[:, :k]


_BUDGET = threading.local()


@contextlib.contextmanager
def thread_budget(threads: Callable[[], int]) -> Iterator[None]:
    """In this block and this thread, FAISS searches use ``threads()`` OpenMP threads.

    ``threads`` is asked again before every block of queries
    (:func:`search_index`), so a search that runs beside other work can take
    one core while that work goes on and every core once it is done. OpenMP
    thread counts are per calling thread: other threads are not affected.
    Results do not depend on the number of threads.

    Parameters
    ----------
    threads : callable
        Returns the number of threads to use now (at least 1).
    """
    before = faiss.omp_get_max_threads()
    _BUDGET.threads = threads
    try:
        yield
    finally:
        _BUDGET.threads = None
        faiss.omp_set_num_threads(before)


def _apply_thread_budget() -> None:
    threads = getattr(_BUDGET, "threads", None)
    if threads is not None:
        faiss.omp_set_num_threads(max(1, int(threads())))


def drop_self(sims: np.ndarray, ids: np.ndarray, query_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop each query's own entry from its ``k + 1`` results (else the last), leaving ``k``.

    What :func:`search_index` does with ``query_ids``, for lists merged from
    several shards' searches (:func:`merge_neighbours` of ``k + 1`` each):
    the top ``k + 1`` of the merged lists are the whole index's, so dropping
    then gives the whole index's self-excluded top ``k``.
    """
    return _drop_self(sims, ids, np.asarray(query_ids, dtype=np.int64), ids.shape[1] - 1)


def search_index(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    *,
    query_ids: np.ndarray | None = None,
    nprobe: int | None = None,
    batch_size: int = BATCH_SIZE,
    skip_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` neighbours of each query, in blocks of ``batch_size``.

    Parameters
    ----------
    index : faiss.Index
        A flat or IVF inner-product index (or one shard of it).
    queries : numpy.ndarray, shape (m, dim)
        Normalised query vectors.
    k : int
        Neighbours wanted (fewer when the index is smaller).
    query_ids : numpy.ndarray of int64, optional
        The queries' own ids in the index: each query's own entry is then
        excluded (or, when it is not among the results, the least similar).
    nprobe : int, optional
        IVF cells to visit (the index's own setting when omitted).
    batch_size : int, default 16384
        Queries per FAISS call.
    skip_ids : numpy.ndarray of int64, optional
        Ids never returned (vectors still in the index whose records are gone):
        a filtered search (FAISS ``IDSelector``), for flat, IVF and HNSW indexes.

    Returns
    -------
    sims : numpy.ndarray of float32, shape (m, k')
        Inner products, most similar first.
    ids : numpy.ndarray of int64, shape (m, k')
        Their ids (-1 where an IVF search found fewer than ``k``).
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    exclude = query_ids is not None
    skip = np.unique(np.asarray(skip_ids, dtype=np.int64)) if skip_ids is not None else np.zeros(0, np.int64)
    kk = min(k + int(exclude), index.ntotal - skip.size)
    selectors = []  # kept alive while FAISS holds pointers to them
    if skip.size:
        selectors.append(faiss.IDSelectorBatch(skip))
        selectors.append(faiss.IDSelectorNot(selectors[0]))
    params = _search_parameters(index, nprobe, selectors[-1] if selectors else None)
    sims = np.empty((queries.shape[0], max(kk - int(exclude), 0)), dtype=np.float32)
    ids = np.empty(sims.shape, dtype=np.int64)
    for start in range(0, queries.shape[0], batch_size):
        block = queries[start : start + batch_size]
        _apply_thread_budget()
        s, i = index.search(block, kk, params=params) if params is not None else index.search(block, kk)
        if exclude:
            s, i = _drop_self(s, i, np.asarray(query_ids[start : start + batch_size], dtype=np.int64), kk - 1)
        sims[start : start + block.shape[0]] = s
        ids[start : start + block.shape[0]] = i
    return sims, ids


def merge_neighbours(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of several ``(sims, ids)`` result lists for the same queries (e.g. one per shard).

    Ties keep the order of ``parts``, then of each list, so merging is deterministic.
    """
    if not parts:
        raise ConfigError("no neighbour lists to merge")
    sims = np.concatenate([np.asarray(s, dtype=np.float32) for s, _ in parts], axis=1)
    ids = np.concatenate([np.asarray(i, dtype=np.int64) for _, i in parts], axis=1)
    sims = np.where(ids < 0, -np.inf, sims)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(ids, order, axis=1)


#: Queries per block of :func:`exact_neighbours` (a multiple of FAISS's own 4,096-query blocks).
EXACT_BLOCK = 16_384


def _search_parameters(index: faiss.Index, nprobe: int | None, selector: Any) -> Any:
    """FAISS search parameters for ``nprobe`` and an id filter, or ``None`` for the index's own settings."""
    if selector is None:
        return faiss.SearchParametersIVF(nprobe=int(nprobe)) if nprobe is not None else None
    if isinstance(index, faiss.IndexIVF):
        return faiss.SearchParametersIVF(nprobe=int(nprobe if nprobe is not None else index.nprobe), sel=selector)
    if isinstance(index, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(efSearch=int(index.hnsw.efSearch), sel=selector)
    return faiss.SearchParameters(sel=selector)


def exact_neighbours(
    queries: np.ndarray,
    vectors: np.ndarray,
    k: int,
    *,
    query_ids: np.ndarray | None = None,
    vector_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` of ``queries`` among ``vectors`` (no copy of ``vectors``).

    ``vector_ids`` renames the rows of ``vectors`` (global ids of a shard);
    ``query_ids`` excludes each query's own entry, as in :func:`search_index`.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kk = min(k + int(query_ids is not None), vectors.shape[0])
    # In blocks of EXACT_BLOCK queries (the last one takes the remainder, so no block is small enough
    # for FAISS to switch from BLAS to its direct kernel, and FAISS's own 4,096-query blocks line up):
    # the thread budget (thread_budget) is asked again before each; results do not depend on it.
    starts = list(range(0, max(queries.shape[0] - EXACT_BLOCK, 0) + 1, EXACT_BLOCK))
    parts = []
    for start, stop in zip(starts, starts[1:] + [queries.shape[0]]):
        _apply_thread_budget()
        parts.append(faiss.knn(queries[start:stop], vectors, kk, metric=faiss.METRIC_INNER_PRODUCT))
    sims, ids = (parts[0] if len(parts) == 1 else
                 (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    if vector_ids is not None:
        ids = np.where(ids >= 0, np.asarray(vector_ids, dtype=np.int64)[np.maximum(ids, 0)], -1)
    if query_ids is not None:
        return _drop_self(sims, ids, np.asarray(query_ids, dtype=np.int64), kk - 1)
    return sims, ids


#: Queries per block of :func:`exact_top_sims` (a block's similarities: ``FLOOR_BLOCK x n`` float32).
FLOOR_BLOCK = 128
#: Slack under a floor taken from another search's similarities (FAISS's kernels and BLAS round apart).
FLOOR_SLACK = 1e-4


def exact_top_sims(
    queries: np.ndarray, vectors: np.ndarray, floor: np.ndarray, k: int, *, query_ids: np.ndarray | None = None
) -> np.ndarray:
    """Exact top-``k`` similarities of each query, given a lower bound of its ``k``-th.

    What ``exact_neighbours(queries, vectors, k, query_ids=...)[0]`` returns
    (up to float32 rounding of the products), cheaper when a bound is known:
    each query's ``k``-th most similar vector is at least ``floor`` (for
    example the ``k``-th of an approximate list of real rows), so only the
    products at or above it are kept and ranked, instead of FAISS's heap of
    every product. The products are one BLAS call per block of
    :data:`FLOOR_BLOCK` queries, on one thread (it runs beside other work).

    Parameters
    ----------
    queries : numpy.ndarray, shape (m, dim)
    vectors : numpy.ndarray, shape (n, dim)
    floor : numpy.ndarray, shape (m,)
        A lower bound of each query's ``k``-th similarity; lowered by
        :data:`FLOOR_SLACK` here. ``-inf`` (no bound) ranks the whole row.
    k : int
    query_ids : numpy.ndarray of int64, optional
        The row of ``vectors`` that is each query itself, left out.

    Returns
    -------
    numpy.ndarray of float32, shape (m, k)
        Most similar first; ``-inf`` where fewer than ``k`` vectors qualify.
    """
    from threadpoolctl import threadpool_limits

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    bound = np.asarray(floor, dtype=np.float32) - np.float32(FLOOR_SLACK)
    out = np.full((queries.shape[0], k), -np.inf, dtype=np.float32)
    with threadpool_limits(1, user_api="blas"):
        for start in range(0, queries.shape[0], FLOOR_BLOCK):
            sims = queries[start:start + FLOOR_BLOCK] @ vectors.T
            rows = np.arange(sims.shape[0])
            if query_ids is not None:
                sims[rows, np.asarray(query_ids[start:start + FLOOR_BLOCK], dtype=np.int64)] = -np.inf
            r, c = np.nonzero(sims >= bound[start:start + FLOOR_BLOCK, None])
            values = sims[r, c]
            order = np.lexsort((-values, r))
            r, values = r[order], values[order]
            rank = np.arange(r.size) - np.searchsorted(r, rows)[r]
            keep = rank < k
            out[start + r[keep], rank[keep]] = values[keep]
    return out


def recall_at_k(approx_sims: np.ndarray, exact_sims: np.ndarray, *, tol: float = 1e-6) -> float:
    """Share of the exact k nearest neighbours an approximate search found.

    Counted from similarities, so ties are fair: an approximate neighbour at
    least as similar as the exact k-th (within ``tol``) is a hit, whichever of
    several equally similar records it is. Equals the usual id-based
    recall@k when no two neighbours tie. Both arrays are ``(m, k)``, most
    similar first.
    """
    approx_sims = np.asarray(approx_sims, dtype=np.float64)
    exact_sims = np.asarray(exact_sims, dtype=np.float64)
    if exact_sims.size == 0:
        return 1.0
    kth = exact_sims[:, -1:]
    hits = np.minimum((approx_sims >= kth - tol).sum(axis=1), exact_sims.shape[1])
    return float(hits.sum() / exact_sims.size)


def choose_nprobe(
    index: faiss.IndexIVF,
    queries: np.ndarray,
    exact_sims: np.ndarray,
    k: int,
    *,
    query_ids: np.ndarray | None = None,
    target: float = RECALL_TARGET,
    start: int = START_NPROBE,
) -> tuple[int, float, tuple[tuple[int, float], ...]]:
    """Smallest power-of-two multiple of ``start`` cells whose measured recall@k reaches ``target``.

    Parameters
    ----------
    index : faiss.IndexIVF
        The filled index (or, for shards, any index whose search covers them all).
    queries : numpy.ndarray
        A seeded sample of query vectors.
    exact_sims : numpy.ndarray, shape (m, k)
        Their exact neighbours' similarities (:func:`exact_neighbours`).
    k : int
        Neighbours per query.
    query_ids : numpy.ndarray, optional
        The queries' own ids, excluded as in :func:`search_index`.
    target : float, default 0.95
        Recall@k to reach.
    start : int, default 8
        First ``nprobe`` tried.

    Returns
    -------
    nprobe : int
        The chosen number of cells (``nlist`` when the target is never met).
    recall : float
        Its measured recall@k.
    trials : tuple of (int, float)
        Every ``nprobe`` tried and its recall.
    """
    def recall_of(nprobe: int) -> float:
        return recall_at_k(search_index(index, queries, k, query_ids=query_ids, nprobe=nprobe)[0], exact_sims)

    return _double_until(int(start), int(index.nlist), target, recall_of)


def _double_until(
    first: int, last: int, target: float, recall_of: Callable[[int], float]
) -> tuple[int, float, tuple[tuple[int, float], ...]]:
    """Double a search-effort setting from ``first`` until ``recall_of`` it reaches ``target`` or it is ``last``."""
    if not 0.0 < target <= 1.0:
        raise ConfigError(f"the recall target must be in (0, 1], got {target}")
    value = max(1, min(first, last))
    trials: list[tuple[int, float]] = []
    while True:
        recall = recall_of(value)
        trials.append((value, round(recall, 6)))
        if recall >= target or value >= last:
            return value, recall, tuple(trials)
        value = min(2 * value, last)


def build_hnsw(x: np.ndarray, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION) -> faiss.IndexHNSWFlat:
    """An inner-product HNSW graph over normalised ``x``, built on one thread.

    Graph insertion on several threads depends on their timing, so the graph
    (and the neighbours it returns) could differ between runs; one thread
    keeps the same input giving the same output. Searches still use every
    thread.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    index = faiss.IndexHNSWFlat(x.shape[1], int(m), faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = int(ef_construction)
    add_on_one_thread(index, x)
    return index


def add_on_one_thread(index: faiss.Index, x: np.ndarray) -> None:
    """``index.add(x)`` on one OpenMP thread (graph insertion order, hence the graph, is then fixed).

    ``omp_set_num_threads`` sets the calling thread's own OpenMP setting;
    it is restored afterwards.
    """
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.add(x)
    finally:
        faiss.omp_set_num_threads(threads)


def choose_ef_search(
    index: faiss.IndexHNSW,
    queries: np.ndarray,
    exact_sims: np.ndarray,
    k: int,
    *,
    query_ids: np.ndarray | None = None,
    target: float = RECALL_TARGET,
    start: int = START_EF_SEARCH,
    limit: int = 4096,
) -> tuple[int, float, tuple[tuple[int, float], ...]]:
    """Smallest power-of-two multiple of ``start`` for ``efSearch`` whose measured recall@k reaches ``target``.

    As :func:`choose_nprobe`, for an HNSW graph; ``efSearch`` stops doubling
    at ``limit`` (then its recall is reported as measured). The index is
    left with the chosen ``efSearch``.
    """
    def recall_of(ef: int) -> float:
        index.hnsw.efSearch = ef
        return recall_at_k(search_index(index, queries, k, query_ids=query_ids)[0], exact_sims)

    return _double_until(max(int(start), 2 * (k + 1)), int(limit), target, recall_of)


def build_index(
    x: np.ndarray,
    k: int,
    *,
    kind: str = "auto",
    ivf_threshold: int = HNSW_THRESHOLD,
    nlist: int | None = None,
    nprobe: int | None = None,
    recall_target: float = RECALL_TARGET,
    recall_sample: int = 500,
    seed: int = 0,
) -> tuple[faiss.Index, IndexReport]:
    """An index over normalised ``x`` for self-excluded top-``k`` searches, with its report.

    Exact below ``ivf_threshold`` vectors (``kind="auto"``; the name is
    historical, the default is :data:`HNSW_THRESHOLD`); from there an
    HNSW graph (:func:`build_hnsw`, ``efSearch`` chosen by
    :func:`choose_ef_search`). ``kind="ivf"``: IVF trained on a seeded
    sample, ``nprobe`` chosen by :func:`choose_nprobe` unless given (then its
    recall is measured all the same); the returned IVF index has ``nprobe``
    set.
    """
    if kind not in ("auto", "flat", "ivf", "hnsw"):
        raise ConfigError(f"index must be 'auto', 'flat', 'ivf' or 'hnsw', not {kind!r}")
    n, dim = x.shape
    if kind == "flat" or (kind == "auto" and n < ivf_threshold):
        flat = faiss.IndexFlatIP(dim)
        flat.add(x)
        return flat, IndexReport(kind="flat", n_indexed=n)
    if kind in ("auto", "hnsw"):
        rng = np.random.default_rng(seed)
        graph = build_hnsw(x)
        m = min(recall_sample, n)
        queries_at = np.sort(rng.choice(n, size=m, replace=False))
        exact_sims, _ = exact_neighbours(x[queries_at], x, k, query_ids=queries_at)
        ef, recall, trials = choose_ef_search(graph, x[queries_at], exact_sims, k, query_ids=queries_at,
                                              target=recall_target)
        return graph, IndexReport(
            kind="hnsw", n_indexed=n, recall_at_k=float(recall), recall_sample=m, recall_target=recall_target,
            nprobe_trials=trials, hnsw_m=HNSW_M, ef_search=ef,
        )
    cells = int(nlist) if nlist else default_nlist(n)
    cells = max(1, min(cells, n))
    rng = np.random.default_rng(seed)
    train_n = min(n, max(TRAIN_PER_CELL * cells, 39 * cells))
    pick = np.sort(rng.choice(n, size=train_n, replace=False)) if train_n < n else np.arange(n)
    index = fill_ivf(train_ivf(x[pick], cells, seed), x)
    m = min(recall_sample, n)
    queries_at = np.sort(rng.choice(n, size=m, replace=False))
    exact_sims, _ = exact_neighbours(x[queries_at], x, k, query_ids=queries_at)
    if nprobe is None:
        chosen, recall, trials = choose_nprobe(
            index, x[queries_at], exact_sims, k, query_ids=queries_at, target=recall_target
        )
        target: float | None = recall_target
    else:
        chosen = max(1, min(int(nprobe), cells))
        sims, _ = search_index(index, x[queries_at], k, query_ids=queries_at, nprobe=chosen)
        recall, target = recall_at_k(sims, exact_sims), None
        trials = ((chosen, round(recall, 6)),)
    index.nprobe = chosen
    return index, IndexReport(
        kind="ivf", n_indexed=n, nlist=cells, nprobe=chosen, recall_at_k=float(recall), recall_sample=m,
        recall_target=target, train_size=int(train_n), nprobe_trials=trials,
    )


def knn_distance(sims: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """Mean cosine distance to the neighbours (float32 like ``sims``), clipped to [0, 2] unless ``clip=False``."""
    mean = (1.0 - np.asarray(sims, dtype=np.float32)).mean(axis=1)
    return np.clip(mean, 0.0, 2.0) if clip else mean


def rarity_from_distances(reference_distances: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of ``distances`` among ``reference_distances`` (1 = rarest).

    Parameters
    ----------
    reference_distances : numpy.ndarray
        The reference's own leave-one-out k-NN distances, sorted ascending
        (shards' arrays can be concatenated and sorted once).
    distances : numpy.ndarray
        The records' k-NN distances to the reference.

    Returns
    -------
    numpy.ndarray of float64
        In [0, 1].
    """
    ref = np.asarray(reference_distances)
    below = np.searchsorted(ref, distances, side="left")
    upto = np.searchsorted(ref, distances, side="right")
    return (below + upto) / (2.0 * ref.size)
