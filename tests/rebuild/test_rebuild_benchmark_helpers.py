"""The benchmark's pool builder and label-based metrics (no detector, no encoder)."""

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from tests.rebuild.conftest import make_texts

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "rebuild" / "bench_rebuild.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_rebuild", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus():
    rows = []
    specs = (("brown", 0, 120), ("sharegpt_human", 0, 120), ("spamassassin", 0, 30),
             ("sharegpt_chatgpt", 1, 200), ("gemma", 1, 60))
    for seed, (source, label, n) in enumerate(specs):
        for i, text in enumerate(make_texts(n, seed=100 + seed)):
            rows.append({"id": f"{source}-{i}", "text": text, "label": label, "source": source,
                         "group": f"{source}-g{i // 3}", "split": "test" if i % 4 else "train"})
    return pl.DataFrame(rows)


def test_pool_composition_and_disjoint_gold(bench, corpus):
    pool, gold, info = bench.build_pool(corpus, pool_size=200, gold_size=30, rare_fraction=0.05,
                                        exact_dup_fraction=0.05, near_dup_fraction=0.05,
                                        gold_copy_fraction=0.02, seed=0)
    originals = pool.filter(pl.col("planted") == "original")
    assert originals.height == 200
    assert (originals["label"] == 1).sum() == 100
    assert originals["is_rare"].sum() == 10 and (originals.filter(pl.col("is_rare"))["source"] == "spamassassin").all()
    assert info["planted"] == {"exact": 10, "gold-exact": 2, "gold-near": 2, "near": 10, "original": 200}
    # Gold is human, from the common sources, in groups the pool does not use.
    assert (gold["label"] == 0).all() and set(gold["source"]) <= {"brown", "sharegpt_human"}
    gold_groups = set(corpus.filter(pl.col("id").is_in(gold["id"].implode()))["group"])
    pool_groups = set(corpus.filter(pl.col("id").is_in(originals["id"].implode()))["group"])
    assert not gold_groups & pool_groups
    assert set(corpus.filter(pl.col("id").is_in(originals["id"].implode()))["split"]) == {"test"}
    # Near copies differ from their original, exact ones do not.
    by_id = dict(zip(pool["id"], pool["text"]))
    gold_text = dict(zip(gold["id"], gold["text"]))
    for row in pool.filter(pl.col("planted") != "original").iter_rows(named=True):
        original = by_id.get(row["item"], gold_text.get(row["item"]))
        assert (row["text"] == original) == row["planted"].endswith("exact")


def test_metrics_from_labels(bench, corpus):
    pool, gold, _ = bench.build_pool(corpus, pool_size=200, gold_size=30, rare_fraction=0.05,
                                     exact_dup_fraction=0.05, near_dup_fraction=0.05,
                                     gold_copy_fraction=0.02, seed=1)
    everything = bench.evaluate(set(pool["id"]), pool, gold)
    assert everything["size"] == pool.height + gold.height
    assert everything["true_synthetic_share"] == pytest.approx((pool["label"] == 1).sum() / everything["size"])
    assert everything["human_kept"] == 1.0 and everything["rare_human_kept"] == 1.0
    assert everything["dup_groups_twice"] == 24  # 10 exact + 10 near + 4 gold copies, each twice
    originals = set(pool.filter(pl.col("planted") == "original")["id"])
    clean = bench.evaluate(originals, pool, gold)
    assert clean["dup_groups_twice"] == 0 and clean["human_kept"] == 1.0
    humans_only = set(pool.filter((pl.col("label") == 0) & (pl.col("planted") == "original"))["id"])
    assert bench.evaluate(humans_only, pool, gold)["true_synthetic_share"] == 0.0
