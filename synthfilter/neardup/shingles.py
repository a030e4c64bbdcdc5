"""Character shingles of normalised text as sorted 48-bit hashes, and their exact Jaccard similarity.

:func:`shingle_hashes` is the per-record step: it normalises many texts at
once (the :func:`~synthfilter.normalise.normalise_text` form, computed on
one array of code points) and hashes every character ``shingle_size``-gram to
a 48-bit value (the code points packed exactly, 21 bits each, then mixed with
:func:`~synthfilter.neardup.hashing.mix64`). Each record keeps its sorted,
unique hashes, so :func:`pair_jaccard` measures the Jaccard similarity of two
records from these arrays alone, without the texts: two distinct shingles
share a hash with probability about 2**-48.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthfilter.errors import ConfigError, InputError
from synthfilter.neardup.hashing import HASH_BITS, HASH_MASK, mix64
from synthfilter.normalise import normalise_text

__all__ = ["ShingleHashes", "jaccard", "pair_jaccard", "shingle_hashes", "shingles", "verify_pairs"]

_TAG_SHIFT = np.uint64(HASH_BITS)
_MAX_TAGGED = 1 << (64 - HASH_BITS)  # records (or pairs) sorted together in one batch
_CP_BITS = 21  # every code point is below 2**21
_SMALL_BITS = 12  # below 2**12, five code points pack into one word
_SMALL = np.uint64(0x13198A2E03707344)
_START = np.uint64(0x243F6A8885A308D3)
_PAGE_BITS = 12
_word_table = np.zeros(0, dtype=bool)
_word_pages = np.zeros(0, dtype=bool)


def shingles(text: str, size: int = 5) -> set[str]:
    """Character ``size``-grams of the normalised text (the whole text if shorter; empty if blank).

    The reference definition that :func:`shingle_hashes` hashes.

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


@dataclass(frozen=True)
class ShingleHashes:
    """Sorted unique shingle hashes of many records, stored flat.

    Record ``i`` owns ``values[offsets[i]:offsets[i + 1]]``, sorted ascending
    and unique; a blank record owns nothing.

    Attributes
    ----------
    values : numpy.ndarray of uint64
        All records' hashes, record after record; each in ``[0, 2**48)``.
    offsets : numpy.ndarray of int64
        ``len(self) + 1`` bounds into ``values``, starting at 0.
    """

    values: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    @property
    def sizes(self) -> np.ndarray:
        """Unique shingles per record (int64)."""
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> ShingleHashes:
        """The records ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        index, sizes = _segment_index(self.offsets, rows)
        offsets = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return ShingleHashes(self.values[index], offsets)

    @classmethod
    def concat(cls, parts: Sequence[ShingleHashes]) -> ShingleHashes:
        """Records of ``parts`` one after another (e.g. batches hashed on different workers)."""
        sizes = [p.sizes for p in parts]
        offsets = np.zeros(sum(s.size for s in sizes) + 1, dtype=np.int64)
        if sizes:
            np.cumsum(np.concatenate(sizes), out=offsets[1:])
        values = np.concatenate([p.values for p in parts]) if parts else np.zeros(0, np.uint64)
        return cls(values.astype(np.uint64, copy=False), offsets)


def _segment_index(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the segments ``rows`` of a CSR-like layout, and each segment's size."""
    sizes = offsets[rows + 1] - offsets[rows]
    total = int(sizes.sum())
    starts = np.zeros(rows.size, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    index = np.arange(total, dtype=np.int64) + np.repeat(offsets[rows] - starts, sizes)
    return index, sizes


def _is_word(code_points: np.ndarray) -> np.ndarray:
    """True where ``chr(c)`` is alphanumeric (``\\w`` without ``_``, as in normalise_text), per code point.

    The lookup table is filled lazily, one page of 4,096 code points at a time,
    for the pages that occur.
    """
    global _word_table, _word_pages
    if _word_table.size == 0:
        _word_table = np.zeros(0x110000, dtype=bool)
        _word_pages = np.zeros(0x110000 >> _PAGE_BITS, dtype=bool)
    top = int(code_points.max()) >> _PAGE_BITS if code_points.size else 0
    if _word_pages[: top + 1].all():
        return _word_table[code_points]
    used = np.bincount(code_points >> _PAGE_BITS, minlength=_word_pages.size) > 0
    for page in np.flatnonzero(used & ~_word_pages).tolist():
        lo = page << _PAGE_BITS
        _word_table[lo : lo + (1 << _PAGE_BITS)] = [chr(c).isalnum() for c in range(lo, lo + (1 << _PAGE_BITS))]
        _word_pages[page] = True
    return _word_table[code_points]


def _normalised_code_points(texts: Sequence[str], sep: int) -> np.ndarray:
    """Code points of every text's normal form, each text preceded and followed by ``sep`` zeros.

    Equal to :func:`~synthfilter.normalise.normalise_text` per text: NFKC and
    case folding per text, then every run of non-alphanumeric characters
    becomes one space, and runs at a text's ends vanish (vectorised on the
    code points; the zeros mark where texts meet).
    """
    forms = []
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"near-duplicate texts must be strings; row {row} is {type(text).__name__}")
        form = unicodedata.normalize("NFKC", text).casefold()
        forms.append(form.replace("\x00", " ") if "\x00" in form else form)
    pad = "\x00" * sep
    cp = np.frombuffer((pad + pad.join(forms) + pad).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    word = _is_word(cp)
    zero = cp == 0
    # Runs of non-word characters: [run_start, run_end] inclusive.
    before = np.empty_like(word)
    before[0], before[1:] = True, word[:-1]
    after = np.empty_like(word)
    after[-1], after[:-1] = True, word[1:]
    run_start = np.flatnonzero(~word & before)
    run_end = np.flatnonzero(~word & after)
    zero_at = np.flatnonzero(zero)
    # A run holds no text boundary when no zero lies in [run_start, run_end].
    inner = np.searchsorted(zero_at, run_end, side="right") == np.searchsorted(zero_at, run_start, side="left")
    keep = word | zero
    keep[run_start[inner]] = True
    out = cp.copy()
    out[run_start[inner]] = 32
    return out[keep]


def shingle_hashes(texts: Sequence[str], shingle_size: int = 5, *, batch_size: int = 512) -> ShingleHashes:
    """Sorted unique 48-bit hashes of each text's character ``shingle_size``-grams (per record).

    The shingles are those of :func:`shingles`: ``shingle_size``-grams of the
    :func:`~synthfilter.normalise.normalise_text` form, the whole form when it
    is shorter, none for a blank text. A record's hashes depend on its text
    alone, not on the batch it is hashed in.

    Parameters
    ----------
    texts : sequence of str
        The records' texts.
    shingle_size : int, default 5
        Characters per shingle.
    batch_size : int, default 512
        Texts hashed together (memory and speed only: small batches stay in
        the CPU cache; at most 65,536).

    Returns
    -------
    ShingleHashes
        One sorted unique ``uint64`` array per text, stored flat.

    Raises
    ------
    ConfigError
        When ``shingle_size`` < 1.
    InputError
        When a text is not a string.

    Examples
    --------
    >>> h = shingle_hashes(["Hello, world!", "hello world", "  "])
    >>> h.sizes.tolist(), bool((h[0] == h[1]).all())
    ([7, 7, 0], True)
    """
    if isinstance(shingle_size, bool) or not isinstance(shingle_size, (int, np.integer)) or shingle_size < 1:
        raise ConfigError(f"shingle_size must be an integer >= 1, got {shingle_size!r}")
    k = int(shingle_size)
    batch_size = max(1, min(int(batch_size), _MAX_TAGGED))
    parts = [_hash_batch(texts[i : i + batch_size], k) for i in range(0, len(texts), batch_size)]
    return ShingleHashes.concat(parts) if parts else ShingleHashes(np.zeros(0, np.uint64), np.zeros(1, np.int64))


def _hash_batch(texts: Sequence[str], k: int) -> ShingleHashes:
    n = len(texts)
    sep = max(k - 1, 1)
    cp = _normalised_code_points(texts, sep).astype(np.uint64)
    # Separator blocks of `sep` zeros bound every text: text t lies between blocks t and t + 1.
    block = np.flatnonzero(cp == 0)[::sep]
    starts = block[:-1] + sep
    lengths = block[1:] - starts
    # Shingles start at every position with k characters of the text ahead; a text
    # shorter than k is one shingle, itself followed by zeros (no real shingle holds a zero).
    counts = np.where(lengths >= k, lengths - k + 1, (lengths > 0).astype(np.int64))
    first = np.zeros(n, dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    pos = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts - first, counts)
    # Hash every window of the joined array (contiguous slices, no gathers), keep the valid ones.
    span = cp.size - k + 1
    h = _window_hashes(cp, k, span)
    owner = np.repeat(np.arange(n, dtype=np.uint64), counts)
    keys = np.sort((owner << _TAG_SHIFT) | (h[pos] >> np.uint64(64 - HASH_BITS)))
    unique = np.ones(keys.size, dtype=bool)
    unique[1:] = keys[1:] != keys[:-1]
    keys = keys[unique]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount((keys >> _TAG_SHIFT).astype(np.int64), minlength=n), out=offsets[1:])
    return ShingleHashes(keys & HASH_MASK, offsets)


def _window_hashes(cp: np.ndarray, k: int, span: int) -> np.ndarray:
    """Hashes of the ``k``-character windows that start at ``0 .. span - 1`` (the exact code points, mixed).

    A window whose code points are all below 2**12 (Latin, Greek, Cyrillic,
    Arabic, Indic scripts...) packs into one word when ``k <= 5``; any other
    window packs three 21-bit code points per word. Either way the packing is
    exact, and a window's hash depends on its characters alone.
    """
    small_ok = k * _SMALL_BITS <= 64
    if small_ok:
        word = cp[:span].copy()
        for j in range(1, k):
            word |= cp[j : j + span] << np.uint64(_SMALL_BITS * j)
        h = mix64(word ^ _SMALL)
        if int(cp.max()) < (1 << _SMALL_BITS):
            return h
        big = np.cumsum(np.concatenate([[0], cp >= (1 << _SMALL_BITS)]), dtype=np.int64)
        wide = np.flatnonzero(big[k : k + span] != big[:span])
    else:
        h = np.empty(span, dtype=np.uint64)
        wide = np.arange(span, dtype=np.int64)
    g = np.full(wide.size, _START, dtype=np.uint64)
    for lo in range(0, k, 3):  # three 21-bit code points per word
        word = cp[wide + lo]
        for j in range(lo + 1, min(lo + 3, k)):
            word |= cp[wide + j] << np.uint64(_CP_BITS * (j - lo))
        g ^= word
        g = mix64(g)
    h[wide] = g
    return h


def pair_jaccard(rows: np.ndarray, cols: np.ndarray, hashes: ShingleHashes, *, batch_elements: int = 1 << 18) -> np.ndarray:
    """Exact Jaccard similarity of the shingle-hash sets of records ``rows[i]`` and ``cols[i]``.

    Parameters
    ----------
    rows, cols : numpy.ndarray of int
        Record indices into ``hashes``, one pair per position.
    hashes : ShingleHashes
        From :func:`shingle_hashes`.
    batch_elements : int, default 2**18
        Hashes compared per vectorised step (memory only).

    Returns
    -------
    numpy.ndarray of float64
        ``|A & B| / |A | B|`` per pair; 0 when both sets are empty.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ConfigError(f"rows and cols must be 1-D arrays of one length, got shapes {rows.shape} and {cols.shape}")
    sizes = hashes.sizes
    out = np.zeros(rows.size, dtype=np.float64)
    cost = np.cumsum(sizes[rows] + sizes[cols])
    start = 0
    while start < rows.size:
        # Pairs up to the element budget (at least one) and at most 2**16 per step.
        stop = int(np.searchsorted(cost, (cost[start - 1] if start else 0) + batch_elements, side="right"))
        stop = min(max(stop, start + 1), start + _MAX_TAGGED, rows.size)
        out[start:stop] = _jaccard_batch(rows[start:stop], cols[start:stop], hashes, sizes)
        start = stop
    return out


def _jaccard_batch(rows: np.ndarray, cols: np.ndarray, hashes: ShingleHashes, sizes: np.ndarray) -> np.ndarray:
    # Tag each pair's hashes with the pair's number in the top 16 bits: the
    # concatenation of the first members' sorted arrays is then sorted as a whole,
    # and one searchsorted finds every second member's hash that the first holds.
    tag = np.arange(rows.size, dtype=np.uint64) << _TAG_SHIFT
    a_index, a_sizes = _segment_index(hashes.offsets, rows)
    b_index, b_sizes = _segment_index(hashes.offsets, cols)
    a = hashes.values[a_index] | np.repeat(tag, a_sizes)
    b_pair = np.repeat(np.arange(rows.size, dtype=np.int64), b_sizes)
    b = hashes.values[b_index] | tag[b_pair]
    inter = np.zeros(rows.size, dtype=np.int64)
    if a.size and b.size:
        at = np.minimum(np.searchsorted(a, b), a.size - 1)
        inter = np.bincount(b_pair[a[at] == b], minlength=rows.size)
    union = sizes[rows] + sizes[cols] - inter
    return np.divide(inter, union, out=np.zeros(rows.size, dtype=np.float64), where=union > 0)


def verify_pairs(
    pairs: tuple[np.ndarray, np.ndarray], hashes: ShingleHashes, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs whose exact shingle Jaccard similarity is at least ``threshold``.

    Parameters
    ----------
    pairs : (rows, cols) of numpy.ndarray of int
        Candidate pairs, e.g. from :func:`~synthfilter.neardup.lsh.candidate_pairs`.
    hashes : ShingleHashes
        From :func:`shingle_hashes`, indexed like the pairs.
    threshold : float
        Jaccard similarity in (0, 1].

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        The pairs that pass, in their input order.
    """
    rows = np.asarray(pairs[0], dtype=np.int64)
    cols = np.asarray(pairs[1], dtype=np.int64)
    ok = pair_jaccard(rows, cols, hashes) >= threshold
    return rows[ok], cols[ok]
