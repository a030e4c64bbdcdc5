from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.normalise import normalise_text
from synthfilter.tails import TailScorer


@pytest.fixture(scope="module")
def religion(tails_sample):
    return tails_sample.filter(pl.col("category") == "cd")["text"].to_list()


@pytest.fixture(scope="module")
def adventure(tails_sample):
    return tails_sample.filter(pl.col("category") == "cn")["text"].to_list()


@pytest.fixture(scope="module")
def email(tails_sample):
    return tails_sample.filter(pl.col("category") == "spamassassin")["text"].to_list()


def test_normalised_text_ignores_case_space_and_punctuation():
    assert normalise_text("Hello,  World!") == normalise_text("hello world")
    assert normalise_text("hello world") != normalise_text("hello there")


def test_exact_and_near_duplicates_share_one_cluster_with_one_representative(minilm, religion):
    base = religion[:80]
    original = base[3]
    near = "Reposted: " + original.replace(",", "").replace(" the ", " a ", 1)  # boilerplate + edits
    exact = "  " + original.upper() + "  "
    texts = base + [exact, near, base[10]]
    table = TailScorer(k=10).fit(minilm.encode(texts)).score(minilm.encode(texts), texts, is_reference=True)
    clusters = table["dup_cluster"].to_list()
    planted = {3, 80, 81}
    assert len({clusters[i] for i in planted}) == 1
    members = [i for i, c in enumerate(clusters) if c == clusters[3]]
    assert set(members) == planted
    flags = table["is_near_duplicate"].to_list()
    assert [flags[i] for i in members] == [False, True, True]  # first row is the representative
    assert clusters[82] == clusters[10] and flags[82] and not flags[10]
    # Nothing else is flagged in this corpus of distinct real paragraphs.
    assert sum(flags) == 3


def test_planted_off_topic_record_is_rare(minilm, religion, email):
    texts = religion + [email[0]]
    x = minilm.encode(texts)
    table = TailScorer(k=10).fit(x).score(x, texts, is_reference=True)
    assert table["rarity"][-1] >= 0.95
    assert table["rarity"].min() >= 0.0 and table["rarity"].max() <= 1.0


def test_rarity_against_a_reference_differs_from_rarity_within_the_corpus(minilm, religion, adventure):
    corpus = religion[:40] + adventure[:40]
    reference = religion[40:]
    xc, xr = minilm.encode(corpus), minilm.encode(reference)
    within = TailScorer(k=10).fit(xc).score(xc, corpus, is_reference=True)["rarity"].to_numpy()
    against = TailScorer(k=10).fit(xr).score(xc, corpus)["rarity"].to_numpy()
    # Against a religion reference, adventure fiction is the tail; within the mixed corpus it is not.
    assert against[40:].mean() > within[40:].mean() + 0.2
    assert against[40:].mean() > against[:40].mean() + 0.3


def test_ivf_agrees_with_exact_search(minilm, tails_sample):
    texts = tails_sample["text"].to_list()
    x = minilm.encode(texts)
    exact = TailScorer(k=10, index="flat").fit(x)
    approx = TailScorer(k=10, index="ivf", nlist=16, nprobe=6).fit(x)
    report = approx.index_report_
    assert report.kind == "ivf" and report.recall_at_k >= 0.95
    a = approx.score(x, texts, is_reference=True)
    e = exact.score(x, texts, is_reference=True)
    assert np.abs(a["knn_distance"].to_numpy() - e["knn_distance"].to_numpy()).mean() < 0.01
    assert a["dup_cluster"].to_list() == e["dup_cluster"].to_list()


def test_same_input_and_seed_give_identical_scores(static, tails_sample):
    texts = tails_sample["text"].to_list()
    x = static.encode(texts)
    runs = [TailScorer(k=5, index="ivf", nlist=8, seed=3).fit(x).score(x, texts, is_reference=True)
            for _ in range(2)]
    assert runs[0].equals(runs[1])


def test_contract_and_errors():
    scorer = TailScorer(k=3)
    assert scorer.get_params()["k"] == 3
    with pytest.raises(ConfigError, match="not fitted"):
        scorer.score(np.eye(3, dtype="float32"))
    with pytest.raises(ConfigError, match="NaN"):
        scorer.fit(np.full((3, 2), np.nan, dtype="float32"))
    with pytest.raises(ConfigError, match="no parameter"):
        scorer.set_params(kk=1)
