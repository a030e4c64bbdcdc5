"""MinHash signatures and LSH band keys of shingle-hash sets (per record).

:func:`minhash_signatures` uses one-permutation MinHash with optimal
densification (Li, Owen & Zhang 2012; Shrivastava 2017): a seeded bijection
of the 48-bit hashes splits each set into ``num_perm`` bins by value and keeps
each bin's minimum; an empty bin takes the minimum of the first non-empty
bin along a seeded probe sequence shared by all records. Each of the
``num_perm`` values then agrees between two records with probability equal
to their Jaccard similarity, as with ``num_perm`` independent permutations,
at the cost of hashing every shingle once instead of ``num_perm`` times.

:func:`band_keys` hashes ``rows`` consecutive values into one 64-bit key per
band; records that share a key in any band are LSH candidates
(:mod:`synthfilter.neardup.lsh`). :func:`lsh_bands` picks the banding.
"""

from __future__ import annotations

import numpy as np

from synthfilter.errors import ConfigError
from synthfilter.neardup.hashing import HASH_BITS, HASH_MASK, mix64, seed_keys
from synthfilter.neardup.shingles import ShingleHashes

__all__ = ["EMPTY_KEY", "EMPTY_VALUE", "MAX_MISS_AT_THRESHOLD", "band_keys", "lsh_bands", "minhash_signatures"]

#: Largest probability that LSH misses a pair whose Jaccard similarity equals the threshold.
MAX_MISS_AT_THRESHOLD = 0.01
#: Signature value of a blank record (no shingles); larger than any real value.
EMPTY_VALUE = np.uint64(2**64 - 1)
#: Band key of a blank record; candidate grouping ignores it (a real key never takes it).
EMPTY_KEY = np.uint64(0)

_MAX_PERM = 1 << 16
_RECORDS_PER_STEP = 2048
_PROBES_PER_STEP = 16
_MAX_PROBES = 1 << 14


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


def _permute48(values: np.ndarray, seed: int) -> np.ndarray:
    """A seeded bijection of ``[0, 2**48)``: xor, odd multiplications and xor-shifts, all modulo 2**48."""
    k0, k1, k2 = seed_keys(seed, 3, salt=1)
    x = values ^ np.uint64(k0 & int(HASH_MASK))
    x = (x * np.uint64(k1 | 1)) & HASH_MASK
    x ^= x >> np.uint64(24)
    x = (x * np.uint64(k2 | 1)) & HASH_MASK
    x ^= x >> np.uint64(23)
    return x


def minhash_signatures(hashes: ShingleHashes, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """One-permutation MinHash signature of each record's shingle-hash set (per record).

    Parameters
    ----------
    hashes : ShingleHashes
        From :func:`~synthfilter.neardup.shingles.shingle_hashes`.
    num_perm : int, default 128
        Values per signature (bins), 1 to 65,536.
    seed : int, default 1
        Seed of the permutation and of the densification's probes.

    Returns
    -------
    numpy.ndarray of uint64, shape (n, num_perm)
        Value ``j`` of two records agrees with probability equal to the
        Jaccard similarity of their sets. A blank record's row is all
        :data:`EMPTY_VALUE`.

    Examples
    --------
    >>> from synthfilter.neardup.shingles import shingle_hashes
    >>> sig = minhash_signatures(shingle_hashes(["the cat sat on the mat", "The cat sat on the mat!", ""]), 16)
    >>> sig.shape, bool((sig[0] == sig[1]).all()), bool((sig[2] == EMPTY_VALUE).all())
    ((3, 16), True, True)
    """
    if isinstance(num_perm, bool) or not isinstance(num_perm, (int, np.integer)) or not 1 <= num_perm <= _MAX_PERM:
        raise ConfigError(f"num_perm must be an integer in [1, {_MAX_PERM}], got {num_perm!r}")
    n, m = len(hashes), int(num_perm)
    sig = np.empty((n, m), dtype=np.uint64)
    for lo in range(0, n, _RECORDS_PER_STEP):
        hi = min(lo + _RECORDS_PER_STEP, n)
        values = _permute48(hashes.values[hashes.offsets[lo] : hashes.offsets[hi]], seed)
        # Bin by value, keep each bin's minimum.
        cell = (values * np.uint64(m)) >> np.uint64(HASH_BITS)
        cell += np.repeat(np.arange(0, (hi - lo) * m, m, dtype=np.uint64), np.diff(hashes.offsets[lo : hi + 1]))
        part = np.full((hi - lo) * m, EMPTY_VALUE, dtype=np.uint64)
        np.minimum.at(part, cell.view(np.int64), values)  # cell = record * m + bin
        part = part.reshape(hi - lo, m)
        _densify(part, seed)
        sig[lo:hi] = part
    return sig


def _densify(sig: np.ndarray, seed: int) -> None:
    """Fill each empty bin of a non-blank row from the first non-empty bin on its probe sequence (in place)."""
    empty = sig == EMPTY_VALUE
    partial = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))
    if partial.size == 0:
        return
    m = sig.shape[1]
    original = sig[partial]  # probes read the bins as they were before densification
    flat_original = original.ravel()
    cell_row, cell_bin = np.nonzero(original == EMPTY_VALUE)
    key = np.uint64(seed_keys(seed, 1, salt=2)[0])
    step, width = 0, 1
    while step < _MAX_PROBES:
        # Probe bins of attempts step .. step + width - 1 for every bin (the same for all records).
        attempt = np.arange(step, step + width, dtype=np.uint64)
        code = (np.arange(m, dtype=np.uint64)[:, None] << np.uint64(32)) | attempt[None, :]
        table = (((mix64(code ^ key) >> np.uint64(64 - HASH_BITS)) * np.uint64(m)) >> np.uint64(HASH_BITS)).astype(np.int64)
        found = flat_original[(cell_row * m)[:, None] + table[cell_bin]]
        hit = found != EMPTY_VALUE
        first = hit.argmax(axis=1)
        done = hit[np.arange(first.size), first]
        sig[partial[cell_row[done]], cell_bin[done]] = found[done, first[done]]
        cell_row, cell_bin = cell_row[~done], cell_bin[~done]
        if cell_row.size == 0:
            return
        step, width = step + width, min(2 * width, _PROBES_PER_STEP)
    # Practically unreachable (each probe misses with probability < 1 - 1/num_perm): the next non-empty bin.
    for r, b in zip(cell_row.tolist(), cell_bin.tolist()):
        row = original[r]
        nxt = (b + 1 + np.flatnonzero(np.roll(row, -(b + 1)) != EMPTY_VALUE)[0]) % m
        sig[partial[r], b] = row[nxt]


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band of ``rows`` consecutive signature values (per record).

    Parameters
    ----------
    signatures : numpy.ndarray of uint64, shape (n, num_perm)
        From :func:`minhash_signatures`.
    bands, rows : int
        The banding, e.g. from :func:`lsh_bands`; ``bands * rows <= num_perm``.

    Returns
    -------
    numpy.ndarray of uint64, shape (n, bands)
        Equal values give equal keys, unequal ones equal keys with probability
        about 2**-64; the band's number is hashed in, so keys of different
        bands differ too. Blank records get :data:`EMPTY_KEY`.

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 5]], dtype=np.uint64)
    >>> k = band_keys(sig, 2, 2)
    >>> bool(k[0, 0] == k[1, 0]), bool(k[0, 1] == k[1, 1])
    (True, False)
    """
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or signatures.dtype != np.uint64:
        raise ConfigError(f"signatures must be a 2-D uint64 array, got {signatures.dtype} of shape {signatures.shape}")
    if bands < 1 or rows < 1 or bands * rows > signatures.shape[1]:
        raise ConfigError(f"{bands} bands of {rows} rows need {bands * rows} values; signatures have {signatures.shape[1]}")
    n = signatures.shape[0]
    cube = signatures[:, : bands * rows].reshape(n, bands, rows)
    keys = np.broadcast_to(mix64(np.arange(1, bands + 1, dtype=np.uint64)), (n, bands)).copy()
    for j in range(rows):
        keys ^= cube[:, :, j]
        keys = mix64(keys)
    keys[keys == EMPTY_KEY] = np.uint64(1)
    keys[signatures[:, 0] == EMPTY_VALUE] = EMPTY_KEY
    return keys
