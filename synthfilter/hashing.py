"""Hashed n-gram counts of many texts at once, equal to scikit-learn's ``HashingVectorizer``.

scikit-learn's ``HashingVectorizer`` builds every n-gram as a Python string
and hashes it one at a time. :func:`hashed_ngram_counts` finds the same
n-grams as positions in one flat array of code points (character n-grams
inside padded words, ``analyzer="char_wb"``, or n-grams of the tokens of
``(?u)\\b\\w\\w+\\b`` after lower-casing, ``analyzer="word"``), and hashes
their UTF-8 bytes with :func:`murmurhash3_32`, MurmurHash3 (x86, 32-bit)
vectorised over all n-grams. The result is the estimator's count matrix,
entry for entry: the same columns (``abs(hash) % n_features``, no sign
alternation), float32 counts, sorted indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from synthfilter.codepoints import ALNUM, SPACE, char_flags, code_points, is_run_end, is_run_start
from synthfilter.errors import ConfigError
from synthfilter.segments import segment_starts

__all__ = ["hashed_ngram_counts", "murmurhash3_32"]

_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
_TAIL_MASK = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], dtype=np.uint32)
_SPACE = 0x20
_UNDERSCORE = 0x5F
#: Texts hashed at once.
_CHUNK = 4096


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _mix(k: np.ndarray) -> np.ndarray:
    k *= _C1
    k = _rotl(k, 15)
    k *= _C2
    return k


def murmurhash3_32(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """MurmurHash3 (x86, 32-bit) of many byte strings, as signed 32-bit integers.

    Parameters
    ----------
    data : numpy.ndarray of uint8
        Bytes holding all strings.
    starts, lengths : numpy.ndarray of int
        String ``i`` is ``data[starts[i]:starts[i] + lengths[i]]``.
    seed : int, default 0

    Returns
    -------
    numpy.ndarray of int32
        What ``sklearn.utils.murmurhash3_32(bytes, seed)`` returns for each string.
    """
    starts = np.asarray(starts)
    lengths = np.asarray(lengths)
    padded = np.zeros(data.size + 4, dtype=np.uint32)
    padded[: data.size] = data
    # words[i]: the 4 bytes from i on, little-endian (reads past the end see zeros)
    words = padded[:-3] | (padded[1:-2] << np.uint32(8)) | (padded[2:-1] << np.uint32(16)) | (padded[3:] << np.uint32(24))
    h = np.full(starts.size, seed, dtype=np.uint32)
    blocks = lengths >> 2
    for j in range(int(blocks.max()) if blocks.size else 0):
        rows = np.flatnonzero(blocks > j) if j else np.flatnonzero(blocks)
        if rows.size == h.size:
            rows = slice(None)
        hj = h[rows] ^ _mix(words[starts[rows] + 4 * j])
        hj = _rotl(hj, 13)
        hj *= np.uint32(5)
        hj += np.uint32(0xE6546B64)
        h[rows] = hj
    tail = words[np.minimum(starts + 4 * blocks, words.size - 1)] & _TAIL_MASK[lengths & 3]
    h ^= _mix(tail)  # a zero tail mixes to zero: no change, as when there is no tail
    h ^= lengths.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h.view(np.int32)


def _utf8(buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """UTF-8 bytes of a code point array, and the byte offset of each code point (plus the end).

    The offsets are ``None`` for ASCII, where they equal the code point offsets.
    """
    if buffer.size == 0 or buffer.max() < 0x80:
        return buffer.astype(np.uint8), None
    offsets = np.zeros(buffer.size + 1, dtype=np.int64)
    width = 1 + (buffer >= 0x80).astype(np.int64) + (buffer >= 0x800) + (buffer >= 0x10000)
    np.cumsum(width, out=offsets[1:])
    text = buffer.astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8), offsets


def _spans(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``first[i] + 0, first[i] + 1, ..., first[i] + count[i] - 1`` for every ``i``, end to end."""
    out = np.repeat(first - segment_starts(count).astype(first.dtype), count)
    out += np.arange(out.size, dtype=out.dtype)
    return out


def _char_wb_grams(texts: Sequence[str], ngram_range: tuple[int, int]):
    """Code points, gram starts, gram lengths and gram counts per text of the ``char_wb`` analyzer."""
    cps, bounds = code_points(texts)
    n_texts = len(texts)
    space = (char_flags(cps) & SPACE) != 0
    # Every text becomes " " + text + " " with all white space as " ": each word
    # then sits between two spaces, so " " + word + " " is one slice.
    text_of = np.repeat(np.arange(n_texts, dtype=np.int32), np.diff(bounds))
    buffer = np.full(cps.size + 2 * n_texts, _SPACE, dtype=np.uint32)
    moved = np.arange(cps.size) + 2 * text_of + 1
    buffer[moved] = np.where(space, np.uint32(_SPACE), cps)
    word = ~space
    first = np.flatnonzero(is_run_start(word, bounds))
    last = np.flatnonzero(is_run_end(word, bounds))
    word_text = text_of[first]
    padded_start = (moved[first] - 1).astype(np.int32)
    padded_len = (last - first + 3).astype(np.int32)
    starts, lengths, owner = [], [], []
    low, high = ngram_range
    for n in range(low, high + 1):
        reached = padded_len > n - 1 if n > low else np.ones(first.size, dtype=bool)
        whole = padded_len <= n  # a word no longer than n: itself, once, and no longer n-grams
        count = (np.where(whole, 1, padded_len - n + 1) * reached).astype(np.int32)
        starts.append(_spans(padded_start, count))
        lengths.append(np.repeat(np.where(whole, padded_len, np.int32(n)), count))
        owner.append(np.repeat(word_text, count))
    return buffer, np.concatenate(starts), np.concatenate(lengths), np.concatenate(owner), n_texts


def _word_grams(texts: Sequence[str], ngram_range: tuple[int, int], lowercase: bool):
    """Code points, gram starts, gram lengths and owners of the ``word`` analyzer (tokens ``\\w\\w+``)."""
    if lowercase:
        texts = [t.lower() for t in texts]
    cps, bounds = code_points(texts)
    n_texts = len(texts)
    member = ((char_flags(cps) & ALNUM) != 0) | (cps == _UNDERSCORE)
    first = np.flatnonzero(is_run_start(member, bounds))
    end = np.flatnonzero(is_run_end(member, bounds)) + 1
    keep = end - first >= 2
    first, end = first[keep], end[keep]
    length = end - first
    text_of = np.searchsorted(bounds, first, side="right") - 1
    # Tokens end to end, each followed by one space: an n-gram of tokens is one slice.
    token_start = segment_starts(length + 1)
    buffer = np.full(int((length + 1).sum()), _SPACE, dtype=np.uint32)
    buffer[_spans(token_start, length)] = cps[_spans(first, length)]
    n_tokens = np.bincount(text_of, minlength=n_texts)
    rank = np.arange(first.size) - segment_starts(n_tokens)[text_of]
    starts, lengths, owner = [], [], []
    low, high = ngram_range
    for n in range(low, high + 1):
        fits = np.flatnonzero(rank + n <= n_tokens[text_of])
        starts.append(token_start[fits])
        lengths.append(token_start[fits + n - 1] + length[fits + n - 1] - token_start[fits])
        owner.append(text_of[fits])
    return buffer, np.concatenate(starts), np.concatenate(lengths), np.concatenate(owner), n_texts


def hashed_ngram_counts(
    texts: Sequence[str],
    analyzer: str = "char_wb",
    ngram_range: tuple[int, int] = (1, 4),
    n_features: int = 2**18,
    lowercase: bool | None = None,
    dtype: type = np.float32,
) -> sp.csr_matrix:
    """Counts of hashed n-grams per text, as ``HashingVectorizer(alternate_sign=False, norm=None)``.

    Parameters
    ----------
    texts : sequence of str
    analyzer : {"char_wb", "word"}, default "char_wb"
        Character n-grams inside words padded with a space, or n-grams of
        word tokens (two or more word characters).
    ngram_range : tuple of int, default (1, 4)
    n_features : int, default 2**18
        Columns; an n-gram goes to ``abs(murmurhash3_32(utf8)) % n_features``.
    lowercase : bool, optional
        Lower-case texts first; by default only for ``"word"``.
    dtype : numpy dtype, default float32

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(len(texts), n_features)``, duplicates summed, indices sorted.

    Raises
    ------
    ConfigError
        For another analyzer or an invalid n-gram range.
    """
    low, high = (int(v) for v in ngram_range)
    if not 1 <= low <= high:
        raise ConfigError(f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n, got {ngram_range}")
    if analyzer not in ("char_wb", "word"):
        raise ConfigError(f"analyzer must be 'char_wb' or 'word', got {analyzer!r}")
    texts = list(texts)
    # Keys (row * n_features + column) of a chunk of texts fit in 32 bits; chunks also bound memory.
    chunk = max(1, min(_CHUNK, (2**32 - 1) // n_features))
    parts = [_counts(texts[i:i + chunk], analyzer, (low, high), n_features, lowercase, dtype)
             for i in range(0, len(texts), chunk)] or [_counts([], analyzer, (low, high), n_features, lowercase, dtype)]
    if len(parts) == 1:
        return parts[0]
    return sp.csr_matrix((np.concatenate([p.data for p in parts]), np.concatenate([p.indices for p in parts]),
                          np.concatenate([[0]] + [p.indptr[1:] + n for p, n in
                                                  zip(parts, np.cumsum([0] + [p.nnz for p in parts[:-1]]))])),
                         shape=(len(texts), n_features))


def _counts(texts, analyzer, ngram_range, n_features, lowercase, dtype) -> sp.csr_matrix:
    if analyzer == "char_wb":
        if lowercase:
            texts = [t.lower() for t in texts]
        buffer, starts, lengths, owner, n_texts = _char_wb_grams(texts, ngram_range)
    else:
        buffer, starts, lengths, owner, n_texts = _word_grams(texts, ngram_range, lowercase is not False)
    data, offsets = _utf8(buffer)
    if offsets is None:  # ASCII: one byte per code point
        h = murmurhash3_32(data, starts, lengths)
    else:
        byte_start = offsets[starts]
        h = murmurhash3_32(data, byte_start, offsets[starts + lengths] - byte_start)
    column = np.abs(h).view(np.uint32)  # abs(-2**31) wraps to -2**31, whose unsigned view is 2**31
    column %= np.uint32(n_features)
    # Row-major keys, sorted: equal keys are one entry, and its count is how often it came.
    key_type = np.uint32 if n_texts * n_features <= 2**32 else np.uint64
    keys = owner.astype(key_type) * key_type(n_features)
    keys += column
    keys.sort()
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, dtype=np.int64)
    repeats = np.diff(np.r_[first, keys.size])
    unique = keys[first]
    indptr = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(unique // key_type(n_features), minlength=n_texts), out=indptr[1:])
    counts = sp.csr_matrix((repeats.astype(dtype), (unique % key_type(n_features)).astype(np.int64), indptr),
                           shape=(n_texts, n_features))
    return counts
