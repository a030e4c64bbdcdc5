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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthfilter.encoders import Encoder
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

    Returns
    -------
    JointTails
    """
    texts = list(candidate_texts) + list(gold_texts)
    n_c = len(candidate_texts)
    x = encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    cand_x, gold_x = x[:n_c], x[n_c:]
    scorer = TailScorer(k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, seed=seed)
    info: dict[str, Any] = {"encoder": encoder.id, "params": scorer.get_params()}

    if gold_x.shape[0] >= 2:
        scorer.fit(gold_x)
        kk = min(k, scorer.index_.ntotal)
        sims, _ = scorer.index_.search(np.ascontiguousarray(cand_x, dtype=np.float32), kk)
        knn = np.clip((1.0 - sims).mean(axis=1), 0.0, 2.0)
        rarity = scorer.rarity_of(knn)
        against = "gold"
        info["rarity_index"] = scorer.index_report_.to_dict()
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
