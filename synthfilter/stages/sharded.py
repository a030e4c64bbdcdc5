"""The tail stage's global steps over a sharded record set: k-NN and MinHash LSH grouping.

Written against the generic primitives of
:class:`~synthfilter.engine.base.RecordSet` (``map_shards``, ``map_kept``,
``group_by_key``), so they run wherever the engine keeps the shards (Ray
tasks beside the object store, or in-process for the local engine), and the
driver holds only per-record scalars (distances, positions) and edge lists,
never an ``(n, dim)`` matrix or the ``(n, bands)`` band keys.

k-NN (:func:`sharded_knn_tails`), the steps of :mod:`synthfilter.knn_index`:

1. below ``IVF_THRESHOLD`` vectors (``index="auto"``) or with
   ``index="flat"``, each shard keeps its normalised vectors; otherwise an
   IVF index (:func:`~synthfilter.knn_index.train_ivf`) is trained once
   here on the seeded sample :func:`~synthfilter.knn_index.build_index`
   draws (the sample's rows are fetched from the shards), and each shard
   fills a copy of it with its vectors under their corpus positions
   (:func:`~synthfilter.knn_index.fill_ivf`). ``"hnsw"`` (and ``"auto"``
   from the threshold) becomes IVF: HNSW graphs cannot be merged.
2. ``nprobe`` is the least (8, 16, 32, ...) whose recall@k, measured on the
   same seeded sample of queries against exact search (both searched shard
   by shard and merged), reaches the target, as
   :func:`~synthfilter.knn_index.choose_nprobe` chooses it;
3. each shard's queries are searched against each shard's index, one task
   per pair (:meth:`~synthfilter.engine.base.RecordSet.map_shard_pairs`:
   no task holds more than one shard of the index; the indexes and the
   partial lists travel through the engine's store, not the driver), the
   per-shard top ``k + 1`` lists merged per query shard
   (:func:`~synthfilter.knn_index.merge_neighbours`) and the query's own
   entry dropped; only each record's mean distance and its near-duplicate
   edges (cosine >= ``dup_threshold`` among its k-NN) come back;
4. rarity is the percentile of each distance among the sorted reference
   distances (:func:`~synthfilter.knn_index.rarity_from_distances`).

With the same seed the sample, the centroids, the chosen ``nprobe`` and the
similarities are those of the single-index path (exact search and IVF both
return exact similarities, and a query visits the same cells in every
shard), so distances, rarity and clusters equal the local engine's whenever
the local engine builds the same kind of index.

LSH grouping (:func:`sharded_candidate_pairs`): every active record's
``(band, key)`` pairs are hash-partitioned into buckets
(:meth:`~synthfilter.engine.base.RecordSet.group_by_key`); each bucket
emits the pairs of records sharing a band key, so the pairs are exactly
those of :func:`synthfilter.stages.textdup.candidate_pairs`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faiss
import numpy as np

from synthfilter.engine.base import Columns, RecordSet
from synthfilter.errors import ConfigError
from synthfilter.knn_index import (
    IVF_THRESHOLD,
    RECALL_TARGET,
    START_NPROBE,
    TRAIN_PER_CELL,
    IndexReport,
    _double_until,
    default_nlist,
    drop_self,
    exact_neighbours,
    fill_ivf,
    knn_distance,
    merge_neighbours,
    normalise_vectors,
    rarity_from_distances,
    recall_at_k,
    search_index,
    train_ivf,
)
from synthfilter.stages.knn import KnnTails

__all__ = ["ShardedIndex", "build_sharded_index", "search_sharded", "sharded_candidate_pairs", "sharded_knn_tails"]

#: Column holding the vectors.
EMBEDDING = "embedding"
_EMPTY = np.zeros(0, dtype=np.int64)
#: Odd 64-bit constant that mixes the band number into a bucket key.
_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)


class ShardedIndex:
    """A k-NN index kept shard by shard by the engine.

    Attributes
    ----------
    kept : Kept
        Per shard: its normalised vectors and positions (exact search), or a
        serialised IVF index filled from the shared quantizer.
    report : IndexReport
        How it was built and its measured recall.
    nprobe : int or None
        IVF cells visited per query.
    """

    def __init__(self, kept: Any, report: IndexReport, nprobe: int | None) -> None:
        self.kept, self.report, self.nprobe = kept, report, nprobe


# ---------------------------------------------------------------------------- per-shard functions
def _vectors(part: Columns, column: str) -> np.ndarray | None:
    return normalise_vectors(part[column], column) if part["pos"].size else None


def _fill(part: Columns, *, column: str, trained: np.ndarray | None) -> Any:
    """A shard's share of the index: ``(vectors, positions)``, or a filled IVF index (serialised)."""
    x = _vectors(part, column)
    if x is None:
        return None
    if trained is None:
        return x, part["pos"]
    return faiss.serialize_index(fill_ivf(faiss.deserialize_index(trained), x, part["pos"]))


def _take(part: Columns, *, column: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The shard's normalised rows at ``positions`` (sorted)."""
    keep = np.isin(part["pos"], positions)
    if not keep.any():
        return None
    return part["pos"][keep], normalise_vectors(part[column][keep], column)


def _exact_sample(part: Columns, *, column: str, queries: np.ndarray, kk: int) -> Any:
    """Brute-force top ``kk`` of ``queries`` among the shard's vectors (corpus positions as ids)."""
    x = _vectors(part, column)
    return None if x is None else exact_neighbours(queries, x, kk, vector_ids=part["pos"])


def _trials(value: Any, *, queries: np.ndarray, kk: int, nprobes: list[int]) -> Any:
    """Top ``kk`` of ``queries`` in one shard's IVF index at each ``nprobe``."""
    if value is None:
        return None
    index = faiss.deserialize_index(value)
    return [search_index(index, queries, kk, nprobe=p) for p in nprobes]


def _aligned_exact(queries: np.ndarray, positions: np.ndarray, n_queries: int, vectors: np.ndarray,
                   ids: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top ``kk``, with the queries in the blocks a whole-corpus search would use.

    FAISS computes exact inner products with BLAS on blocks of
    ``distance_compute_blas_query_bs`` (4,096) queries, and the last bits of
    a product depend on the block's size and the query's place in it (not on
    the other queries, nor on how the vectors are split). Each query is
    therefore searched at its place in its whole-corpus block (the block's
    other places filled with zeros), so the similarities are bit for bit
    those of one search of every query (:func:`~synthfilter.knn_index.search_index`).
    """
    block = max(1, int(faiss.cvar.distance_compute_blas_query_bs))
    sims = np.empty((queries.shape[0], min(kk, vectors.shape[0])), dtype=np.float32)
    out_ids = np.empty(sims.shape, dtype=np.int64)
    which = positions // block
    for b in np.unique(which):
        sel = np.flatnonzero(which == b)
        start = int(b) * block
        size = min(block, n_queries - start)
        at = positions[sel] - start
        if sel.size == size:
            padded = queries[sel]
        else:
            padded = np.zeros((size, queries.shape[1]), dtype=np.float32)
            padded[at] = queries[sel]
        s, i = exact_neighbours(padded, vectors, kk, vector_ids=ids)
        sims[sel], out_ids[sel] = s[at], i[at]
    return sims, out_ids


def _search_one(part: Columns, value: Any, *, column: str, kk: int, nprobe: int | None, n_queries: int) -> Any:
    """One shard's queries against one shard's index: positions and their top ``kk`` there (positions as ids)."""
    q = _vectors(part, column)
    if q is None:
        return None
    pos = part["pos"]
    if value is None:  # an empty index shard
        return pos, np.zeros((pos.size, 0), np.float32), np.zeros((pos.size, 0), np.int64)
    if isinstance(value, tuple):
        vectors, ids = value
        return (pos, *_aligned_exact(q, pos, n_queries, vectors, ids, kk))
    return (pos, *search_index(faiss.deserialize_index(value), q, kk, nprobe=nprobe))


def _merge_part(found: list[Any], *, kk: int, exclude_self: bool, dup_threshold: float | None
                ) -> tuple[np.ndarray, ...]:
    """One shard's per-index top lists merged: positions, mean distances (unclipped), near-duplicate edges."""
    found = [f for f in found if f is not None]
    if not found:
        return _EMPTY, np.zeros(0, np.float32), _EMPTY, _EMPTY
    pos = found[0][0]
    sims, ids = merge_neighbours([(s, i) for _, s, i in found], kk)
    if exclude_self:
        sims, ids = drop_self(sims, ids, pos)
    dist = knn_distance(sims, clip=False)
    if dup_threshold is None:
        return pos, dist, _EMPTY, _EMPTY
    mask = (sims >= dup_threshold) & (ids >= 0)
    return pos, dist, np.repeat(pos, mask.sum(axis=1)), ids[mask].astype(np.int64)


def _emit_bands(part: Columns, *, active: np.ndarray) -> tuple[np.ndarray, Columns]:
    """``(band, key, position)`` of each active record's band keys; bucket key mixes band and key."""
    on = active[part["pos"]]
    keys = np.asarray(part["band_keys"], dtype=np.uint64)[on]
    pos = part["pos"][on]
    bands = keys.shape[1] if keys.ndim == 2 else 0
    band = np.tile(np.arange(bands, dtype=np.uint64), pos.size)
    key = keys.reshape(-1)
    return key ^ (band * _BAND_MIX), {"band": band.astype(np.int32), "key": key, "pos": np.repeat(pos, bands)}


def _pairs_in_bucket(payload: Columns, *, n: int) -> np.ndarray:
    """Codes ``row * n + col`` (``row > col``) of the pairs sharing a ``(band, key)`` in one bucket."""
    band, key, pos = payload["band"], payload["key"], payload["pos"]
    if pos.size < 2:
        return _EMPTY
    order = np.lexsort((pos, key, band))
    band, key, pos = band[order], key[order], pos[order]
    starts = np.flatnonzero(np.r_[True, (band[1:] != band[:-1]) | (key[1:] != key[:-1])])
    sizes = np.diff(np.r_[starts, pos.size])
    codes = []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
        members = pos[start:start + size]  # ascending: sorted by position within the group
        i, j = np.triu_indices(size, 1)
        codes.append(members[j] * n + members[i])
    return np.unique(np.concatenate(codes)) if codes else _EMPTY


# ---------------------------------------------------------------------------- global functions
def _size(records: RecordSet) -> int:
    return int(records.frame.height)  # type: ignore[attr-defined]


def _take_rows(records: RecordSet, positions: np.ndarray, column: str) -> np.ndarray:
    """Normalised rows at sorted ``positions``, gathered from the shards (a sample, never the whole column)."""
    found = [r for r in records.map_shards(partial(_take, column=column, positions=positions), [column])
             if r is not None]
    pos = np.concatenate([p for p, _ in found])
    rows = np.concatenate([x for _, x in found])
    return rows[np.argsort(pos, kind="stable")]


def _merged_drop(parts: list[tuple[np.ndarray, np.ndarray]], kk: int, query_ids: np.ndarray) -> np.ndarray:
    sims, ids = merge_neighbours(parts, kk)
    return drop_self(sims, ids, query_ids)[0]


def build_sharded_index(records: RecordSet, k: int, *, index: str = "auto", nlist: int | None = None,
                        nprobe: int | None = None, recall_target: float = RECALL_TARGET, recall_sample: int = 500,
                        seed: int = 0, ivf_threshold: int = IVF_THRESHOLD, column: str = EMBEDDING) -> ShardedIndex:
    """An index over ``records``' vectors for self-excluded top-``k`` searches, kept shard by shard.

    Parameters
    ----------
    records : RecordSet
        Records with ``column``.
    k : int
        Neighbours per query.
    index : {"auto", "flat", "ivf", "hnsw"}
        As in :func:`~synthfilter.knn_index.build_index`; ``"hnsw"`` and
        ``"auto"`` from ``ivf_threshold`` vectors build IVF.
    nlist, nprobe, recall_target, recall_sample, seed, ivf_threshold
        As in :func:`~synthfilter.knn_index.build_index` (the same seeded
        training sample and recall queries).
    column : str, default "embedding"
        The vectors.

    Returns
    -------
    ShardedIndex
    """
    if index not in ("auto", "flat", "ivf", "hnsw"):
        raise ConfigError(f"index must be 'auto', 'flat', 'ivf' or 'hnsw', not {index!r}")
    n = _size(records)
    if index == "flat" or (index == "auto" and n < ivf_threshold):
        kept = records.map_shards(partial(_fill, column=column, trained=None), [column], keep=True)
        return ShardedIndex(kept, IndexReport(kind="flat", n_indexed=n), None)
    cells = max(1, min(int(nlist) if nlist else default_nlist(n), n))
    rng = np.random.default_rng(seed)
    train_n = min(n, max(TRAIN_PER_CELL * cells, 39 * cells))
    pick = np.sort(rng.choice(n, size=train_n, replace=False)) if train_n < n else np.arange(n)
    trained = faiss.serialize_index(train_ivf(_take_rows(records, pick, column), cells, seed))
    kept = records.map_shards(partial(_fill, column=column, trained=trained), [column], keep=True)
    m = min(recall_sample, n)
    queries_at = np.sort(rng.choice(n, size=m, replace=False))
    queries = _take_rows(records, queries_at, column)
    kk = k + 1
    exact = [r for r in records.map_shards(partial(_exact_sample, column=column, queries=queries, kk=kk), [column])
             if r is not None]
    exact_sims = _merged_drop(exact, kk, queries_at)
    if nprobe is None:
        tried, value = [], max(1, min(START_NPROBE, cells))
        while True:
            tried.append(value)
            if value >= cells:
                break
            value = min(2 * value, cells)
    else:
        tried = [max(1, min(int(nprobe), cells))]
    # Every nprobe the doubling could try is measured in one pass over the shards (500 queries each);
    # the choice below is then the doubling's own, as choose_nprobe makes it on one index.
    found = [t for t in records.map_kept(kept, partial(_trials, queries=queries, kk=kk, nprobes=tried))
             if t is not None]
    recalls = {p: recall_at_k(_merged_drop([t[j] for t in found], kk, queries_at), exact_sims)
               for j, p in enumerate(tried)}
    if nprobe is None:
        chosen, recall, trials = _double_until(START_NPROBE, cells, recall_target, recalls.__getitem__)
        target: float | None = recall_target
    else:
        chosen, recall, target = tried[0], recalls[tried[0]], None
        trials = ((chosen, round(recall, 6)),)
    report = IndexReport(kind="ivf", n_indexed=n, nlist=cells, nprobe=chosen, recall_at_k=float(recall),
                         recall_sample=m, recall_target=target, train_size=int(train_n), nprobe_trials=trials)
    return ShardedIndex(kept, report, chosen)


def search_sharded(queries: RecordSet, index: ShardedIndex, k: int, *, exclude_self: bool,
                   dup_threshold: float | None = None, column: str = EMBEDDING
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each record's mean k-NN cosine distance in ``index``, and its near-duplicate edges.

    Parameters
    ----------
    queries : RecordSet
        Records with ``column``, searched shard by shard.
    index : ShardedIndex
        From :func:`build_sharded_index` (of ``queries`` itself when ``exclude_self``).
    k : int
        Neighbours.
    exclude_self : bool
        The queries are the indexed records: drop each one's own entry.
    dup_threshold : float, optional
        Cosine similarity from which a neighbour is an edge.

    Returns
    -------
    distance : numpy.ndarray of float32, shape (n,)
        Mean cosine distance to the k neighbours, not clipped.
    rows, cols : numpy.ndarray of int64
        Edges (query, neighbour) at or above ``dup_threshold``.
    """
    kk = k + int(exclude_self)
    search = partial(_search_one, column=column, kk=kk, nprobe=index.nprobe, n_queries=_size(queries))
    merge = partial(_merge_part, kk=kk, exclude_self=exclude_self, dup_threshold=dup_threshold)
    parts = queries.map_shard_pairs(search, [column], index.kept, merge)
    distance = np.zeros(_size(queries), dtype=np.float32)
    for pos, dist, _, _ in parts:
        distance[pos] = dist
    rows = np.concatenate([_EMPTY, *[p[2] for p in parts]])
    cols = np.concatenate([_EMPTY, *[p[3] for p in parts]])
    return distance, rows, cols


def sharded_knn_tails(records: RecordSet, reference: RecordSet | None = None, *, k: int = 10,
                      dup_threshold: float = 0.95, text_dup_threshold: float | None = 0.8, index: str = "auto",
                      seed: int = 0, nlist: int | None = None, nprobe: int | None = None) -> KnnTails:
    """:func:`synthfilter.stages.knn.knn_tails` over a sharded record set.

    Parameters
    ----------
    records : RecordSet
        The corpus, with an ``embedding`` column (left where it is).
    reference : RecordSet, optional
        A gold reference's records: rarity is measured against it.
    k, dup_threshold, text_dup_threshold, index, seed, nlist, nprobe
        As in :func:`~synthfilter.stages.knn.knn_tails`.

    Returns
    -------
    KnnTails
        Its ``info`` also says how many shards were searched and which index
        was asked for.
    """
    from synthfilter.stages.tails import components
    from synthfilter.tails import TailScorer

    params = TailScorer(k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, index=index,
                        seed=seed, nlist=nlist, nprobe=nprobe).get_params()
    options = {"index": index, "nlist": nlist, "nprobe": nprobe, "seed": seed}
    n = _size(records)
    if reference is None:
        if n < 2:
            raise ConfigError("rarity needs at least 2 records, or a --reference")
        built = build_sharded_index(records, k, **options)
        own, rows, cols = search_sharded(records, built, k, exclude_self=True, dup_threshold=dup_threshold)
        reference_distance, distance, against = np.sort(own), np.clip(own, 0.0, 2.0), "corpus"
    else:
        if _size(reference) < 2:
            raise ConfigError("the reference needs at least 2 records to measure rarity")
        built = build_sharded_index(reference, k, **options)
        ref_own, _, _ = search_sharded(reference, built, k, exclude_self=True)
        reference_distance = np.sort(ref_own)
        dist, _, _ = search_sharded(records, built, k, exclude_self=False)
        distance, against = np.clip(dist, 0.0, 2.0), "reference"
        if n > 1:
            own_index = build_sharded_index(records, k, **options)
            _, rows, cols = search_sharded(records, own_index, k, exclude_self=True, dup_threshold=dup_threshold)
        else:
            rows = cols = _EMPTY
    rarity = rarity_from_distances(reference_distance, distance)
    info = {"params": params, "rarity_against": against, "index": built.report.to_dict(),
            "sharded": {"shards": len(built.kept), "index_asked": index}}
    return KnnTails(knn_distance=distance.astype(np.float64), rarity=np.asarray(rarity, dtype=np.float64),
                    embedding_clusters=components(n, rows, cols), info=info)


def sharded_candidate_pairs(records: RecordSet, active: np.ndarray, *, buckets: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`synthfilter.stages.textdup.candidate_pairs` as a distributed group-by on band keys.

    Parameters
    ----------
    records : RecordSet
        Records with a ``band_keys`` column (left where it is).
    active : numpy.ndarray of bool, shape (n,)
        Records that take part (the first of each normal form, not blank).
    buckets : int, optional
        Hash buckets (the engine's choice by default).

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Pairs ``rows > cols`` sharing a band key, each once, sorted: the same
        arrays as :func:`~synthfilter.stages.textdup.candidate_pairs`.
    """
    n = int(active.size)
    found = records.group_by_key(partial(_emit_bands, active=np.asarray(active, dtype=bool)), ["band_keys"],
                                 partial(_pairs_in_bucket, n=n), buckets=buckets)
    code = np.unique(np.concatenate([_EMPTY, *found]))
    return (code // n).astype(np.int64), (code % n).astype(np.int64)
