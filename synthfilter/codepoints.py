"""Texts as one flat array of Unicode code points, with Python's character classes.

Vectorised text features start here: :func:`code_points` lays a batch of
texts end to end as ``uint32`` code points (what Python's ``len`` and
indexing count), and :func:`char_flags` gives each code point the answers of
Python's own ``str.isupper``, ``isdigit``, ``isspace`` and ``isalnum``, read
from a table that Python itself filled (so they agree with ``re``'s ``\\s``
and ``\\w`` and with ``str.split``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["ALNUM", "DIGIT", "SPACE", "UPPER", "char_flags", "code_points", "is_run_end", "is_run_start"]

UPPER, DIGIT, SPACE, ALNUM = 1, 2, 4, 8

_BMP = 0x10000


def _flags_of(cp: int) -> int:
    c = chr(cp)
    return (UPPER * c.isupper()) | (DIGIT * c.isdigit()) | (SPACE * c.isspace()) | (ALNUM * c.isalnum())


@lru_cache(maxsize=1)
def _bmp_table() -> np.ndarray:
    return np.fromiter((_flags_of(cp) for cp in range(_BMP)), dtype=np.uint8, count=_BMP)


def code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' code points end to end, and where each text starts and ends.

    Parameters
    ----------
    texts : sequence of str

    Returns
    -------
    cps : numpy.ndarray of uint32
        The code points of ``texts[0]``, then of ``texts[1]``, ...
    bounds : numpy.ndarray of int64, shape ``(len(texts) + 1,)``
        Text ``i`` is ``cps[bounds[i]:bounds[i + 1]]``.
    """
    bounds = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=bounds[1:])
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return cps, bounds


def char_flags(cps: np.ndarray) -> np.ndarray:
    """Bit flags (:data:`UPPER`, :data:`DIGIT`, :data:`SPACE`, :data:`ALNUM`) of each code point."""
    table = _bmp_table()
    flags = table[np.minimum(cps, _BMP - 1)]
    astral = np.flatnonzero(cps >= _BMP)
    if astral.size:
        values, inverse = np.unique(cps[astral], return_inverse=True)
        flags[astral] = np.array([_flags_of(int(cp)) for cp in values], dtype=np.uint8)[inverse]
    return flags


def is_run_start(member: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """True where a run of ``member`` positions begins (runs never cross texts)."""
    start = member.copy()
    start[1:] &= ~member[:-1]
    firsts = bounds[:-1][bounds[:-1] < member.size]
    start[firsts] = member[firsts]
    return start


def is_run_end(member: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """True where a run of ``member`` positions has its last position."""
    end = member.copy()
    end[:-1] &= ~member[1:]
    lasts = bounds[1:][bounds[1:] > 0] - 1
    end[lasts] = member[lasts]
    return end
