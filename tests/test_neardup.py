from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.neardup import jaccard, near_duplicate_pairs, shingles
from synthfilter.tails import TailScorer


@pytest.fixture(scope="module")
def paragraphs(tails_sample):
    return tails_sample["text"].to_list()


def drop_word(text: str, index: int) -> str:
    words = text.split(" ")
    return " ".join(words[:index] + words[index + 1 :])


def test_shingles_and_jaccard():
    assert shingles("  ") == set()
    assert shingles("Hi!") == {"hi"}
    assert jaccard(shingles("The cat sat."), shingles("the CAT sat")) == 1.0
    assert jaccard(set(), set()) == 0.0
    assert 0.0 < jaccard(shingles("the cat sat on the mat"), shingles("the dog sat on the mat")) < 1.0


def test_small_edits_pair_up_and_distinct_real_paragraphs_do_not(paragraphs):
    base = [t for t in paragraphs if len(t.split()) >= 40][:120]
    # A dropped content word plus a case change: the kind of edit embeddings can miss.
    edited = drop_word(base[5], 20).replace(base[5].split()[1], base[5].split()[1].upper(), 1)
    swapped = base[7].replace(".", ",", 1)
    texts = base + [edited, swapped, "", "   "]
    rows, cols = near_duplicate_pairs(texts)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(120, 5), (121, 7)]
    assert (rows > cols).all()


def test_threshold_is_respected_exactly(paragraphs):
    text = paragraphs[0]
    variants = [drop_word(text, i) for i in range(0, 30, 3)]
    texts = [text, *variants]
    for threshold in (0.5, 0.9, 0.97):
        rows, cols = near_duplicate_pairs(texts, threshold)
        sims = {(i, j): jaccard(shingles(texts[i]), shingles(texts[j])) for i, j in zip(rows, cols)}
        assert all(s >= threshold for s in sims.values())
    with pytest.raises(ConfigError, match="threshold"):
        near_duplicate_pairs(texts, 0.0)


def test_tail_scorer_joins_what_the_embedding_misses(minilm, paragraphs):
    base = [t for t in paragraphs if len(t.split()) >= 40][:80]
    edited = drop_word(base[3], 12).replace(" the ", " THE ", 1)
    texts = base + [edited]
    x = minilm.encode(texts)
    cos = float(x[3] @ x[80])
    with_text = TailScorer(k=10).fit(x).score(x, texts, is_reference=True)
    without = TailScorer(k=10, text_dup_threshold=None, dup_threshold=max(cos + 1e-3, 0.95)).fit(x).score(
        x, texts, is_reference=True
    )
    assert with_text["dup_cluster"][80] == with_text["dup_cluster"][3]
    assert without["dup_cluster"][80] != without["dup_cluster"][3]
    assert with_text["is_near_duplicate"].sum() == 1


def test_same_texts_same_pairs(paragraphs):
    texts = paragraphs[:60] + [p.lower() + " x" for p in paragraphs[:5]]
    a = near_duplicate_pairs(texts, seed=3)
    b = near_duplicate_pairs(list(texts), seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert pl.Series(a[0]).len() >= 5


def test_many_copies_of_a_template_form_one_cluster_with_few_pairs(paragraphs):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    template = paragraphs[1]
    words = template.split(" ")
    texts = [" ".join(words[:i % 30] + words[i % 30 + 1 :]) for i in range(600)]  # 30 variants, 20 copies each
    texts += paragraphs[2:40]
    rows, cols = near_duplicate_pairs(texts)
    n = len(texts)
    _, labels = connected_components(coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)), directed=False)
    assert len(set(labels[:600])) == 1                      # every copy in one cluster
    assert len(set(labels[600:])) == n - 600                  # the distinct paragraphs stay apart
    assert labels[600] != labels[0]
    assert rows.size == 599                                 # a spanning set of pairs, not all 179,700


def test_pairs_just_above_the_threshold_are_found(paragraphs):
    # Two to five dropped words: Jaccard 0.8-0.95, where LSH banded for the
    # threshold's midpoint missed up to a third of the pairs.
    base = [t for t in paragraphs if len(t.split()) >= 40][:150]
    rng = np.random.default_rng(0)
    edited = []
    for text in base:
        for _ in range(int(rng.integers(2, 6))):
            text = drop_word(text, int(rng.integers(1, len(text.split(" ")) - 1)))
        edited.append(text)
    sims = np.array([jaccard(shingles(a), shingles(b)) for a, b in zip(base, edited)])
    rows, cols = near_duplicate_pairs(base + edited, 0.8)
    found = set(zip(rows.tolist(), cols.tolist()))
    hit = np.array([(len(base) + i, i) in found for i in range(len(base))])
    assert (sims[sims >= 0.85] > 0).sum() >= 50  # the test covers the range it is about
    assert hit[sims >= 0.85].all()
    assert hit[(sims >= 0.8) & (sims < 0.85)].mean() >= 0.95
    assert not hit[sims < 0.8].any()


def test_bad_settings_are_refused_and_numpy_numbers_accepted(paragraphs):
    texts = paragraphs[:20] + [paragraphs[0].upper() + "!"]
    for kwargs, match in [({"shingle_size": 0}, "shingle_size"), ({"num_perm": 0}, "num_perm"),
                          ({"threshold": 1.5}, "threshold"), ({"threshold": float("nan")}, "threshold")]:
        with pytest.raises(ConfigError, match=match):
            near_duplicate_pairs(texts, **kwargs)
    rows, cols = near_duplicate_pairs(texts, np.float32(0.8), num_perm=np.int64(64))
    assert (20, 0) in set(zip(rows.tolist(), cols.tolist()))
    assert near_duplicate_pairs([])[0].size == 0
    assert near_duplicate_pairs(["", "  ", "!!"])[0].size == 0  # blank texts join nothing
