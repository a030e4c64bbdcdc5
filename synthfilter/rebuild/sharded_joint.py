"""The joint tail view with gold (:mod:`synthfilter.rebuild.joint`) over sharded candidates.

For ``rebuild --engine ray --gold``: the candidates arrive scored (their own
``dup_cluster``), so, as in :func:`~synthfilter.rebuild.joint.joint_tails`
with ``candidate_clusters``, only the edges that involve gold are searched
and rarity is measured against gold. Gold is small and lives on the driver
(its embeddings, made on the workers, its fitted
:class:`~synthfilter.tails.TailScorer`); the candidates' embeddings, texts and
MinHash band keys stay on the workers, where one pass per shard
(:meth:`~synthfilter.engine.base.RecordSet.map_shards`) finds:

* each candidate's ``k`` nearest gold records (rarity, and candidate -> gold
  edges at ``dup_threshold``), searched with the queries in the blocks one
  whole search would use, so the similarities are bit for bit the local ones;
* each gold record's ``k`` nearest candidates in the shard (merged here into
  the top ``k`` over all shards, the gold -> candidate edges);
* candidates whose normal form is a gold record's (exact duplicates);
* candidates sharing a MinHash band key with a gold text whose shingle
  Jaccard similarity with it reaches ``text_dup_threshold`` (checked on the
  worker, beside the candidate's text).

Only per-candidate distances and edge lists come back. The clusters are the
connected components of the candidates' clusters and these edges
(:func:`~synthfilter.rebuild.joint.merge_clusters`). The local path keeps the
gold pairs of a spanning forest of all shingle near-duplicates; this one
keeps every verified candidate-gold pair sharing a band key: both connect the
same records once the candidates' own clusters are added, so the clusters,
and the decisions, are the same.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import faiss
import numpy as np

from synthfilter.engine.base import Columns, RecordSet
from synthfilter.errors import ConfigError
from synthfilter.knn_index import exact_neighbours, knn_distance, merge_neighbours, normalise_vectors
from synthfilter.neardup import near_duplicate_pairs
from synthfilter.normalise import text_fingerprints
from synthfilter.rebuild.joint import JointTails, merge_clusters
from synthfilter.stages import textdup
from synthfilter.stages.sharded import _aligned_exact
from synthfilter.tails import TailScorer

_EMPTY = np.zeros(0, dtype=np.int64)


def _edges(sims: np.ndarray, ids: np.ndarray, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    mask = (sims >= threshold) & (ids >= 0)
    return np.repeat(queries, mask.sum(axis=1)).astype(np.int64), ids[mask].astype(np.int64)


def _gold_part(part: Columns, *, gold: dict[str, Any], n_candidates: int, k: int, dup_threshold: float,
               text_dup_threshold: float | None) -> dict[str, Any]:
    """One candidate shard against gold: distances, edges, and its share of each gold record's k-NN."""
    pos = part["pos"]
    n_c = n_candidates
    out: dict[str, Any] = {"pos": pos}
    if pos.size == 0:
        return {**out, "knn": np.zeros(0, np.float32), "rows": _EMPTY, "cols": _EMPTY, "gold_knn": None}
    raw = np.ascontiguousarray(part["embedding"], dtype=np.float32)
    kk = gold["kk"]
    if gold["kind"] == "flat":  # as TailScorer's IndexFlatIP.search of every candidate at once
        sims, near = _aligned_exact(raw, pos, n_c, gold["vectors"], np.arange(gold["vectors"].shape[0]), kk)
    else:
        index = faiss.deserialize_index(gold["index"])
        if gold.get("ef_search"):
            index.hnsw.efSearch = int(gold["ef_search"])
        sims, near = index.search(raw, kk)
    out["knn"] = knn_distance(sims)
    rows, cols = [], []
    r, c = _edges(sims, near, pos, dup_threshold)  # candidate -> its nearest gold
    rows.append(r)
    cols.append(c + n_c)
    # Gold -> the shard's candidates (merged over shards by the caller).
    out["gold_knn"] = exact_neighbours(gold["vectors"], normalise_vectors(raw, "candidates"), k, vector_ids=pos)
    texts = [str(t) for t in part["text"]]
    if gold["exact"]:
        first_of = gold["first_of"]
        hits = [(int(p), first_of[key]) for p, key in zip(pos, text_fingerprints(texts)) if key in first_of]
        if hits:
            arr = np.asarray(hits, dtype=np.int64)
            rows.append(arr[:, 0])
            cols.append(arr[:, 1])
    if text_dup_threshold is not None:
        r, c = _text_pairs(part, texts, gold, text_dup_threshold)
        rows.append(r)
        cols.append(c + n_c)
    out["rows"], out["cols"] = np.concatenate(rows), np.concatenate(cols)
    return out


def _text_pairs(part: Columns, texts: list[str], gold: dict[str, Any], threshold: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Verified (candidate position, gold index) pairs sharing a band key, neither text blank."""
    keys = np.asarray(part["band_keys"], dtype=np.uint64)
    live = ~np.all(np.asarray(part["norm_key"]) == textdup.BLANK_KEY, axis=1)
    gold_keys, gold_live = gold["band_keys"], gold["live"]
    found: set[tuple[int, int]] = set()
    gold_at = np.flatnonzero(gold_live)
    mine = np.flatnonzero(live)
    for b in range(keys.shape[1]):
        hit = mine[np.isin(keys[mine, b], gold_keys[gold_at, b])]
        if not hit.size:
            continue
        owners: dict[int, list[int]] = {}
        for j in gold_at:
            owners.setdefault(int(gold_keys[j, b]), []).append(int(j))
        for i in hit:
            for j in owners.get(int(keys[i, b]), ()):
                found.add((int(i), j))
    if not found:
        return _EMPTY, _EMPTY
    pairs = np.asarray(sorted(found), dtype=np.int64)
    check = textdup.ShingleJaccard(threshold)
    ok = check([texts[i] for i in pairs[:, 0]], [gold["texts"][j] for j in pairs[:, 1]])
    return part["pos"][pairs[ok, 0]], pairs[ok, 1]


def sharded_gold_tails(candidates: RecordSet, candidate_clusters: np.ndarray, gold_texts: list[str],
                       gold_embeddings: np.ndarray, *, k: int = 10, dup_threshold: float = 0.95,
                       text_dup_threshold: float | None = 0.8, seed: int = 0, encoder_id: str | None = None
                       ) -> JointTails:
    """:func:`~synthfilter.rebuild.joint.joint_tails` with scored candidates, shard by shard.

    Parameters
    ----------
    candidates : RecordSet
        The scored candidates with ``embedding``, ``text``, ``norm_key`` and
        (with ``text_dup_threshold``) ``band_keys`` columns, left where they are.
    candidate_clusters : numpy.ndarray of int
        Their ``dup_cluster`` from the scores.
    gold_texts : list of str
        Gold texts (at least two).
    gold_embeddings : numpy.ndarray
        Their embeddings, from the candidates' encoder.
    k, dup_threshold, text_dup_threshold, seed
        As in :func:`~synthfilter.rebuild.joint.joint_tails`.
    encoder_id : str, optional
        Recorded in ``info``.

    Returns
    -------
    JointTails
        As :func:`~synthfilter.rebuild.joint.joint_tails` returns it for the
        same inputs.
    """
    started = time.perf_counter()
    n_c, n_g = candidates.frame.height, len(gold_texts)  # type: ignore[attr-defined]
    clusters_in = np.asarray(candidate_clusters, dtype=np.int64)
    if clusters_in.shape != (n_c,):
        raise ConfigError(f"{clusters_in.shape[0]} candidate clusters for {n_c} candidates")
    if n_g < 2:
        raise ConfigError("--gold with --engine ray needs at least 2 gold records (rarity is measured against "
                          "gold); use --engine local for a smaller gold set")
    scorer = TailScorer(k=k, dup_threshold=dup_threshold, text_dup_threshold=text_dup_threshold, seed=seed)
    info: dict[str, Any] = {"encoder": encoder_id, "params": scorer.get_params()}
    scorer.fit(gold_embeddings)
    report = scorer.index_report_
    gold: dict[str, Any] = {"kind": "flat" if report.kind == "flat" else "index", "vectors": scorer.reference_,
                            "kk": min(k, scorer.index_.ntotal), "exact": scorer.exact_duplicates}
    if report.kind != "flat":
        gold["index"], gold["ef_search"] = faiss.serialize_index(scorer.index_), report.ef_search
    gold_keys = text_fingerprints(gold_texts)
    first_of: dict[bytes, int] = {}
    for j, key in enumerate(gold_keys):
        first_of.setdefault(key, n_c + j)
    gold["first_of"] = first_of
    columns = ["embedding", "text"]
    if text_dup_threshold is not None:
        gold["band_keys"] = textdup.band_keys_of(gold_texts, text_dup_threshold)
        gold["live"] = ~np.all(textdup.norm_keys(gold_texts) == textdup.BLANK_KEY, axis=1)
        gold["texts"] = list(gold_texts)
        columns += ["band_keys", "norm_key"]
    fitted = time.perf_counter()
    parts = candidates.map_shards(
        partial(_gold_part, gold=gold, n_candidates=n_c, k=k, dup_threshold=dup_threshold,
                text_dup_threshold=text_dup_threshold), columns)
    searched = time.perf_counter()
    knn = np.zeros(n_c, dtype=np.float32)
    rows, cols = [_EMPTY], [_EMPTY]
    for p in parts:
        knn[p["pos"]] = p["knn"]
        rows.append(p["rows"])
        cols.append(p["cols"])
    rarity = scorer.rarity_of(knn)
    # Gold -> gold (its own leave-one-out graph) and gold -> its k nearest candidates over every shard.
    ref_sims, ref_ids = scorer._reference_graph
    r, c = _edges(ref_sims, ref_ids, np.arange(n_g) + n_c, dup_threshold)
    rows.append(r)
    cols.append(c + n_c)
    shards = [p["gold_knn"] for p in parts if p["gold_knn"] is not None]
    if shards:
        sims, ids = merge_neighbours(shards, k)
        r, c = _edges(sims, ids, np.arange(n_g) + n_c, dup_threshold)
        rows.append(r)
        cols.append(c)
    if scorer.exact_duplicates:
        for j, key in enumerate(gold_keys):
            if first_of[key] != n_c + j:
                rows.append(np.asarray([n_c + j]))
                cols.append(np.asarray([first_of[key]]))
    if text_dup_threshold is not None:
        r, c = near_duplicate_pairs(list(gold_texts), text_dup_threshold)
        rows.append(r + n_c)
        cols.append(c + n_c)
    clusters = merge_clusters(clusters_in, n_g, np.concatenate(rows).astype(np.int64),
                              np.concatenate(cols).astype(np.int64))
    info["rarity_index"] = report.to_dict()
    info["candidate_clusters"] = "from-scores"
    info["sharded"] = {"shards": len(parts)}
    info["timings_s"] = {"fit_gold": round(fitted - started, 3), "shard_pass": round(searched - fitted, 3),
                         "merge": round(time.perf_counter() - searched, 3)}
    info["rarity_against"] = "gold"
    return JointTails(candidate_clusters=clusters[:n_c], gold_clusters=clusters[n_c:],
                      candidate_rarity=np.asarray(rarity, dtype=np.float64), rarity_against="gold", info=info)
