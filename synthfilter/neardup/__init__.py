"""Near-duplicate texts by character-shingle Jaccard similarity (MinHash LSH, vectorised).

Embedding similarity misses small edits that change a content word (MiniLM
puts "The toilet is clogged" and "The is clogged" in otherwise equal
paragraphs at cosine 0.92, under the 0.95 default), and embeddings join
paraphrases that share no wording. Shingle overlap is the complementary,
surface-level notion used by large-scale de-duplication (MinHash with a
Jaccard threshold of about 0.8): two texts are near-duplicates when the sets
of character ``shingle_size``-grams of their :func:`~synthfilter.normalise.normalise_text`
forms have a Jaccard similarity of at least ``threshold``.

The pass is split into steps that a distributed engine can run apart:

========================  ==========  ================================================
step                      kind        output
========================  ==========  ================================================
:func:`shingle_hashes`    per record  sorted unique 48-bit shingle hashes (flat + offsets)
:func:`minhash_signatures` per record  ``(n, num_perm)`` one-permutation MinHash values
:func:`band_keys`         per record  ``(n, bands)`` 64-bit LSH band keys
:func:`candidate_pairs`   global      pairs sharing a band key (grouped by key)
:func:`verify_pairs`      per pair    the pairs whose exact Jaccard >= threshold
:func:`link_candidates`   global      rounds of the two above, union, spanning forest
========================  ==========  ================================================

:func:`near_duplicate_pairs` runs them all in one process. Every candidate
pair is checked with the exact Jaccard similarity of the two hash sets, so no
pair under the threshold is returned. The LSH bands are chosen for recall
(:func:`lsh_bands`): a pair exactly at the threshold is missed with
probability at most 1 %, a more similar pair less often. (With datasketch's
own banding for a 0.8 threshold, 9 bands of 13 rows, a pair at Jaccard 0.85
was missed 31 % of the time and one at 0.92, a single word dropped from a
40-word paragraph, 2.4 %.)
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from synthfilter.errors import ConfigError
from synthfilter.neardup.lsh import Buckets, candidate_pairs, group_buckets, link_candidates
from synthfilter.neardup.minhash import (
    EMPTY_KEY,
    EMPTY_VALUE,
    MAX_MISS_AT_THRESHOLD,
    band_keys,
    lsh_bands,
    minhash_signatures,
)
from synthfilter.neardup.shingles import ShingleHashes, jaccard, pair_jaccard, shingle_hashes, shingles, verify_pairs

__all__ = [
    "EMPTY_KEY",
    "EMPTY_VALUE",
    "MAX_MISS_AT_THRESHOLD",
    "Buckets",
    "ShingleHashes",
    "band_keys",
    "candidate_pairs",
    "group_buckets",
    "jaccard",
    "link_candidates",
    "lsh_bands",
    "minhash_signatures",
    "near_duplicate_pairs",
    "pair_jaccard",
    "shingle_hashes",
    "shingles",
    "verify_pairs",
]


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
        MinHash values per text (more: fewer missed pairs and fewer candidates
        to verify, slower); banded by :func:`lsh_bands`.
    seed : int, default 1
        Seed of the MinHash permutation.

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Index pairs ``rows[i] > cols[i]`` in order of ``rows`` (then ``cols``):
        enough pairs to join every near-duplicate cluster (transitively), not
        every pair of its members. Texts with equal normal forms are always joined.

    Raises
    ------
    ConfigError
        When ``threshold`` is outside (0, 1] or ``shingle_size`` or ``num_perm`` is invalid.

    Examples
    --------
    >>> a = "The toilet is clogged and cannot flush, and the sink is slowly backing up."
    >>> near_duplicate_pairs([a, a.replace("toilet ", ""), "Something else entirely."])
    (array([1]), array([0]))
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0.0 < threshold <= 1.0:
        raise ConfigError(f"the text near-duplicate threshold must be in (0, 1], got {threshold}")
    if isinstance(num_perm, bool) or not isinstance(num_perm, Integral) or not 1 <= num_perm <= 1 << 16:
        raise ConfigError(f"num_perm must be an integer in [1, 65536], got {num_perm!r}")
    hashes = shingle_hashes(texts, shingle_size)
    signatures = minhash_signatures(hashes, num_perm, seed)
    keys = band_keys(signatures, *lsh_bands(threshold, num_perm))
    return link_candidates(keys, lambda pairs: verify_pairs(pairs, hashes, threshold))
