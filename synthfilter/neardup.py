"""Near-duplicate texts by character-shingle Jaccard similarity (MinHash LSH).

Embedding similarity misses small edits that change a content word (MiniLM
puts "The toilet is clogged" and "The is clogged" in otherwise equal
paragraphs at cosine 0.92, under the 0.95 default), and embeddings join
paraphrases that share no wording. Shingle overlap is the complementary,
surface-level notion used by large-scale de-duplication (MinHash with a
Jaccard threshold of about 0.8): two texts are near-duplicates when the sets
of character ``shingle_size``-grams of their :func:`~synthfilter.normalise.normalise_text`
forms have a Jaccard similarity of at least ``threshold``.

Candidates come from :class:`datasketch.MinHashLSH` (sub-linear, tuned for the
threshold); each candidate pair is then checked with the exact Jaccard
similarity of the two shingle sets, so no pair under the threshold is
returned (a pair just above it may be missed by LSH with a small probability).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthfilter.errors import ConfigError
from synthfilter.normalise import normalise_text

__all__ = ["jaccard", "near_duplicate_pairs", "shingles"]


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
        MinHash permutations (more: fewer missed pairs, slower).
    seed : int, default 1
        Seed of the MinHash permutations.

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Index pairs ``rows[i] > cols[i]``, sorted; each pair once.

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
    sets = [shingles(t, shingle_size) for t in texts]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes: list[MinHash | None] = []
    for i, s in enumerate(sets):
        if not s:
            hashes.append(None)
            continue
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch([g.encode("utf-8") for g in s])
        lsh.insert(i, m, check_duplication=False)
        hashes.append(m)
    rows: list[int] = []
    cols: list[int] = []
    for i, m in enumerate(hashes):
        if m is None:
            continue
        for j in sorted(j for j in lsh.query(m) if j < i):
            if jaccard(sets[i], sets[j]) >= threshold:
                rows.append(i)
                cols.append(j)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
