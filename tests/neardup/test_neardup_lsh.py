from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthfilter.errors import ConfigError
from synthfilter.neardup import (
    band_keys,
    candidate_pairs,
    group_buckets,
    link_candidates,
    lsh_bands,
    minhash_signatures,
    near_duplicate_pairs,
    pair_jaccard,
    shingle_hashes,
    verify_pairs,
)


def partition(rows, cols, n) -> set[tuple[int, ...]]:
    _, labels = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), directed=False)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return {tuple(g) for g in groups.values() if len(g) > 1}


def with_variants(texts: list[str], rng, copies: int) -> list[str]:
    """Each text plus ``copies`` variants with 1-6 dropped words, shuffled among the originals."""
    out = list(texts)
    for t in texts:
        for _ in range(copies):
            words = t.split(" ")
            drop = set(rng.choice(len(words), size=int(rng.integers(1, 7)), replace=False).tolist())
            out.append(" ".join(w for i, w in enumerate(words) if i not in drop))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def test_candidate_pairs_chain_all_and_labels():
    keys = np.array([[5, 7], [5, 8], [5, 7], [9, 8], [5, 1]], dtype=np.uint64)
    chain = candidate_pairs(keys)
    assert list(zip(*[a.tolist() for a in chain])) == [(1, 0), (2, 0), (2, 1), (3, 1), (4, 2)]
    every = candidate_pairs(keys, offsets=(1, None))
    assert list(zip(*[a.tolist() for a in every])) == [(1, 0), (2, 0), (2, 1), (3, 1), (4, 0), (4, 1), (4, 2)]
    far = candidate_pairs(keys, offsets=(2, 4))
    assert list(zip(*[a.tolist() for a in far])) == [(2, 0), (4, 0), (4, 1)]
    joined = candidate_pairs(keys, np.array([0, 0, 0, 1, 0]), offsets=(1, None))
    assert list(zip(*[a.tolist() for a in joined])) == [(3, 1)]
    assert group_buckets(keys).sizes.tolist() == [4, 2, 2]
    with pytest.raises(ConfigError, match="offsets"):
        candidate_pairs(keys, offsets=(0, 2))


def test_rounds_give_the_clusters_of_checking_every_candidate(heldout_texts):
    rng = np.random.default_rng(1)
    texts = with_variants(heldout_texts[:1500], rng, 0) + with_variants(heldout_texts[1500:1700], rng, 3)
    hashes = shingle_hashes(texts)
    keys = band_keys(minhash_signatures(hashes), *lsh_bands(0.8, 128))
    checked = []

    def verify(pairs):
        checked.append(pairs[0].size)
        return verify_pairs(pairs, hashes, 0.8)

    rows, cols = link_candidates(keys, verify)
    every = verify_pairs(candidate_pairs(keys, offsets=(1, None)), hashes, 0.8)
    n = len(texts)
    assert partition(rows, cols, n) == partition(*every, n)
    assert len(partition(rows, cols, n)) >= 150  # the planted clusters (and the corpus's own duplicates)
    assert rows.size == sum(len(g) - 1 for g in partition(rows, cols, n))  # a spanning forest
    assert (pair_jaccard(rows, cols, hashes) >= 0.8).all() and (rows > cols).all()
    assert sum(checked) < candidate_pairs(keys, offsets=(1, None))[0].size


def test_split_steps_give_the_pairs_of_near_duplicate_pairs(heldout_texts):
    texts = with_variants(heldout_texts[:400], np.random.default_rng(2), 1)
    hashes = shingle_hashes(texts, 4)
    keys = band_keys(minhash_signatures(hashes, 64, seed=5), *lsh_bands(0.7, 64))
    split = link_candidates(keys, lambda p: verify_pairs(p, hashes, 0.7))
    whole = near_duplicate_pairs(texts, 0.7, shingle_size=4, num_perm=64, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(split, whole))
    assert whole[0].size >= 300


def test_a_template_repeated_2000_times_is_one_cluster_for_few_checks(heldout_texts):
    template = heldout_texts[10]
    words = template.split(" ")
    copies = [template if i % 2 else " ".join(words[: i % 40] + words[i % 40 + 1 :]) for i in range(2000)]
    texts = [t for pair in zip(copies, heldout_texts[100:2100]) for t in pair]  # interleaved with distinct texts
    hashes = shingle_hashes(texts)
    keys = band_keys(minhash_signatures(hashes), *lsh_bands(0.8, 128))
    checked = []

    def verify(pairs):
        checked.append(pairs[0].size)
        return verify_pairs(pairs, hashes, 0.8)

    rows, cols = link_candidates(keys, verify)
    groups = partition(rows, cols, len(texts))
    template_group = next(g for g in groups if 0 in g)
    assert set(range(0, 4000, 2)) <= set(template_group)
    assert sum(checked) < 3 * 2000  # not the ~2 million pairs of the template's buckets
