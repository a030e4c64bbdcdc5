"""Near-duplicate texts as per-record sketches, a group-by and pair checks.

The same notion as :func:`synthfilter.neardup.near_duplicate_pairs` (character
shingle Jaccard similarity at least a threshold, MinHash LSH candidates
checked exactly), cut at the seams a distributed engine needs:

1. :func:`band_keys_of` (per record): the MinHash LSH band keys of a text;
2. :func:`candidate_pairs` (global, small): pairs of records that share a
   band key, from the keys alone;
3. :class:`ShingleJaccard` (per pair, where the texts are): the exact check.

Equal normal forms are joined through :func:`norm_keys` and only the first
record of each normal form takes part in the LSH step, as in
:func:`~synthfilter.neardup.near_duplicate_pairs`; the clusters that come
out are the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from synthfilter.neardup import band_keys, jaccard, lsh_bands, minhash_signatures, shingle_hashes, shingles
from synthfilter.normalise import normalise_text

#: MinHash settings of :func:`synthfilter.neardup.near_duplicate_pairs`.
SHINGLE_SIZE = 5
NUM_PERM = 128
MINHASH_SEED = 1


def norm_keys(texts: Sequence[str]) -> np.ndarray:
    """128-bit key of each text's normal form, ``(n, 2)`` uint64 (equal keys: exact duplicates)."""
    out = np.empty((len(texts), 2), dtype=np.uint64)
    for i, text in enumerate(texts):
        digest = hashlib.blake2b(normalise_text(text).encode("utf-8"), digest_size=16).digest()
        out[i] = np.frombuffer(digest, dtype=np.uint64)
    return out


#: :func:`norm_keys` of a text that normalises to nothing (it pairs with no other text by shingles).
BLANK_KEY = norm_keys([""])[0]


def band_keys_of(texts: Sequence[str], threshold: float) -> np.ndarray:
    """MinHash LSH band keys, ``(n, bands)`` uint64; a row of zeros for a blank text.

    The signature is the one :func:`~synthfilter.neardup.near_duplicate_pairs`
    uses (:func:`~synthfilter.neardup.minhash_signatures` of the hashed
    shingles, then :func:`~synthfilter.neardup.band_keys`), banded by
    :func:`~synthfilter.neardup.lsh_bands`.
    """
    bands, rows = lsh_bands(threshold, NUM_PERM)
    signatures = minhash_signatures(shingle_hashes(list(texts), SHINGLE_SIZE), NUM_PERM, seed=MINHASH_SEED)
    return np.asarray(band_keys(signatures, bands, rows), dtype=np.uint64)


def exact_pairs(norm_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, first)`` joining every record to the first record with its normal form."""
    keys = np.ascontiguousarray(norm_key).view(np.dtype((np.void, 16))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    owner = first[inverse.ravel()]
    rows = np.flatnonzero(owner != np.arange(keys.size))
    return rows.astype(np.int64), owner[rows].astype(np.int64)


def candidate_pairs(band_keys: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``rows > cols`` of active records that share a band key (each pair once, sorted).

    Parameters
    ----------
    band_keys : numpy.ndarray, shape (n, bands)
        Keys from :func:`band_keys_of`.
    active : numpy.ndarray of bool, shape (n,)
        Records that take part (the first of each normal form, not blank).
    """
    idx = np.flatnonzero(active)
    rows_out: list[np.ndarray] = []
    cols_out: list[np.ndarray] = []
    for band in range(band_keys.shape[1]):
        keys = band_keys[idx, band]
        order = np.argsort(keys)
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, sorted_keys.size])
        shared = sizes > 1
        if not shared.any():
            continue
        # Every pair within each group of equal keys, without a loop over the groups: the member at
        # offset o of a group of s pairs with the s - 1 - o members after it.
        sizes, starts = sizes[shared], starts[shared]
        offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        position = np.repeat(starts, sizes) + offsets
        later = np.repeat(sizes, sizes) - 1 - offsets
        first = np.repeat(position, later)
        second = first + 1 + np.arange(first.size) - np.repeat(np.cumsum(later) - later, later)
        one, other = idx[order[first]], idx[order[second]]
        rows_out.append(np.maximum(one, other))
        cols_out.append(np.minimum(one, other))
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = np.concatenate(rows_out), np.concatenate(cols_out)
    n = band_keys.shape[0]
    code = np.unique(rows.astype(np.int64) * n + cols)
    return (code // n).astype(np.int64), (code % n).astype(np.int64)


class ShingleJaccard:
    """Pair check: character-shingle Jaccard similarity at least ``threshold``.

    Parameters
    ----------
    threshold : float
        Jaccard similarity in (0, 1].
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def __call__(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Whether each pair of texts is a near-duplicate."""
        return np.asarray([jaccard(shingles(a, SHINGLE_SIZE), shingles(b, SHINGLE_SIZE)) >= self.threshold
                           for a, b in zip(left, right)], dtype=bool)
