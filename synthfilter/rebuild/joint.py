"""The joint tail view: duplicates across candidates *and* gold, rarity against gold.

Candidate files are usually scored on their own, so their ``dup_cluster`` says
nothing about gold records or other candidate files, and their ``rarity`` is
measured against the corpus rather than the gold set. Before selecting,
:func:`joint_tails` therefore re-runs the tail stage over every text at once:

* near-duplicate clusters over gold + candidates with
  :meth:`synthfilter.tails.TailScorer.duplicate_clusters` (cosine k-NN at
  ``dup_threshold``, plus exact duplicates by normalised text), so that a
  candidate that copies or lightly edits a gold record joins that record's
  cluster and is dropped;
* rarity of each candidate as the percentile of its mean k-NN cosine distance
  *to the gold set* among the gold records' own leave-one-out distances
  (:meth:`~synthfilter.tails.TailScorer.rarity_of`); without gold (or with
  fewer than two gold records), against all candidates.

Embeddings come from the (cached) encoder, so texts already scored with the
same encoder are not encoded again.

When the candidates arrive scored (one file with ``dup_cluster``, computed by
``synthfilter score`` with the same encoder and thresholds), the candidates
are not re-indexed against themselves: their clusters are taken as they are
and only the near-duplicate edges that involve gold are searched
(:func:`gold_edges`): candidates against the gold index (the search rarity
needs anyway), gold against the candidates (exact, a few thousand queries),
gold against gold, equal normalised texts, and shingle near-duplicates that
involve a gold text (:func:`gold_text_pairs`). The union is joined by
connected components (:func:`merge_clusters`). Every edge a full recompute
finds is among these (restricting a k-NN search to candidates or to gold only
moves a record *up* the other's neighbour list), so the clusters are the same
unless a record has more than ``k`` near-duplicates above the threshold, where
the full recompute's k-NN graph could drop an edge the scores kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthfilter.encoders import Encoder
from synthfilter.errors import ConfigError
from synthfilter.knn_index import exact_neighbours
from synthfilter.neardup import near_duplicate_pairs
from synthfilter.normalise import text_fingerprints
from synthfilter.tails import TailScorer


@dataclass
class JointTails:
    """Tail columns computed over candidates and gold together.

    Attributes
    ----------
    candidate_clusters, gold_clusters : numpy.ndarray of int64
        Near-duplicate cluster ids in one namespace.
    candidate_rarity : numpy.ndarray of float64
        Rarity in [0, 1] (1 = rarest) of each candidate.
    rarity_against : str
        ``"gold"`` or ``"candidates"``.
    info : dict
        Parameters and index reports, for the manifest.
    """

    candidate_clusters: np.ndarray
    gold_clusters: np.ndarray
    candidate_rarity: np.ndarray
    rarity_against: str
    info: dict[str, Any] = field(default_factory=dict)


def joint_tails(
    candidate_texts: Sequence[str],
    gold_texts: Sequence[str],
    encoder: Encoder,
    *,
    k: int = 10,
    dup_threshold: float = 0.95,
    text_dup_threshold: float | None = 0.8,
    seed: int = 0,
    batch_size: int = 32,
    show_progress: bool = False,
    candidate_clusters: np.ndarray | None = None,
) -> JointTails:
    """Duplicate clusters over all texts and candidate rarity against gold.

    Parameters
    ----------
    candidate_texts, gold_texts : sequence of str
        Texts of the candidates and of the gold records.
    encoder : Encoder
        Encoder for the embeddings (the one the candidates were scored with).
    k : int, default 10
        Neighbours for rarity and near-duplicates.
    dup_threshold : float, default 0.95
        Cosine similarity at or above which two records are near-duplicates.
    text_dup_threshold : float or None, default 0.8
        Character-shingle Jaccard similarity at or above which two texts are
        near-duplicates; ``None`` turns it off.
    seed : int, default 0
        Seed for the FAISS index.
    batch_size : int, default 32
        Encoder batch size.
    show_progress : bool, default False
        Draw the encoder's progress bar.
    candidate_clusters : numpy.ndarray of int, optional
        The candidates' own ``dup_cluster`` from their scores (same encoder
        and thresholds). With two or more gold records, the candidates are
        then not clustered again: only the edges that involve gold are
        searched and merged with these clusters (see the module docstring).

    Returns
    -------
    JointTails
    """
    texts = list(candidate_texts) + list(gold_texts)
    n_c = len(candidate_texts)
    started = time.perf_counter()
    x = encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    encoded = time.perf_counter()
    cand_x, gold_x = x[:n_c], x[n_c:]
    scorer = TailScorer(k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, seed=seed)
    info: dict[str, Any] = {"encoder": encoder.id, "params": scorer.get_params()}

    if candidate_clusters is not None:
        candidate_clusters = np.asarray(candidate_clusters, dtype=np.int64)
        if candidate_clusters.shape != (n_c,):
            raise ConfigError(f"{candidate_clusters.shape[0]} candidate clusters for {n_c} candidates")
    if gold_x.shape[0] >= 2:
        scorer.fit(gold_x)
        kk = min(k, scorer.index_.ntotal)
        sims, near_gold = scorer.index_.search(np.ascontiguousarray(cand_x, dtype=np.float32), kk)
        knn = np.clip((1.0 - sims).mean(axis=1), 0.0, 2.0)
        rarity = scorer.rarity_of(knn)
        against = "gold"
        info["rarity_index"] = scorer.index_report_.to_dict()
        if candidate_clusters is not None:
            searched = time.perf_counter()
            seconds: dict[str, float] = {}
            rows, cols = gold_edges(
                scorer, cand_x, gold_x, (sims, near_gold), list(candidate_texts), list(gold_texts),
                text_dup_threshold=text_dup_threshold, seconds=seconds,
            )
            clusters = merge_clusters(candidate_clusters, gold_x.shape[0], rows, cols)
            info["candidate_clusters"] = "from-scores"
            info["timings_s"] = {
                "encode": round(encoded - started, 3), "rarity_search": round(searched - encoded, 3),
                **{key: round(v, 3) for key, v in seconds.items()},
                "merge": round(time.perf_counter() - searched - sum(seconds.values()), 3),
            }
        else:
            clusters = scorer.duplicate_clusters(x, texts) if x.shape[0] > 1 else np.zeros(1, dtype=np.int64)
    elif n_c >= 2:
        # No usable gold reference: rarity within the candidates, one k-NN graph for both.
        cand_table = scorer.fit(cand_x).score(cand_x, list(candidate_texts), is_reference=True)
        rarity = cand_table.get_column("rarity").to_numpy()
        against = "candidates"
        info["rarity_index"] = scorer.index_report_.to_dict()
        clusters = scorer.duplicate_clusters(x, texts) if gold_x.shape[0] else cand_table.get_column(
            "dup_cluster"
        ).to_numpy()
    else:
        rarity = np.zeros(n_c)
        against = "none"
        clusters = scorer.duplicate_clusters(x, texts) if x.shape[0] > 1 else np.zeros(1, dtype=np.int64)
    info["rarity_against"] = against
    clusters = np.asarray(clusters, dtype=np.int64)
    return JointTails(
        candidate_clusters=clusters[:n_c],
        gold_clusters=clusters[n_c:],
        candidate_rarity=np.asarray(rarity, dtype=np.float64),
        rarity_against=against,
        info=info,
    )


def gold_text_pairs(
    candidate_texts: Sequence[str], gold_texts: Sequence[str], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shingle near-duplicate pairs that involve a gold text (gold numbered after the candidates).

    Today: :func:`synthfilter.neardup.near_duplicate_pairs` over all texts,
    candidates first, keeping the pairs with a gold member. Because the
    candidates come first, every candidate-candidate join it makes is one
    their own scores already hold, so the kept pairs, with the candidates'
    clusters, connect the same texts as the full pass. (Only the pairs with
    gold are needed: a MinHash pass that sketches the candidates and queries
    them against the gold texts' band keys would give them without the
    candidate-candidate checks.)

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Index pairs in ``candidates + gold`` order, each with at least one
        index ``>= len(candidate_texts)``.
    """
    n_c = len(candidate_texts)
    rows, cols = near_duplicate_pairs(list(candidate_texts) + list(gold_texts), threshold)
    keep = (rows >= n_c) | (cols >= n_c)
    return rows[keep], cols[keep]


def gold_edges(
    gold_scorer: TailScorer,
    cand_x: np.ndarray,
    gold_x: np.ndarray,
    cand_to_gold: tuple[np.ndarray, np.ndarray],
    candidate_texts: Sequence[str],
    gold_texts: Sequence[str],
    *,
    text_dup_threshold: float | None,
    seconds: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every near-duplicate edge with a gold end, in ``candidates + gold`` numbering.

    Parameters
    ----------
    gold_scorer : TailScorer
        Fitted on ``gold_x`` (its leave-one-out graph gives gold-gold edges;
        its ``dup_threshold``, ``k`` and ``exact_duplicates`` apply).
    cand_x, gold_x : numpy.ndarray
        Embeddings of the candidates and of gold.
    cand_to_gold : (sims, ids)
        Each candidate's ``k`` nearest gold records (from the rarity search).
    candidate_texts, gold_texts : sequence of str
        The texts, for equal normal forms and shingle near-duplicates.
    text_dup_threshold : float or None
        Shingle Jaccard threshold; ``None`` skips that pass.
    seconds : dict, optional
        Filled with the seconds of the embedding and the text passes.

    Returns
    -------
    rows, cols : numpy.ndarray of int64
    """
    n_c = cand_x.shape[0]
    thr, k = gold_scorer.dup_threshold, gold_scorer.k
    seconds = {} if seconds is None else seconds
    start = time.perf_counter()
    parts_r: list[np.ndarray] = []
    parts_c: list[np.ndarray] = []

    def add(sims: np.ndarray, ids: np.ndarray, query_offset: int, id_offset: int) -> None:
        mask = (sims >= thr) & (ids >= 0)
        parts_r.append(np.repeat(np.arange(sims.shape[0], dtype=np.int64) + query_offset, mask.sum(axis=1)))
        parts_c.append(ids[mask].astype(np.int64) + id_offset)

    add(*cand_to_gold, 0, n_c)                                       # candidate -> its nearest gold
    add(*gold_scorer._reference_graph, n_c, n_c)                     # gold -> gold
    if n_c:
        cand_n = gold_scorer._check(cand_x, "candidates")
        gold_n = gold_scorer.reference_
        add(*exact_neighbours(gold_n, cand_n, k), n_c, 0)             # gold -> its nearest candidates
    seconds["gold_embedding_edges"] = time.perf_counter() - start
    start = time.perf_counter()
    if gold_scorer.exact_duplicates:
        first_of: dict[bytes, int] = {}
        keys = text_fingerprints(list(candidate_texts) + list(gold_texts))
        for i, key in enumerate(keys[n_c:], start=n_c):
            first_of.setdefault(key, i)
        pairs = [(i, first_of[key]) for i, key in enumerate(keys) if key in first_of and first_of[key] != i]
        if pairs:
            arr = np.asarray(pairs, dtype=np.int64)
            parts_r.append(arr[:, 0])
            parts_c.append(arr[:, 1])
    if text_dup_threshold is not None and len(gold_texts):
        tr, tc = gold_text_pairs(candidate_texts, gold_texts, text_dup_threshold)
        parts_r.append(tr)
        parts_c.append(tc)
    seconds["gold_text_edges"] = time.perf_counter() - start
    return np.concatenate(parts_r), np.concatenate(parts_c)


def merge_clusters(candidate_clusters: np.ndarray, n_gold: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Connected components of the candidates' clusters plus extra edges, numbered by first row.

    Parameters
    ----------
    candidate_clusters : numpy.ndarray of int
        The candidates' cluster ids (any labels; equal label = same cluster).
    n_gold : int
        Gold records, numbered after the candidates.
    rows, cols : numpy.ndarray of int64
        Extra edges in ``candidates + gold`` numbering.

    Returns
    -------
    numpy.ndarray of int64
        Cluster ids for ``candidates + gold``, 0, 1, 2, ... in order of each
        cluster's first row (as :meth:`TailScorer.duplicate_clusters` numbers them).

    Examples
    --------
    >>> merge_clusters(np.array([5, 5, 7]), 2, np.array([3]), np.array([2])).tolist()
    [0, 0, 1, 1, 2]
    """
    labels = np.asarray(candidate_clusters, dtype=np.int64)
    n = labels.size + n_gold
    # Each candidate joins its cluster's first member (a star per cluster).
    _, first = np.unique(labels, return_index=True)
    _, inverse = np.unique(labels, return_inverse=True)
    star_r, star_c = np.arange(labels.size, dtype=np.int64), first[inverse].astype(np.int64)
    r = np.concatenate([star_r, np.asarray(rows, dtype=np.int64)])
    c = np.concatenate([star_c, np.asarray(cols, dtype=np.int64)])
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    _, first_pos, inv = np.unique(comp, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_pos))
    return order[inv].astype(np.int64)
