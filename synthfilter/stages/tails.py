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

    def run(self, records: RecordSet, ctx: GlobalContext) -> Columns:
        """Tail columns for every record, in order."""
        cols = records.columns
        sharded = getattr(records, "sharded", False)
        if sharded:  # the records are spread over workers: the same k-NN, shard by shard
            from synthfilter.stages.sharded import sharded_knn_tails

            knn = sharded_knn_tails(records, ctx.reference, k=self.k, dup_threshold=self.dup_threshold,
                                    text_dup_threshold=self.text_dup_threshold, index=self.index, seed=ctx.seed,
                                    nlist=self.nlist, nprobe=self.nprobe)
        else:
            reference = None if ctx.reference is None else ctx.reference.columns["embedding"]
            knn = knn_tails(cols["embedding"], reference, k=self.k, dup_threshold=self.dup_threshold,
                            text_dup_threshold=self.text_dup_threshold, index=self.index, seed=ctx.seed,
                            nlist=self.nlist, nprobe=self.nprobe)
        ctx.info["tails"] = knn.info
        n = knn.rarity.size
        rows, targets = [], []
        labels = knn.embedding_clusters
        _, first = np.unique(labels, return_index=True)
        rows.append(np.arange(n, dtype=np.int64))
        targets.append(first[np.searchsorted(np.unique(labels), labels)].astype(np.int64))
        r, c = textdup.exact_pairs(cols["norm_key"])
        rows.append(r)
        targets.append(c)
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
        clusters = components(n, np.concatenate(rows), np.concatenate(targets))
        first_seen = np.zeros(n, dtype=bool)
        first_seen[np.unique(clusters, return_index=True)[1]] = True
        return {
            "knn_distance": knn.knn_distance.astype(np.float64),
            "rarity": knn.rarity.astype(np.float64),
            "dup_cluster": clusters,
            "is_near_duplicate": ~first_seen,
        }


def components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Connected components of an edge list, numbered 0, 1, ... in order of each one's first node."""
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_pos, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_pos))
    return order[inverse.ravel()].astype(np.int64)
