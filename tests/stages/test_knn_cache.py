"""Warm re-runs of the k-NN tail stage: exact re-use, incremental merges, and the cache's hygiene.

The corpus is real text (the shipped model's held-out split) under the static
encoder, with some texts repeated so that exact duplicates exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.knn_cache import KnnCache, match_rows, row_digests
from synthfilter.stages.knn import knn_tails

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"
FIELDS = ("knn_distance", "rarity", "embedding_clusters")


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    """About 6,400 static embeddings of real texts; rows 6209.. repeat rows 0, 30, 60, ..."""
    from synthfilter.encoders import get_encoder

    texts = pl.read_parquet(HELDOUT)["text"].to_list()
    texts = texts + texts[::30]
    return get_encoder("static", cache=False).encode(texts)


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def _split(n: int, share: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a base corpus (in order) and the rows left out of it (inserted anywhere later)."""
    out = np.sort(np.random.default_rng(seed).choice(n, size=int(share * n), replace=False))
    return np.setdiff1d(np.arange(n), out), out


def _dup_pairs(n_texts: int, n: int) -> list[tuple[int, int]]:
    return [(i, j) for j, i in zip(range(n_texts, n), range(0, n_texts, 30))]


# ---------------------------------------------------------------------------- keys
def test_row_digests_tell_rows_apart_and_match_equal_rows(corpus):
    x = corpus[:100].copy()
    x[7] = x[3]
    d = row_digests(x)
    assert d.shape == (100, 2) and d.dtype == np.uint64
    assert np.array_equal(d[7], d[3])
    assert len({tuple(r) for r in d.tolist()}) == 99
    y = x.copy()
    y[5, 0] = np.nextafter(y[5, 0], np.float32(2))  # one ulp
    assert not np.array_equal(row_digests(y)[5], d[5])
    assert np.array_equal(row_digests(y)[6:], d[6:])


def test_match_rows_pairs_duplicates_in_order_and_refuses_removals():
    old = np.array([[1, 1], [2, 2], [1, 1], [3, 3]], dtype=np.uint64)
    new = np.array([[9, 9], [1, 1], [3, 3], [1, 1], [2, 2], [1, 1]], dtype=np.uint64)
    where = match_rows(old, new)
    assert where.tolist() == [1, 4, 3, 2]
    assert match_rows(old, new[[0, 1, 2, 4]]) is None  # one of the two [1, 1] removed
    assert match_rows(old, new[[1, 2, 3, 5]]) is None  # [2, 2] removed
    assert match_rows(old, old[::-1]).tolist() == [3, 1, 2, 0] or match_rows(old, old[::-1]).tolist() == [1, 2, 3, 0]


# ---------------------------------------------------------------------------- unchanged corpus
@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_unchanged_corpus_returns_the_cold_result_bit_for_bit(corpus, tmp_path, index):
    x = corpus[:3000]
    uncached = knn_tails(x, index=index, cache=False)
    first = knn_tails(x, index=index, cache_dir=tmp_path)
    second = knn_tails(x, index=index, cache_dir=tmp_path)
    assert _same(uncached, first) and _same(first, second)
    assert first.info["reuse"]["mode"] == "none" and first.info["reuse"]["new_rows"] == 3000
    assert second.info["reuse"]["mode"] == "exact"
    assert (second.info["reuse"]["new_rows"], second.info["reuse"]["reused_rows"]) == (0, 3000)
    assert second.info["index"] == first.info["index"]
    # any other parameter is another state
    other = knn_tails(x, index=index, k=5, cache_dir=tmp_path)
    assert other.info["reuse"]["mode"] == "none" and not np.array_equal(other.knn_distance, first.knn_distance)


def test_text_threshold_is_recorded_but_does_not_invalidate(corpus, tmp_path):
    x = corpus[:500]
    knn_tails(x, text_dup_threshold=0.8, cache_dir=tmp_path)
    again = knn_tails(x, text_dup_threshold=0.5, cache_dir=tmp_path)
    assert again.info["reuse"]["mode"] == "exact" and again.info["params"]["text_dup_threshold"] == 0.5


# ---------------------------------------------------------------------------- incremental
def test_exact_index_incremental_equals_cold(corpus, tmp_path):
    n = corpus.shape[0]
    base, _ = _split(n, 0.05)
    knn_tails(corpus[base], cache_dir=tmp_path)
    inc = knn_tails(corpus, cache_dir=tmp_path)
    cold = knn_tails(corpus, cache=False)
    assert inc.info["reuse"]["mode"] == "incremental"
    assert (inc.info["reuse"]["new_rows"], inc.info["reuse"]["reused_rows"]) == (n - base.size, base.size)
    assert inc.info["reuse"]["recall_at_k"] == 1.0 and inc.info["index"]["kind"] == "flat"
    # the same neighbours; similarities may differ in the last float32 bit (another BLAS call shape)
    assert np.abs(inc.knn_distance - cold.knn_distance).max() <= 1e-6
    assert np.mean(inc.knn_distance == cold.knn_distance) >= 0.9
    assert np.abs(inc.rarity - cold.rarity).max() <= 5 / n  # ranks move only among rounding ties
    assert np.array_equal(inc.embedding_clusters, cold.embedding_clusters)


def test_approximate_index_incremental_is_close_to_cold(corpus, tmp_path):
    """HNSW is approximate, so neither answer is exact; the incremental one must be as good as a cold one.

    Yardstick: a cold build of the same rows in another order (another graph)
    agrees with the cold build on some share of rows; the incremental answer
    must agree with it about as often, and be as close to exact search.
    """
    n = corpus.shape[0]
    base, _ = _split(n, 0.05)
    knn_tails(corpus[base], index="hnsw", cache_dir=tmp_path)
    inc = knn_tails(corpus, index="hnsw", cache_dir=tmp_path)
    cold = knn_tails(corpus, index="hnsw", cache=False)
    perm = np.random.default_rng(7).permutation(n)
    cold_again = knn_tails(corpus[perm], index="hnsw", cache=False)
    exact = knn_tails(corpus, index="flat", cache=False)
    assert inc.info["reuse"]["mode"] == "incremental" and inc.info["index"]["kind"] == "hnsw"
    assert inc.info["reuse"]["recall_at_k"] >= 0.95 and inc.info["reuse"]["recall_at_k_new_rows"] >= 0.95

    def same(a, b):
        return np.mean(np.abs(a - b) <= 1e-6)

    yardstick = same(cold_again.knn_distance[np.argsort(perm)], cold.knn_distance)
    assert same(inc.knn_distance, cold.knn_distance) >= min(0.95, yardstick - 0.02)
    assert same(inc.knn_distance, exact.knn_distance) >= same(cold.knn_distance, exact.knn_distance) - 0.02
    err_inc = np.abs(inc.knn_distance - exact.knn_distance).mean()
    assert err_inc <= 1.25 * np.abs(cold.knn_distance - exact.knn_distance).mean() + 1e-5
    drift = np.abs(inc.rarity - cold.rarity)
    assert drift.mean() <= 0.005 and np.percentile(drift, 99) <= 0.05
    # exact duplicates (planted repeats) share a cluster in both; the clusterings agree up to labels
    for i, j in _dup_pairs(6209, n):
        assert inc.embedding_clusters[i] == inc.embedding_clusters[j]
        assert cold.embedding_clusters[i] == cold.embedding_clusters[j]
    pairs_inc = pl.DataFrame({"a": inc.embedding_clusters, "b": cold.embedding_clusters}).unique().height
    assert pairs_inc <= pl.Series(inc.embedding_clusters).n_unique() + 5


def test_incremental_state_is_stored_and_extends_again(corpus, tmp_path):
    n = corpus.shape[0]
    rows = np.random.default_rng(3).permutation(n)
    a, b, c = rows[:5000], rows[:5500], rows[:6000]
    knn_tails(corpus[a], index="hnsw", cache_dir=tmp_path)
    second = knn_tails(corpus[b], index="hnsw", cache_dir=tmp_path)
    again = knn_tails(corpus[b], index="hnsw", cache_dir=tmp_path)
    third = knn_tails(corpus[c], index="hnsw", cache_dir=tmp_path)
    assert second.info["reuse"]["mode"] == "incremental" and again.info["reuse"]["mode"] == "exact"
    assert _same(second, again)
    assert third.info["reuse"]["mode"] == "incremental" and third.info["reuse"]["new_rows"] == 500
    assert third.info["reuse"]["recall_at_k"] >= 0.95
    assert third.info["index"]["n_indexed"] == 6000


def test_ivf_index_extends_too(corpus, tmp_path):
    n = corpus.shape[0]
    base, _ = _split(n, 0.1, seed=2)
    first = knn_tails(corpus[base], index="ivf", cache_dir=tmp_path)
    inc = knn_tails(corpus, index="ivf", cache_dir=tmp_path)
    assert inc.info["reuse"]["mode"] == "incremental" and inc.info["reuse"]["new_rows"] == n - base.size
    assert inc.info["reuse"]["recall_at_k"] >= 0.95
    assert inc.info["index"]["nprobe"] == first.info["index"]["nprobe"]
    assert inc.info["index"]["nlist"] == first.info["index"]["nlist"]


def test_ivf_index_survives_removed_rows(corpus, tmp_path):
    n = corpus.shape[0]
    base, fresh = _split(n, 0.1, seed=2)
    knn_tails(corpus[base], index="ivf", cache_dir=tmp_path)
    kept = base[np.random.default_rng(8).permutation(base.size)[200:]]
    rows = np.r_[fresh, kept]
    inc = knn_tails(corpus[rows], index="ivf", cache_dir=tmp_path)
    exact = knn_tails(corpus[rows], index="flat", cache=False)
    reuse = inc.info["reuse"]
    assert reuse["mode"] == "incremental" and reuse["recall_at_k"] >= 0.95 and reuse["repaired_rows"] > 0
    assert np.all(inc.knn_distance >= exact.knn_distance - 1e-6)  # never a neighbour that is gone


def test_malformed_embeddings_raise_as_before(tmp_path):
    from synthfilter.errors import ConfigError

    with pytest.raises(ConfigError):
        knn_tails(np.zeros((0, 4), np.float32), cache_dir=tmp_path)
    bad = np.ones((20, 4), np.float32)
    bad[3, 1] = np.nan
    with pytest.raises(ConfigError):
        knn_tails(bad, cache_dir=tmp_path)


def test_reordered_rows_reuse_the_lists(corpus, tmp_path):
    x = corpus[:2000]
    perm = np.random.default_rng(5).permutation(2000)
    knn_tails(x, cache_dir=tmp_path)
    shuffled = knn_tails(x[perm], cache_dir=tmp_path)
    cold = knn_tails(x[perm], cache=False)
    assert shuffled.info["reuse"]["mode"] == "incremental" and shuffled.info["reuse"]["new_rows"] == 0
    assert np.abs(shuffled.knn_distance - cold.knn_distance).max() <= 1e-6
    assert np.array_equal(shuffled.embedding_clusters, cold.embedding_clusters)


def test_too_many_new_or_removed_rows_build_cold(corpus, tmp_path):
    x = corpus[:2000]
    knn_tails(x, cache_dir=tmp_path)
    grown = knn_tails(corpus[:3000], cache_dir=tmp_path)  # 1,000 new of 3,000
    assert grown.info["reuse"]["mode"] == "none" and "30%" in grown.info["reuse"]["note"]
    shrunk = knn_tails(corpus[1200:2100], cache_dir=tmp_path)  # most rows of either stored index gone
    assert shrunk.info["reuse"]["mode"] == "none"
    assert _same(shrunk, knn_tails(corpus[1200:2100], cache=False))


def _assert_exact_equal(inc, cold, n):
    assert np.abs(inc.knn_distance - cold.knn_distance).max() <= 1e-6
    assert np.abs(inc.rarity - cold.rarity).max() <= 5 / n
    assert np.array_equal(inc.embedding_clusters, cold.embedding_clusters)


def test_removed_rows_are_repaired_exactly_with_an_exact_index(corpus, tmp_path):
    """5 % of the records replaced by new ones: the lists naming a removed record are searched again."""
    n = corpus.shape[0]
    base, fresh = _split(n, 0.05)
    knn_tails(corpus[base], cache_dir=tmp_path)
    kept = np.delete(base, np.random.default_rng(4).choice(base.size, size=300, replace=False))
    rows = np.random.default_rng(5).permutation(np.r_[kept, fresh])
    inc = knn_tails(corpus[rows], cache_dir=tmp_path)
    reuse = inc.info["reuse"]
    assert reuse["mode"] == "incremental" and inc.info["index"]["kind"] == "flat"
    # (a removed row whose embedding is also a new row's counts as kept: rows are matched by content)
    assert reuse["new_rows"] + reuse["reused_rows"] == rows.size and reuse["reused_rows"] >= kept.size
    assert 290 <= reuse["removed_rows"] == reuse["removed_in_index"] <= 300
    assert 0 < reuse["repaired_rows"] < kept.size  # only lists that named a removed record
    _assert_exact_equal(inc, knn_tails(corpus[rows], cache=False), rows.size)
    # Removed records come back, others go: still exact, and the index's removed vectors are reused.
    again = np.r_[base[:150], np.setdiff1d(base, kept)][::-1]
    rows2 = np.r_[rows[200:], again]
    inc2 = knn_tails(corpus[rows2], cache_dir=tmp_path)
    assert inc2.info["reuse"]["mode"] == "incremental"
    _assert_exact_equal(inc2, knn_tails(corpus[rows2], cache=False), rows2.size)


def test_removed_rows_with_an_approximate_index_keep_the_recall(corpus, tmp_path):
    n = corpus.shape[0]
    base, fresh = _split(n, 0.05)
    knn_tails(corpus[base], index="hnsw", cache_dir=tmp_path)
    kept = np.delete(base, np.random.default_rng(6).choice(base.size, size=300, replace=False))
    rows = np.r_[kept, fresh]
    inc = knn_tails(corpus[rows], index="hnsw", cache_dir=tmp_path)
    exact = knn_tails(corpus[rows], index="flat", cache=False)
    cold = knn_tails(corpus[rows], index="hnsw", cache=False)
    assert inc.info["reuse"]["mode"] == "incremental" and inc.info["reuse"]["recall_at_k"] >= 0.95
    err_inc = np.abs(inc.knn_distance - exact.knn_distance).mean()
    assert err_inc <= 1.25 * np.abs(cold.knn_distance - exact.knn_distance).mean() + 1e-5
    # no neighbour list names a removed record: a record's distance is never to a vector no longer there
    assert np.all(inc.knn_distance >= exact.knn_distance - 1e-6)


def test_reference_mode_reuses_the_same_rows_only(corpus, tmp_path):
    ref, x = corpus[:1000], corpus[1000:1600]
    first = knn_tails(x, ref, cache_dir=tmp_path)
    second = knn_tails(x, ref, cache_dir=tmp_path)
    assert second.info["reuse"]["mode"] == "exact" and _same(first, second)
    assert second.info["rarity_against"] == "reference"
    other_ref = knn_tails(x, corpus[:999], cache_dir=tmp_path)
    assert other_ref.info["reuse"]["mode"] == "none"
    assert _same(other_ref, knn_tails(x, corpus[:999], cache=False))
    more = knn_tails(corpus[1000:1650], ref, cache_dir=tmp_path)
    assert more.info["reuse"]["mode"] == "none"


# ---------------------------------------------------------------------------- hygiene
def test_cache_off_writes_nothing(corpus, tmp_path):
    out = knn_tails(corpus[:300], cache=False, cache_dir=tmp_path / "knn")
    assert out.info["reuse"]["mode"] == "none" and not (tmp_path / "knn").exists()


def test_default_folder_follows_synthfilter_cache(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "c"))
    knn_tails(corpus[:300])
    assert len(list((tmp_path / "c" / "knn").glob("*.npz"))) == 1
    assert knn_tails(corpus[:300]).info["reuse"]["mode"] == "exact"


def test_unusable_cache_folder_warns_once_and_runs_uncached(corpus, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(blocker))
    x = corpus[:300]
    first = knn_tails(x)
    second = knn_tails(x)
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "unusable" in err
    assert _same(first, knn_tails(x, cache=False)) and second.info["reuse"]["mode"] == "none"


def test_corrupt_state_warns_and_computes_cold(corpus, tmp_path, capsys):
    x = corpus[:1000]
    good = knn_tails(x, cache_dir=tmp_path)
    (state,) = tmp_path.glob("*.npz")
    state.write_bytes(state.read_bytes()[:5000])  # torn
    again = knn_tails(x, cache_dir=tmp_path)
    assert again.info["reuse"]["mode"] == "none" and _same(good, again)
    assert "unreadable" in capsys.readouterr().err
    assert knn_tails(x, cache_dir=tmp_path).info["reuse"]["mode"] == "exact"  # rewritten whole
    # a torn candidate for an increment is skipped the same way
    (state,) = tmp_path.glob("*.npz")
    state.write_bytes(b"PK\x03\x04 garbage")
    grown = knn_tails(corpus[:1020], cache_dir=tmp_path)
    assert grown.info["reuse"]["mode"] == "none"


def test_folder_keeps_the_newest_states(corpus, tmp_path):
    for i in range(7):
        knn_tails(corpus[i * 100 : i * 100 + 100], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 4
    assert knn_tails(corpus[600:700], cache_dir=tmp_path).info["reuse"]["mode"] == "exact"
    assert knn_tails(corpus[0:100], cache_dir=tmp_path).info["reuse"]["mode"] == "none"
    cache = KnnCache(tmp_path, keep=10, keep_bytes=1)
    cache.prune()
    assert len(list(tmp_path.glob("*.npz"))) == 1  # the newest is always kept


def test_threads_sharing_a_folder_get_the_cold_result(corpus, tmp_path):
    x = corpus[:2000]
    cold = knn_tails(x, cache=False)
    results: list = [None] * 4

    def run(i: int) -> None:
        results[i] = knn_tails(x if i % 2 else x[::-1], cache_dir=tmp_path)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(_same(results[i], cold) for i in (1, 3))
    assert np.abs(results[0].knn_distance - knn_tails(x[::-1], cache=False).knn_distance).max() <= 1e-6


def test_killed_while_writing_leaves_no_state(corpus, tmp_path):
    x = corpus[:400]
    np.save(tmp_path / "x.npy", x)
    knn_tails(x, cache_dir=tmp_path / "probe")
    (name,) = [p.name for p in (tmp_path / "probe").glob("*.npz")]
    code = ("import numpy as np; from synthfilter.stages.knn import knn_tails; "
            f"knn_tails(np.load({str(tmp_path / 'x.npy')!r}), cache_dir={str(tmp_path / 'knn')!r})")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNTHFILTER_FAULT_AT": f"write:{name}"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert proc.returncode == -9
    assert not list((tmp_path / "knn").glob("*.npz")) and list((tmp_path / "knn").glob(".*.tmp"))
    assert knn_tails(x, cache_dir=tmp_path / "knn").info["reuse"]["mode"] == "none"
    assert knn_tails(x, cache_dir=tmp_path / "knn").info["reuse"]["mode"] == "exact"
    assert not list((tmp_path / "knn").glob(".*.tmp"))  # the dead run's temporary file is gone
