"""Near-duplicate texts by character-shingle Jaccard similarity (MinHash LSH).

Embedding similarity misses small edits that change a content word (MiniLM
puts "The toilet is clogged" and "The is clogged" in otherwise equal
paragraphs at cosine 0.92, under the 0.95 default), and embeddings join
paraphrases that share no wording. Shingle overlap is the complementary,
surface-level notion used by large-scale de-duplication (MinHash with a
Jaccard threshold of about 0.8): two texts are near-duplicates when the sets
of character ``shingle_size``-grams of their :func:`~synthfilter.normalise.normalise_text`
forms have a Jaccard similarity of at least ``threshold``.

Candidates come from :class:`datasketch.MinHashLSH` (sub-linear); each
candidate pair is then checked with the exact Jaccard similarity of the two
shingle sets, so no pair under the threshold is returned. The LSH bands are
chosen for recall (:func:`lsh_bands`): a pair exactly at the threshold is
missed with probability at most 1 %, a more similar pair less often. (With
datasketch's own banding for a 0.8 threshold, 9 bands of 13 rows, a pair at
Jaccard 0.85 was missed 31 % of the time and one at 0.92, a single word
dropped from a 40-word paragraph, 2.4 %.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthfilter.errors import ConfigError
from synthfilter.normalise import normalise_text

__all__ = ["jaccard", "lsh_bands", "near_duplicate_pairs", "shingles"]

#: Largest probability that LSH misses a pair whose Jaccard similarity equals the threshold.
MAX_MISS_AT_THRESHOLD = 0.01


def shingles(text: str, size: int = 5) -> set[str]:
    """Character ``size``-grams of the normalised text (the whole text if shorter; empty if blank).

    Examples
    --------
    >>> sorted(shingles("Hello, World", 8))
    ['ello wor', 'hello wo', 'llo worl', 'lo world']
    """
    norm = normalise_text(text)
    if not norm:
        return set()
    if len(norm) <= size:
        return {norm}
    return {norm[i : i + size] for i in range(len(norm) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two sets (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def lsh_bands(threshold: float, num_perm: int, max_miss: float = MAX_MISS_AT_THRESHOLD) -> tuple[int, int]:
    """LSH banding ``(bands, rows)`` that finds pairs at ``threshold`` with high recall.

    A pair of Jaccard similarity ``s`` becomes a candidate with probability
    ``1 - (1 - s**rows)**bands``. Of the bandings that use at most
    ``num_perm`` permutations and miss a pair at ``threshold`` with
    probability at most ``max_miss``, this takes the one with the most rows
    per band (fewest dissimilar candidates to verify); with none, one row per band.

    Examples
    --------
    >>> lsh_bands(0.8, 128)
    (21, 6)
    >>> b, r = lsh_bands(0.8, 128)
    >>> round((1 - 0.8**r) ** b, 4)  # probability of missing a pair at Jaccard 0.8
    0.0017
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if (1.0 - threshold**rows) ** bands <= max_miss:
            return bands, rows
    return num_perm, 1


def near_duplicate_pairs(
    texts: Sequence[str],
    threshold: float = 0.8,
    *,
    shingle_size: int = 5,
    num_perm: int = 128,
    seed: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of texts whose shingle Jaccard similarity is at least ``threshold``.

    Parameters
    ----------
    texts : sequence of str
        The texts; blank ones (nothing left after normalising) pair with nothing.
    threshold : float, default 0.8
        Jaccard similarity, in (0, 1], at or above which two texts are near-duplicates.
    shingle_size : int, default 5
        Characters per shingle.
    num_perm : int, default 128
        MinHash permutations (more: fewer missed pairs and fewer candidates to
        verify, slower); banded by :func:`lsh_bands`.
    seed : int, default 1
        Seed of the MinHash permutations.

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Index pairs ``rows[i] > cols[i]`` in order of ``rows``: enough pairs
        to join every near-duplicate cluster (transitively), not every pair
        of its members. Texts with equal normal forms are always joined.

    Examples
    --------
    >>> a = "The toilet is clogged and cannot flush, and the sink is slowly backing up."
    >>> near_duplicate_pairs([a, a.replace("toilet ", ""), "Something else entirely."])
    (array([1]), array([0]))
    """
    from datasketch import MinHash, MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"the text near-duplicate threshold must be in (0, 1], got {threshold}")
    if shingle_size < 1:
        raise ConfigError(f"shingle_size must be >= 1, got {shingle_size}")
    # One pass: each text is queried against the texts before it, then inserted, so no
    # sketch or shingle set is kept beyond the LSH index. Equal normal forms pair with
    # their first occurrence directly; a candidate already joined to the text through
    # other pairs is not checked again (the clusters are the same, and a template
    # repeated thousands of times does not cost a quadratic number of checks).
    lsh = MinHashLSH(num_perm=num_perm, params=lsh_bands(threshold, num_perm))
    first_of: dict[str, int] = {}
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows: list[int] = []
    cols: list[int] = []
    for i, text in enumerate(texts):
        norm = normalise_text(text)
        if not norm:
            continue
        j = first_of.setdefault(norm, i)
        if j != i:
            rows.append(i)
            cols.append(j)
            parent[find(i)] = find(j)
            continue
        own = shingles(text, shingle_size)
        sketch = MinHash(num_perm=num_perm, seed=seed)
        sketch.update_batch([g.encode("utf-8") for g in own])
        for j in sorted(lsh.query(sketch)):
            if find(i) != find(j) and jaccard(own, shingles(texts[j], shingle_size)) >= threshold:
                rows.append(i)
                cols.append(j)
                parent[find(i)] = find(j)
        lsh.insert(i, sketch, check_duplication=False)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
