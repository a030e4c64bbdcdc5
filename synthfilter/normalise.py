"""The one normal form of a text for exact-duplicate detection.

Used by the tail scorer and the monitor (duplicate clusters, duplicate rate)
and by the corpus builder (de-duplication before the split), so that the
project has a single notion of "the same text".
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

__all__ = ["normalise_text", "text_fingerprints"]

_PUNCT_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Normal form used for exact-duplicate detection.

    NFKC, case-folded, every run of punctuation or whitespace collapsed to one
    space, stripped: ``"Hello,  World!"`` and ``"hello world"`` are equal.

    Examples
    --------
    >>> normalise_text("Hello,  World!") == normalise_text("hello world")
    True
    """
    return _PUNCT_SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_fingerprints(texts: Sequence[str]) -> list[bytes]:
    """SHA-1 of each text's :func:`normalise_text` form (exact-duplicate keys)."""
    return [hashlib.sha1(normalise_text(t).encode("utf-8")).digest() for t in texts]
