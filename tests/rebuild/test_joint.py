"""The joint tail view with scored candidates: only gold's edges are searched, clusters unchanged."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.rebuild.joint import gold_text_pairs, joint_tails, merge_clusters
from synthfilter.tails import TailScorer

HELDOUT = "models/origin-v3/heldout_test.parquet"


def _edit(text: str) -> str:
    words = text.split(" ")
    words[len(words) // 2] = words[len(words) // 2].upper()
    del words[3]
    return " ".join(words)


@pytest.fixture(scope="module")
def pools(static):
    """600 real held-out candidates with planted copies (of each other and of gold) and 150 gold."""
    texts = pl.read_parquet(HELDOUT).get_column("text").to_list()
    rng = np.random.default_rng(7)
    pick = rng.choice(len(texts), size=750, replace=False)
    cands, gold = [texts[i] for i in pick[:600]], [texts[i] for i in pick[600:]]
    cands += [gold[0], _edit(gold[1]), "  " + gold[2].upper(), _edit(cands[5]), cands[9], _edit(gold[1])]
    gold += [_edit(gold[3]), cands[20]]  # gold near-copies of gold and of a candidate
    x = static.encode(cands)
    scored = TailScorer(k=10, seed=0).fit(x).score(x, cands, is_reference=True)
    return cands, gold, scored.get_column("dup_cluster").to_numpy()


def test_reusing_candidate_clusters_gives_the_full_recompute(static, pools):
    cands, gold, clusters = pools
    full = joint_tails(cands, gold, static, seed=0)
    fast = joint_tails(cands, gold, static, seed=0, candidate_clusters=clusters)
    assert fast.info["candidate_clusters"] == "from-scores"
    np.testing.assert_array_equal(fast.candidate_clusters, full.candidate_clusters)
    np.testing.assert_array_equal(fast.gold_clusters, full.gold_clusters)
    np.testing.assert_array_equal(fast.candidate_rarity, full.candidate_rarity)
    n = len(cands) - 6
    c, g = fast.candidate_clusters, fast.gold_clusters
    # The planted copies of gold join gold's clusters; the candidate copies join their originals.
    assert c[n] == g[0] and c[n + 1] == g[1] == c[n + 5] and c[n + 2] == g[2]
    assert c[n + 3] == c[5] and c[n + 4] == c[9]
    assert g[-2] == g[3] and g[-1] == c[20]


def test_candidate_clusters_are_kept_even_where_no_gold_is_near(static, pools):
    cands, gold, clusters = pools
    fake = np.arange(len(cands))
    fake[[100, 200]] = fake[300]  # pretend the scores joined three unrelated records
    out = joint_tails(cands, gold, static, seed=0, candidate_clusters=fake).candidate_clusters
    assert out[100] == out[200] == out[300]
    with pytest.raises(ConfigError, match="candidate clusters"):
        joint_tails(cands, gold, static, candidate_clusters=fake[:-1])


def test_merge_clusters_joins_through_gold_and_numbers_by_first_row():
    labels = np.array([4, 9, 4, 2])
    rows, cols = np.array([4, 5]), np.array([1, 3])  # gold 4 ~ cand 1, gold 5 ~ cand 3
    assert merge_clusters(labels, 3, rows, cols).tolist() == [0, 1, 0, 2, 1, 2, 3]
    assert merge_clusters(labels, 0, np.empty(0, np.int64), np.empty(0, np.int64)).tolist() == [0, 1, 0, 2]


def test_gold_text_pairs_only_involve_gold(pools):
    cands, gold, _ = pools
    rows, cols = gold_text_pairs(cands, gold, 0.8)
    n = len(cands)
    assert rows.size and np.all((rows >= n) | (cols >= n))
    pairs = {(int(r), int(c)) for r, c in zip(rows, cols)}
    assert (n + len(gold) - 1, 20) in pairs or (20, n + len(gold) - 1) in pairs  # gold copy of candidate 20


def test_rebuild_with_scored_candidates_decides_as_the_full_recompute(pools):
    from synthfilter.rebuild import RebuildPolicy, rebuild

    cands, gold, clusters = pools
    p = np.random.default_rng(3).uniform(0.0, 1.0, len(cands))
    scored = pl.DataFrame({"id": [f"c{i}" for i in range(len(cands))], "text": cands, "p_synthetic": p,
                           "dup_cluster": clusters})
    gold_frame = pl.DataFrame({"id": [f"g{i}" for i in range(len(gold))], "text": gold})
    policy = RebuildPolicy(max_synthetic=0.3, seed=0)
    fast = rebuild(scored, gold_frame, policy, model=None, encoder="static")
    full = rebuild(scored.drop("dup_cluster"), gold_frame, policy, model=None, encoder="static")
    assert fast.info["tails"]["candidate_clusters"] == "from-scores"
    assert "candidate_clusters" not in full.info["tails"]
    assert fast.decisions.equals(full.decisions)
    assert fast.decisions["reason"].str.starts_with("duplicate-of:").sum() >= 5  # the planted copies
