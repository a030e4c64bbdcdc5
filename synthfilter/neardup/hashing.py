"""Vectorised 64-bit mixing shared by the shingle hashes, the MinHash signatures and the band keys.

Everything here works on whole numpy arrays of ``uint64`` (arithmetic wraps
modulo 2**64) and depends on nothing but its arguments, so a record hashes to
the same values on any machine, in any batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HASH_BITS", "HASH_MASK", "mix64", "seed_keys"]

#: Bits of a shingle hash: values lie in ``[0, 2**48)``, which leaves 16 bits to
#: tag a record or a pair and sort many records' hashes with one ``np.sort``.
HASH_BITS = 48
HASH_MASK = np.uint64((1 << HASH_BITS) - 1)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, a bijection of ``uint64`` that spreads every input bit over the output.

    Parameters
    ----------
    x : numpy.ndarray of uint64
        Values to mix (not modified).

    Returns
    -------
    numpy.ndarray of uint64
        Mixed values, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> mix64(np.array([0, 1], dtype=np.uint64))
    array([                  0, 6238072747940578789], dtype=uint64)
    """
    x = np.asarray(x, dtype=np.uint64)
    x = x ^ (x >> _S30)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def seed_keys(seed: int, count: int, salt: int = 0) -> list[int]:
    """``count`` pseudo-random 64-bit integers derived from ``seed`` (SplitMix64; no numpy RNG stream).

    Parameters
    ----------
    seed : int
        Any integer.
    count : int
        How many keys.
    salt : int, default 0
        Separates the keys of different uses of one seed.

    Returns
    -------
    list of int
        Keys in ``[0, 2**64)``.
    """
    mask = (1 << 64) - 1
    state = (int(seed) * 0x9E3779B97F4A7C15 + int(salt) * 0xD1B54A32D192ED03) & mask
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out
