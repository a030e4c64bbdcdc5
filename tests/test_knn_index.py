"""The shardable k-NN index: train once, fill shards, search and merge, choose nprobe from recall."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.knn_index import (
    build_index,
    choose_nprobe,
    exact_neighbours,
    exact_top_sims,
    fill_ivf,
    merge_ivf,
    merge_neighbours,
    normalise_vectors,
    rarity_from_distances,
    recall_at_k,
    search_index,
    train_ivf,
)


@pytest.fixture(scope="module")
def real_x(static, tails_sample):
    return normalise_vectors(static.encode(tails_sample["text"].to_list()))


@pytest.fixture(scope="module")
def clustered():
    """6,000 unit vectors around 60 seeded centres (clustered, like real embeddings)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((60, 32)).astype(np.float32)
    x = centres[rng.integers(0, 60, 6000)] + 0.35 * rng.standard_normal((6000, 32)).astype(np.float32)
    return normalise_vectors(x)


def test_shards_filled_with_one_quantizer_merge_into_the_single_index(clustered):
    x = clustered
    trained = train_ivf(x[::4], nlist=40, seed=0)
    whole = fill_ivf(trained, x)
    shards = [fill_ivf(trained, x[i : i + 2000], np.arange(i, i + 2000)) for i in range(0, 6000, 2000)]
    merged = merge_ivf(shards)
    assert merged.ntotal == whole.ntotal == 6000
    q = x[:300]
    ids = np.arange(300)
    a = search_index(whole, q, 10, query_ids=ids, nprobe=6)
    b = search_index(merged, q, 10, query_ids=ids, nprobe=6)
    parts = [search_index(s, q, 11, nprobe=6) for s in shards]
    s_c, i_c = merge_neighbours(parts, 11)
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    assert np.all(a[1] != ids[:, None])  # self excluded
    # Shard-by-shard search then merge equals the merged index (self dropped afterwards).
    np.testing.assert_allclose(np.sort(s_c[:, 1:], axis=1), np.sort(a[0], axis=1), atol=1e-6)


def test_exact_neighbours_of_a_shard_use_global_ids(real_x):
    x = real_x
    half = x.shape[0] // 2
    q = np.arange(0, x.shape[0], 7)
    full = exact_neighbours(x[q], x, 5, query_ids=q)
    parts = [exact_neighbours(x[q], x[:half], 6), exact_neighbours(x[q], x[half:], 6, vector_ids=np.arange(half, x.shape[0]))]
    s, i = merge_neighbours(parts, 6)
    np.testing.assert_allclose(s[:, 1:], full[0], atol=1e-6)
    assert np.all(i[:, 0] == q)  # a record is its own nearest neighbour


def test_nprobe_doubles_until_measured_recall_reaches_the_target(clustered):
    x = clustered
    index = fill_ivf(train_ivf(x, nlist=64, seed=0), x)
    q = np.arange(0, 6000, 12)
    exact, _ = exact_neighbours(x[q], x, 10, query_ids=q)
    nprobe, recall, trials = choose_nprobe(index, x[q], exact, 10, query_ids=q, target=0.95, start=1)
    assert [t[0] for t in trials] == [2**i for i in range(len(trials))]
    assert recall >= 0.95 and trials[-1] == (nprobe, round(recall, 6))
    assert all(r < 0.95 for _, r in trials[:-1])
    # Structureless vectors: the target is met only by visiting every cell, which is exact.
    g = normalise_vectors(np.random.default_rng(1).standard_normal((6000, 32)))
    index = fill_ivf(train_ivf(g, nlist=64, seed=0), g)
    exact, _ = exact_neighbours(g[q], g, 10, query_ids=q)
    nprobe, recall, trials = choose_nprobe(index, g[q], exact, 10, query_ids=q, target=1.0, start=40)
    assert [t[0] for t in trials] == [40, 64] and trials[0][1] < 1.0
    assert nprobe == 64 and recall == pytest.approx(1.0)


def test_index_is_exact_below_the_threshold_and_ivf_when_asked(real_x):
    index, report = build_index(real_x, 10)
    assert report.kind == "flat" and isinstance(index, faiss.IndexFlatIP)
    index, report = build_index(real_x, 10, kind="ivf", recall_target=0.9, recall_sample=200, seed=3)
    assert report.kind == "ivf" and report.recall_at_k >= 0.9 and report.nprobe == index.nprobe
    assert report.nprobe_trials[-1][0] == report.nprobe and report.recall_sample == 200
    again, report2 = build_index(real_x, 10, kind="ivf", recall_target=0.9, recall_sample=200, seed=3)
    assert report2 == report
    q = np.arange(50)
    np.testing.assert_array_equal(search_index(index, real_x[q], 10, query_ids=q)[1],
                                  search_index(again, real_x[q], 10, query_ids=q)[1])


def test_recall_counts_ties_as_hits_and_rarity_is_a_mid_rank():
    exact = np.array([[0.9, 0.8, 0.8]])
    assert recall_at_k(np.array([[0.9, 0.8, 0.8]]), exact) == 1.0
    assert recall_at_k(np.array([[0.9, 0.8, 0.1]]), exact) == pytest.approx(2 / 3)
    ref = np.array([0.1, 0.2, 0.2, 0.4])
    np.testing.assert_allclose(rarity_from_distances(ref, np.array([0.0, 0.2, 0.5])), [0.0, 0.5, 1.0])


def test_bad_input_is_a_config_error():
    with pytest.raises(ConfigError, match="NaN"):
        normalise_vectors(np.array([[np.nan, 1.0]]))
    with pytest.raises(ConfigError, match="nlist"):
        train_ivf(np.eye(4, dtype=np.float32), nlist=10)
    with pytest.raises(ConfigError, match="index must be"):
        build_index(np.eye(4, dtype=np.float32), 2, kind="annoy")
    with pytest.raises(ConfigError, match="ids for"):
        fill_ivf(train_ivf(np.eye(4, dtype=np.float32), 2), np.eye(4, dtype=np.float32), np.arange(3))


def test_hnsw_reaches_the_recall_target_and_is_deterministic():
    """A graph over real-like vectors: efSearch raised until the measured recall reaches the target; same graph twice."""
    from synthfilter.knn_index import build_index, exact_neighbours, recall_at_k, search_index

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 32)).astype(np.float32)
    x = centres[rng.integers(0, 40, size=6000)] + 0.35 * rng.normal(size=(6000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index, report = build_index(x, 10, kind="hnsw", recall_target=0.97, recall_sample=300)
    assert report.kind == "hnsw" and report.ef_search >= 32
    assert report.recall_at_k >= 0.97 or report.ef_search == 4096
    assert [t[0] for t in report.nprobe_trials][-1] == report.ef_search
    ids_all = np.arange(x.shape[0])
    sims, ids = search_index(index, x, 10, query_ids=ids_all)
    assert not (ids == ids_all[:, None]).any()  # self excluded
    exact, _ = exact_neighbours(x[:500], x, 10, query_ids=ids_all[:500])
    assert recall_at_k(sims[:500], exact) >= 0.95
    again, report_again = build_index(x, 10, kind="hnsw", recall_target=0.97, recall_sample=300)
    sims2, ids2 = search_index(again, x, 10, query_ids=ids_all)
    assert np.array_equal(ids, ids2) and report_again == report


def test_auto_uses_hnsw_from_the_threshold():
    from synthfilter.knn_index import build_index

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert build_index(x, 5, kind="auto", ivf_threshold=1000)[1].kind == "flat"
    assert build_index(x, 5, kind="auto", ivf_threshold=200)[1].kind == "hnsw"


def test_one_threshold_decides_exact_or_hnsw_everywhere_in_one_process():
    """The cold build, the scorer's default and the k-NN cache's kind check must agree.

    An incremental re-run is accepted only when the stored index is of the kind a cold
    build would choose (``_cold_kind``); if it and ``TailScorer``/``build_index`` used
    different thresholds, every re-run between them would fall back to a cold build.
    """
    import inspect

    from synthfilter.knn_index import HNSW_THRESHOLD, IVF_THRESHOLD, build_index
    from synthfilter.stages.knn import _cold_kind
    from synthfilter.stages.sharded import build_sharded_index
    from synthfilter.tails import TailScorer

    assert inspect.signature(build_index).parameters["ivf_threshold"].default == HNSW_THRESHOLD
    assert TailScorer().get_params()["ivf_threshold"] == HNSW_THRESHOLD
    assert _cold_kind("auto", HNSW_THRESHOLD - 1) == "flat"
    assert _cold_kind("auto", HNSW_THRESHOLD) == "hnsw"
    # The sharded (Ray) index leaves exact search for IVF, at its own threshold.
    assert inspect.signature(build_sharded_index).parameters["ivf_threshold"].default == IVF_THRESHOLD
    assert IVF_THRESHOLD < HNSW_THRESHOLD


def test_thread_budget_is_asked_before_every_block_and_restored():
    import faiss

    from synthfilter.knn_index import search_index, thread_budget

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(8)
    index.add(x)
    plain = search_index(index, x, 5, query_ids=np.arange(300))
    before = faiss.omp_get_max_threads()
    asked: list[int] = []
    seen: list[int] = []

    def budget() -> int:
        asked.append(1)
        return 1

    real_search = index.search

    def spying_search(*args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return real_search(*args, **kwargs)

    index.search = spying_search
    with thread_budget(budget):
        budgeted = search_index(index, x, 5, query_ids=np.arange(300), batch_size=100)
    assert len(asked) == 3 and seen == [1, 1, 1]
    assert faiss.omp_get_max_threads() == before
    for a, b in zip(plain, budgeted):
        np.testing.assert_array_equal(a, b)


def test_exact_top_sims_with_a_floor_from_an_approximate_list_equal_the_exact_search(clustered):
    """Floors from lists that miss many neighbours (searched among a third of the rows) still give the exact top-k."""
    x = clustered
    rows = np.arange(0, x.shape[0], 7)
    third = np.setdiff1d(np.arange(1, x.shape[0], 3), rows)  # without the queries: self-excluded floors
    approx, _ = exact_neighbours(x[rows], x[third], 10)
    exact, _ = exact_neighbours(x[rows], x, 10, query_ids=rows)
    assert recall_at_k(approx, exact) < 0.6  # loose floors
    got = exact_top_sims(x[rows], x, approx[:, -1], 10, query_ids=rows)
    np.testing.assert_allclose(got, exact, atol=1e-5)
    # No bound (-inf) ranks whole rows; without query_ids the query itself is its own first neighbour.
    got = exact_top_sims(x[:300], x, np.full(300, -np.inf), 4)
    np.testing.assert_allclose(got, exact_neighbours(x[:300], x, 4)[0], atol=1e-5)
    assert np.allclose(got[:, 0], 1.0, atol=1e-5)


def test_exact_top_sims_pads_rows_with_fewer_than_k_vectors():
    x = normalise_vectors(np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32))
    got = exact_top_sims(x, x, np.full(4, -np.inf), 5, query_ids=np.arange(4))
    assert np.isneginf(got[:, 3:]).all() and np.isfinite(got[:, :3]).all()
    np.testing.assert_allclose(got[:, :3], exact_neighbours(x, x, 3, query_ids=np.arange(4))[0], atol=1e-6)
