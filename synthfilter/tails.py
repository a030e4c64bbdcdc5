"""Where a record sits in the distribution: k-NN rarity and near-duplicates.

:class:`TailScorer` puts L2-normalised embeddings in a FAISS inner-product
index and computes one k-nearest-neighbour graph that serves every column it
adds. The search is exact below ``ivf_threshold`` (200,000) vectors. From
there on it is an HNSW graph (or, with ``index="ivf"``, an IVF index with
``2 * sqrt(n)`` cells trained on a seeded sample), and its search effort
(``efSearch``, or the cells visited per query, ``nprobe``) is the least whose
recall@k, measured against brute force on a seeded sample of queries,
reaches ``recall_target`` (0.95); the choice and the measured recall are
reported (``index_report_``). How far that is from exact search
depends on the embeddings: ``benchmarks/tails/bench_index.py`` measures it. The index's steps are
plain functions in :mod:`synthfilter.knn_index`, where the choice is argued,
so that a distributed engine can train once, fill and search shard by shard.

``knn_distance`` (float, [0, 2])
    Mean cosine distance to the record's ``k`` nearest neighbours (itself
    excluded), in the corpus or in the reference.
``rarity`` (float, [0, 1], 1 = rarest)
    Percentile of ``knn_distance`` among the reference's own leave-one-out
    k-NN distances (the corpus itself when no reference is given), mid-ranked.
``dup_cluster`` (int64)
    Cluster id shared by near-duplicates: records whose cosine similarity is
    at least ``dup_threshold`` among each other's ``k`` nearest neighbours,
    plus exact duplicates by normalised text and texts whose character-shingle
    Jaccard similarity is at least ``text_dup_threshold``
    (:mod:`synthfilter.neardup`), joined transitively. Numbered
    0, 1, 2, ... in order of each cluster's first row.
``is_near_duplicate`` (bool)
    True for every member of a cluster except its representative, the
    cluster's first row (deterministic for a given row order).
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthfilter.base import ParamsMixin
from synthfilter.errors import ConfigError
from synthfilter.knn_index import (
    HNSW_THRESHOLD,
    RECALL_TARGET,
    IndexReport,
    build_index,
    knn_distance,
    normalise_vectors,
    rarity_from_distances,
    search_index,
)
from synthfilter.neardup import near_duplicate_pairs
from synthfilter.normalise import text_fingerprints

TAIL_COLUMNS = ("knn_distance", "rarity", "dup_cluster", "is_near_duplicate")
__all__ = ["TAIL_COLUMNS", "IndexReport", "TailScorer"]


class TailScorer(ParamsMixin):
    """FAISS k-NN rarity, density and near-duplicate clusters.

    Follows the scikit-learn contract: parameters in ``__init__``, learned
    state (the reference index and its leave-one-out distances) in ``fit``.

    Parameters
    ----------
    k : int, default 10
        Neighbours per record.
    dup_threshold : float, default 0.95
        Cosine similarity at or above which two records are near-duplicates.
    exact_duplicates : bool, default True
        Also join records whose normalised texts are equal (needs ``texts``).
    text_dup_threshold : float or None, default 0.8
        Also join records whose character 5-gram shingle sets have a Jaccard
        similarity at least this high (needs ``texts``; MinHash LSH, see
        :mod:`synthfilter.neardup`): small edits that move a content word,
        which embeddings can put under ``dup_threshold``; equal normalised
        texts are joined by it too, whatever ``exact_duplicates`` says.
        ``None`` turns it off.
    index : {"auto", "flat", "ivf", "hnsw"}, default "auto"
        Exact search, IVF, an HNSW graph, or exact search below
        ``ivf_threshold`` vectors and HNSW from there.
    ivf_threshold : int, default 200_000
        Index size from which ``"auto"`` leaves exact search for HNSW (the
        name is historical): below it exact search costs no more CPU than
        building and searching the graph (see :data:`~synthfilter.knn_index.HNSW_THRESHOLD`).
    nlist : int, optional
        IVF cells; ``2 * sqrt(n)`` by default.
    nprobe : int, optional
        IVF cells visited per query; by default the fewest (8, 16, 32, ...)
        whose recall@k measured on ``recall_sample`` queries reaches
        ``recall_target`` (see :mod:`synthfilter.knn_index`).
    recall_target : float, default 0.95
        Recall@k the IVF or HNSW search must reach on the sample of queries
        (its ``nprobe`` or ``efSearch`` is raised until it does).
    recall_sample : int, default 500
        Queries used to measure the recall against exact search.
    seed : int, default 0
        Seed for IVF training and the recall sample.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.eye(4, dtype="float32")[[0, 0, 1, 2, 3]]
    >>> TailScorer(k=2).fit(x).score(x)["dup_cluster"].to_list()
    [0, 0, 1, 2, 3]
    """

    def __init__(
        self,
        k: int = 10,
        dup_threshold: float = 0.95,
        exact_duplicates: bool = True,
        text_dup_threshold: float | None = 0.8,
        index: str = "auto",
        ivf_threshold: int = HNSW_THRESHOLD,
        nlist: int | None = None,
        nprobe: int | None = None,
        recall_target: float = RECALL_TARGET,
        recall_sample: int = 500,
        seed: int = 0,
    ) -> None:
        self.k = k
        self.dup_threshold = dup_threshold
        self.exact_duplicates = exact_duplicates
        self.text_dup_threshold = text_dup_threshold
        self.index = index
        self.ivf_threshold = ivf_threshold
        self.nlist = nlist
        self.nprobe = nprobe
        self.recall_target = recall_target
        self.recall_sample = recall_sample
        self.seed = seed

    # -------------------------------------------------------------------------------------
    def _check(self, x: np.ndarray, what: str) -> np.ndarray:
        return normalise_vectors(x, what)

    def _build_index(self, x: np.ndarray) -> tuple[faiss.Index, IndexReport]:
        return build_index(
            x, self.k, kind=self.index, ivf_threshold=self.ivf_threshold, nlist=self.nlist, nprobe=self.nprobe,
            recall_target=self.recall_target, recall_sample=self.recall_sample, seed=self.seed,
        )

    def _search(self, index: faiss.Index, queries: np.ndarray, k: int, exclude_self: bool):
        """k nearest neighbours, dropping each query's own row when it is in the index."""
        own = np.arange(queries.shape[0], dtype=np.int64) if exclude_self else None
        return search_index(index, queries, k, query_ids=own)

    def fit(self, reference: np.ndarray) -> TailScorer:
        """Index a reference distribution and learn its own k-NN distances.

        Parameters
        ----------
        reference : numpy.ndarray, shape (n, dim)
            Embeddings of the reference (gold data, or the corpus itself).

        Returns
        -------
        self
        """
        x = self._check(reference, "reference")
        if x.shape[0] < 2:
            raise ConfigError("the reference needs at least 2 records to measure rarity")
        self.index_, self.index_report_ = self._build_index(x)
        self.reference_ = x
        sims, ids = self._search(self.index_, x, self.k, exclude_self=True)
        self._reference_graph = (sims, ids)  # reused when scoring the reference itself
        self.reference_knn_distance_ = np.sort(knn_distance(sims, clip=False))
        return self

    def rarity_of(self, knn_distance: np.ndarray) -> np.ndarray:
        """Mid-rank percentile of distances among the reference's own (1 = rarest)."""
        return rarity_from_distances(self.reference_knn_distance_, knn_distance)

    def score(
        self,
        embeddings: np.ndarray,
        texts: Sequence[str] | None = None,
        *,
        is_reference: bool = False,
    ) -> pl.DataFrame:
        """Score records against the fitted reference.

        Parameters
        ----------
        embeddings : numpy.ndarray, shape (n, dim)
            The records' embeddings.
        texts : sequence of str, optional
            Their texts, for exact-duplicate detection.
        is_reference : bool, default False
            ``True`` when ``embeddings`` is the very array passed to ``fit``
            (each record's own row is then excluded from its neighbours).

        Returns
        -------
        polars.DataFrame
            Columns ``knn_distance``, ``rarity``, ``dup_cluster``,
            ``is_near_duplicate``; one row per record, in order.
        """
        if not hasattr(self, "index_"):
            raise ConfigError("TailScorer is not fitted; call fit(reference) first")
        x = self._check(embeddings, "embeddings")
        if texts is not None and len(texts) != x.shape[0]:
            raise ConfigError(f"{len(texts)} texts for {x.shape[0]} embeddings")
        if is_reference:
            sims, _ = self._reference_graph
        else:
            sims, _ = self._search(self.index_, x, self.k, exclude_self=False)
        distance = knn_distance(sims)
        rarity = self.rarity_of(distance)
        clusters = self.duplicate_clusters(x, texts, is_reference=is_reference)
        first = pl.Series(clusters).is_first_distinct().to_numpy()
        return pl.DataFrame(
            {
                "knn_distance": distance.astype(np.float64),
                "rarity": rarity.astype(np.float64),
                "dup_cluster": clusters.astype(np.int64),
                "is_near_duplicate": ~first,
            }
        )

    def duplicate_clusters(
        self, x: np.ndarray, texts: Sequence[str] | None = None, *, is_reference: bool = False
    ) -> np.ndarray:
        """Near-duplicate cluster ids within ``x`` (see the module docstring).

        The k-NN graph of ``x`` with itself gives the near-duplicate edges; the
        graph computed in :meth:`fit` is reused when ``x`` is the reference.
        """
        n = x.shape[0]
        if is_reference:
            sims, ids = self._reference_graph
        elif n > 1:
            index, _ = self._build_index(x)
            sims, ids = self._search(index, x, self.k, exclude_self=True)
        else:
            sims, ids = np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
        mask = (sims >= self.dup_threshold) & (ids >= 0)
        rows = np.repeat(np.arange(n), mask.sum(axis=1))
        cols = ids[mask]
        if self.exact_duplicates and texts is not None:
            first_of: dict[bytes, int] = {}
            extra_r, extra_c = [], []
            for i, key in enumerate(text_fingerprints(texts)):
                j = first_of.setdefault(key, i)
                if j != i:
                    extra_r.append(i)
                    extra_c.append(j)
            rows = np.concatenate([rows, np.asarray(extra_r, dtype=np.int64)])
            cols = np.concatenate([cols, np.asarray(extra_c, dtype=np.int64)])
        if self.text_dup_threshold is not None and texts is not None and n > 1:
            text_r, text_c = near_duplicate_pairs(texts, self.text_dup_threshold)
            rows, cols = np.concatenate([rows, text_r]), np.concatenate([cols, text_c])
        graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        # Renumber in order of first appearance so ids do not depend on scipy internals.
        _, first_pos, inverse = np.unique(labels, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first_pos))
        return order[inverse].astype(np.int64)
