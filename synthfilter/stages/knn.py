"""The k-NN part of the tail stage: distances, rarity and embedding duplicate clusters.

One function, :func:`knn_tails`, so that the index behind it can change (a
sharded train / fill / search) without touching the stages or the engines.

Re-runs re-use earlier work (:mod:`synthfilter.knn_cache`): the result for a
corpus is stored under a digest of its embedding rows and the parameters, so
an unchanged corpus gets the stored columns back, bit for bit; a corpus that
shares most rows with a stored one (new rows up to
:data:`~synthfilter.knn_cache.MAX_NEW_SHARE` of it, removed ones up to
:data:`~synthfilter.knn_cache.MAX_REMOVED_SHARE` of the stored index, in any
order) has the new rows merged into the stored k-NN lists and the lists that
named a removed record searched again
(:func:`~synthfilter.knn_cache.extend_graph`). Anything else is computed cold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from synthfilter.errors import ConfigError
from synthfilter.knn_cache import (
    MAX_NEW_SHARE,
    KnnCache,
    KnnState,
    extend_graph,
    params_key,
    row_digests,
    rows_key,
    scores_from_graph,
)
from synthfilter.knn_index import HNSW_THRESHOLD, normalise_vectors
from synthfilter.tails import TailScorer

#: Parameters that do not change the k-NN result (the text clusters are the caller's).
_NOT_KEYED = ("text_dup_threshold", "exact_duplicates")


@dataclass
class KnnTails:
    """What :func:`knn_tails` finds.

    Attributes
    ----------
    knn_distance, rarity : numpy.ndarray of float64
        As in :mod:`synthfilter.tails`.
    embedding_clusters : numpy.ndarray of int64
        Clusters of records within ``dup_threshold`` cosine among their k-NN.
    info : dict
        Parameters, what rarity is measured against, the index report, and
        how earlier work was re-used: ``reuse``, a mapping of ``mode``
        (``"none"``, ``"exact"`` or ``"incremental"``), ``new_rows``,
        ``reused_rows``, ``recall_at_k`` (of the lists against exact search
        on a seeded sample; ``None`` when the search was exact) and, for an
        incremental run, ``recall_at_k_new_rows`` and the sample sizes; when
        a cold build was chosen although a cache was used, ``note`` says why.
        Everything that differs between a cold and a warm run of the same
        input is under ``reuse``.
    """

    knn_distance: np.ndarray
    rarity: np.ndarray
    embedding_clusters: np.ndarray
    info: dict[str, Any]


def knn_tails(embeddings: np.ndarray, reference: np.ndarray | None = None, *, k: int = 10,
              dup_threshold: float = 0.95, text_dup_threshold: float | None = 0.8, index: str = "auto",
              seed: int = 0, nlist: int | None = None, nprobe: int | None = None,
              cache: bool | None = None, cache_dir: str | Path | None = None) -> KnnTails:
    """k-NN distances and rarity against ``reference`` (else the corpus), and embedding clusters.

    Parameters
    ----------
    embeddings : numpy.ndarray, shape (n, dim)
        The corpus's embeddings.
    reference : numpy.ndarray, optional
        A gold reference's embeddings.
    k, dup_threshold, index, seed
        See :class:`~synthfilter.tails.TailScorer`.
    nlist, nprobe : int, optional
        IVF settings (see :class:`~synthfilter.tails.TailScorer`).
    text_dup_threshold : float or None
        Only recorded in the parameters (the text clusters are the caller's).
    cache : bool, optional
        Re-use and store results in the k-NN cache; ``None`` (the default)
        means yes, as the embedding and detector caches do. A cache folder
        that cannot be used gives one warning line and the run goes on uncached.
    cache_dir : str or Path, optional
        The cache's folder; ``default_cache_dir() / "knn"`` by default.

    Returns
    -------
    KnnTails

    Notes
    -----
    Re-use, when the cache is on:

    * the same rows in the same order (and the same parameters and
      reference): the stored result, identical to the cold run's;
    * without a reference, the rows of a stored corpus, some of them removed
      (the index's vectors of removed records at most ``MAX_REMOVED_SHARE``,
      30 %), plus at most ``MAX_NEW_SHARE`` (30 %) of new rows, the stored
      index being of the kind a cold build would choose for the new corpus:
      incremental (:func:`~synthfilter.knn_cache.extend_graph`). With an
      exact index the result is the exact k-NN graph, like the cold build's;
      with HNSW or IVF it is approximate in its own way, and is kept only
      when its recall@k, measured on a seeded sample as the cold build's is,
      reaches the recall target; else the run is cold;
    * anything else (more new or removed rows, a changed reference or
      parameter, a reference with new rows): a cold build, which is stored.
    """
    scorer = TailScorer(k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold,
                        index=index, seed=seed, nlist=nlist, nprobe=nprobe)
    params = scorer.get_params()
    if reference is None and embeddings.shape[0] < 2:
        raise ConfigError("rarity needs at least 2 records, or a --reference")
    embeddings = np.asarray(embeddings)
    store = KnnCache(cache_dir) if cache is None or cache else None
    if store is None or embeddings.ndim != 2 or embeddings.shape[0] == 0:
        return _cold(scorer, embeddings, reference, params)[0]  # (which rejects a malformed array)
    digests = row_digests(embeddings)
    keyed = {name: value for name, value in params.items() if name not in _NOT_KEYED}
    pkey = params_key(keyed, embeddings.shape[1], reference)
    rkey = rows_key(digests)
    stored = store.exact(pkey, rkey)
    if stored is not None and stored.knn_distance.shape[0] == digests.shape[0]:
        return _from_stored(stored, params)
    result, state, note = None, None, "no stored state of these parameters shares enough of these rows"
    if reference is None:
        result, state, note = _incremental(store, pkey, digests, embeddings, params)
    if result is None:
        result, state = _cold(scorer, embeddings, reference, params, digests)
        result.info["reuse"]["note"] = note
    store.write(pkey, rkey, state)
    return result


def _reuse_info(info: dict[str, Any], mode: str, new_rows: int, reused_rows: int,
                recall: float | None, **extra: Any) -> dict[str, Any]:
    info["reuse"] = {"mode": mode, "new_rows": int(new_rows), "reused_rows": int(reused_rows),
                     "recall_at_k": None if recall is None else float(recall), **extra}
    return info


def _from_stored(state: KnnState, params: dict[str, Any]) -> KnnTails:
    """The stored result of the very same rows."""
    info = {**state.info, "params": params}
    n = state.knn_distance.shape[0]
    _reuse_info(info, "exact", 0, n, state.info.get("reuse", {}).get("recall_at_k"))
    return KnnTails(knn_distance=state.knn_distance, rarity=state.rarity, embedding_clusters=state.clusters,
                    info=info)


def _cold(scorer: TailScorer, embeddings: np.ndarray, reference: np.ndarray | None, params: dict[str, Any],
          digests: np.ndarray | None = None) -> tuple[KnnTails, KnnState | None]:
    """Build the index and score; with ``digests``, also the state to store."""
    if reference is not None:
        scorer.fit(reference)
        table = _without_texts(scorer).score(embeddings)
        against = "reference"
    else:
        scorer.fit(embeddings)
        table = _without_texts(scorer).score(embeddings, is_reference=True)
        against = "corpus"
    report = scorer.index_report_.to_dict()
    info = {"params": params, "rarity_against": against, "index": report}
    n = table.height
    _reuse_info(info, "none", n, 0, report.get("recall_at_k"))
    result = KnnTails(knn_distance=table["knn_distance"].to_numpy(), rarity=table["rarity"].to_numpy(),
                      embedding_clusters=table["dup_cluster"].to_numpy(), info=info)
    if digests is None:
        return result, None
    state = KnnState(knn_distance=result.knn_distance, rarity=result.rarity, clusters=result.embedding_clusters,
                     info=info)
    if reference is None:
        # The corpus's own self-excluded k-NN lists, computed by fit (kept for the next run's increment).
        sims, ids = scorer._reference_graph
        state.id_digests, state.sims, state.ids = digests, sims, ids
        state.row_ids = np.arange(n, dtype=np.int64)
        state.index_bytes = faiss.serialize_index(scorer.index_)
    return result, state


def _cold_kind(kind: str, n: int) -> str:
    """The index kind a cold build over ``n`` rows uses."""
    if kind == "auto":
        return "flat" if n < HNSW_THRESHOLD else "hnsw"
    return kind


def _incremental(store: KnnCache, pkey: str, digests: np.ndarray, embeddings: np.ndarray,
                 params: dict[str, Any]) -> tuple[KnnTails | None, KnnState | None, str]:
    """The result merged from a stored state holding some of the rows, or ``(None, None, why not)``."""
    found = store.candidates(pkey, digests)
    if found is None:
        return None, None, "no stored state of these parameters shares enough of these rows"
    state, where = found
    n, k = digests.shape[0], int(params["k"])
    was_live = np.zeros(where.shape[0], dtype=bool)
    was_live[state.row_ids] = True
    new = n - int(np.count_nonzero((where >= 0) & was_live))  # (a record back after removal is new again)
    kind = state.info.get("index", {}).get("kind")
    if new > MAX_NEW_SHARE * n:
        return None, None, f"{new} new rows of {n} is more than {MAX_NEW_SHARE:.0%}"
    if kind != _cold_kind(params["index"], n):
        return None, None, f"the stored index is {kind}; {n} rows take {_cold_kind(params['index'], n)}"
    if state.sims.shape[1] != k:
        return None, None, "the stored corpus has fewer than k + 1 rows"
    index = store.index(state, f"{pkey}-…")
    if index is None:
        return None, None, "the stored index is unreadable"
    _search_settings(index, state.info["index"])
    x = normalise_vectors(embeddings, "embeddings")
    ext = extend_graph(x, state, index, where, k, recall_sample=params["recall_sample"],
                       seed=params["seed"])
    if kind != "flat" and ext.recall < params["recall_target"]:
        return None, None, (f"the incremental lists' recall@{k} {ext.recall:.3f} is under the target "
                            f"{params['recall_target']}")
    distance, rarity, clusters = scores_from_graph(ext.sims, ext.ids, params["dup_threshold"])
    report = {**state.info["index"], "n_indexed": n}
    if kind != "flat":
        report.update(recall_at_k=ext.recall, recall_sample=ext.recall_sample)
    info = {"params": params, "rarity_against": "corpus", "index": report}
    _reuse_info(info, "incremental", new, n - new, ext.recall, recall_sample=ext.recall_sample,
                recall_at_k_new_rows=ext.recall_new, recall_sample_new_rows=ext.recall_sample_new,
                removed_rows=int(np.count_nonzero(where[state.row_ids] < 0)), repaired_rows=ext.repaired,
                removed_in_index=ext.removed)
    result = KnnTails(knn_distance=distance, rarity=rarity, embedding_clusters=clusters, info=info)
    n_ids = where.shape[0] + ext.new_rows.size  # removed rows keep their index ids, with empty lists
    sims_by_id = np.full((n_ids, k), -np.inf, dtype=ext.sims.dtype)
    ids_by_id = np.full((n_ids, k), -1, dtype=ext.ids.dtype)
    sims_by_id[ext.id_of_row] = ext.sims
    ids_by_id[ext.id_of_row] = np.where(ext.ids >= 0, ext.id_of_row[np.maximum(ext.ids, 0)], -1)
    new_state = KnnState(
        knn_distance=distance, rarity=rarity, clusters=clusters, info=info,
        id_digests=np.concatenate([state.id_digests, digests[ext.new_rows]]), sims=sims_by_id, ids=ids_by_id,
        row_ids=ext.id_of_row, index_bytes=faiss.serialize_index(ext.index),
    )
    return result, new_state, ""


def _search_settings(index: faiss.Index, report: dict[str, Any]) -> None:
    """Give a read index the search effort its report says the cold build chose."""
    if isinstance(index, faiss.IndexHNSW) and report.get("ef_search"):
        index.hnsw.efSearch = int(report["ef_search"])
    elif isinstance(index, faiss.IndexIVF) and report.get("nprobe"):
        index.nprobe = int(report["nprobe"])


def _without_texts(scorer: TailScorer) -> TailScorer:
    # The text-based edges are added by the caller from per-record keys.
    scorer.exact_duplicates, scorer.text_dup_threshold = False, None
    return scorer
