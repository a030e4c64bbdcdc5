"""The k-NN part of the tail stage: distances, rarity and embedding duplicate clusters.

One function, :func:`knn_tails`, so that the index behind it can change (a
sharded train / fill / search) without touching the stages or the engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthfilter.errors import ConfigError
from synthfilter.tails import TailScorer


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
        Parameters, what rarity is measured against, and the index report.
    """

    knn_distance: np.ndarray
    rarity: np.ndarray
    embedding_clusters: np.ndarray
    info: dict[str, Any]


def knn_tails(embeddings: np.ndarray, reference: np.ndarray | None = None, *, k: int = 10,
              dup_threshold: float = 0.95, text_dup_threshold: float | None = 0.8, index: str = "auto",
              seed: int = 0, nlist: int | None = None, nprobe: int | None = None) -> KnnTails:
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

    Returns
    -------
    KnnTails
    """
    scorer = TailScorer(k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold,
                        index=index, seed=seed, nlist=nlist, nprobe=nprobe)
    params = scorer.get_params()
    if reference is not None:
        scorer.fit(reference)
        table = _without_texts(scorer).score(embeddings)
        against = "reference"
    else:
        if embeddings.shape[0] < 2:
            raise ConfigError("rarity needs at least 2 records, or a --reference")
        scorer.fit(embeddings)
        table = _without_texts(scorer).score(embeddings, is_reference=True)
        against = "corpus"
    info = {"params": params, "rarity_against": against, "index": scorer.index_report_.to_dict()}
    return KnnTails(knn_distance=table["knn_distance"].to_numpy(), rarity=table["rarity"].to_numpy(),
                    embedding_clusters=table["dup_cluster"].to_numpy(), info=info)


def _without_texts(scorer: TailScorer) -> TailScorer:
    # The text-based edges are added by the caller from per-record keys.
    scorer.exact_duplicates, scorer.text_dup_threshold = False, None
    return scorer
