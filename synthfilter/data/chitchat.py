"""chitchat (PyPI ``chitchat-dataset``, MIT): human chat text for evaluation only.

The BYU Chit Chat Challenge (2018) holds 7,168 open-domain conversations
between people, collected before chat models existed, so no message is
pasted model output (unlike ShareGPT's user turns). Chat messages are short
("how are you doing?"), so :func:`load_chitchat` joins consecutive messages
of one conversation, in order and across speakers, into blocks of the same
size as the project's other paragraphs (200-600 characters after whitespace
collapsing, through the same :func:`~synthfilter.data.text.keep_paragraph`
gate).

This source is *not* one of :data:`~synthfilter.data.schema.SOURCES`:
:func:`~synthfilter.data.build_corpus` never samples it, and the shipped
detector never saw it. It is a held-out human domain for measuring how the
detector and the share estimate behave on text unlike their training data.

The paragraphs are cached (Parquet) under ``<cache>/chitchat/`` (see
:func:`~synthfilter.data.fetch.cache_root`), keyed by the package's version
and the loader's version; building them takes a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from synthfilter.atomic import atomic_path
from synthfilter.data.fetch import SourceUnavailableError, cache_root
from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.text import MAX_CHARS, MIN_CHARS, collapse_whitespace, content_id, keep_paragraph

__all__ = ["CHITCHAT_SOURCE", "chitchat_blocks", "chitchat_path", "iter_chitchat", "load_chitchat"]

#: Source name of the chitchat paragraphs (label 0, human).
CHITCHAT_SOURCE = "chitchat"
#: Bump when the block-making changes, so that cached paragraphs are rebuilt.
LOADER_VERSION = 1
#: A block is closed once it reaches a length drawn (from its conversation id
#: and position, deterministically) between :data:`MIN_CHARS` and this, so that
#: lengths spread over the window instead of piling up just above 200.
TARGET_MAX_CHARS = 500


def chitchat_path() -> Path:
    """Path of the packaged ``dataset.json``.

    Raises
    ------
    SourceUnavailableError
        When ``chitchat-dataset`` is not installed (the message gives the command).
    """
    try:
        import chitchat_dataset
    except ImportError as exc:
        raise SourceUnavailableError(
            "the chitchat source needs the package 'chitchat-dataset'; install it with: "
            "pip install 'synthfilter[data]' (or pip install chitchat-dataset==0.9.0)"
        ) from exc
    return Path(chitchat_dataset.__file__).parent / "dataset.json"


def iter_chitchat(data: Mapping[str, Any] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(conversation id, messages)`` in conversation-id order.

    Parameters
    ----------
    data : mapping, optional
        The parsed ``dataset.json`` (``{id: {"messages": [[{"text", ...}, ...], ...]}}``,
        one inner list per turn); read from the installed package when omitted.

    Yields
    ------
    tuple of (str, list of str)
        The conversation id and its message texts, in order, across speakers.
    """
    if data is None:
        data = json.loads(chitchat_path().read_text(encoding="utf-8"))
    for conv_id in sorted(data):
        turns = (data[conv_id] or {}).get("messages") or []
        messages = [str(m.get("text") or "") for turn in turns for m in (turn or []) if isinstance(m, Mapping)]
        yield str(conv_id), messages


def _target(conv_id: str, index: int) -> int:
    digest = hashlib.sha256(f"{conv_id}:{index}".encode()).digest()
    return MIN_CHARS + int.from_bytes(digest[:4], "big") % (TARGET_MAX_CHARS - MIN_CHARS + 1)


def chitchat_blocks(conv_id: str, messages: Iterable[str]) -> list[str]:
    """Join consecutive messages of one conversation into paragraph-sized blocks.

    Messages are whitespace-collapsed and joined with one space, in order. A
    block closes when it reaches its target length (drawn per block from the
    conversation id, between :data:`~synthfilter.data.text.MIN_CHARS` and
    :data:`TARGET_MAX_CHARS`) or when the next message would take it over
    :data:`~synthfilter.data.text.MAX_CHARS`; it is kept when it passes
    :func:`~synthfilter.data.text.keep_paragraph` (ASCII, 200-600 characters,
    prose). A message longer than ``MAX_CHARS`` on its own is skipped.

    Parameters
    ----------
    conv_id : str
        Conversation id (seeds the target lengths).
    messages : iterable of str
        The conversation's messages, in order.

    Returns
    -------
    list of str
        The kept blocks, in conversation order.

    Examples
    --------
    >>> chitchat_blocks("c1", ["hi there, how is your week going so far?"] * 12)[0][:22]
    'hi there, how is your '
    """
    out: list[str] = []
    current = ""
    index = 0

    def close() -> None:
        nonlocal current, index
        if current and keep_paragraph(current):
            out.append(current)
        current, index = "", index + 1

    for raw in messages:
        text = collapse_whitespace(raw)
        if not text:
            continue
        if len(text) > MAX_CHARS:
            close()
            continue
        if current and len(current) + 1 + len(text) > MAX_CHARS:
            close()
        current = f"{current} {text}" if current else text
        if len(current) >= _target(conv_id, index):
            close()
    if len(current) >= MIN_CHARS:
        close()
    return out


def _build(data: Mapping[str, Any] | None) -> pl.DataFrame:
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_SCHEMA}
    for conv_id, messages in iter_chitchat(data):
        for block in chitchat_blocks(conv_id, messages):
            columns["id"].append(content_id(block))
            columns["text"].append(block)
            columns["label"].append(0)
            columns["source"].append(CHITCHAT_SOURCE)
            columns["group"].append(f"{CHITCHAT_SOURCE}:{conv_id}")
            for name in RECORD_SCHEMA:
                if name.startswith("gen_"):
                    columns[name].append(None)
    frame = pl.DataFrame(columns, schema=RECORD_SCHEMA)
    return frame.unique(subset="id", keep="first", maintain_order=True).sort("id")


def load_chitchat(
    data: Mapping[str, Any] | None = None, *, cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True
) -> pl.DataFrame:
    """Human chat paragraphs from chitchat (label 0, source ``"chitchat"``), for evaluation.

    Parameters
    ----------
    data : mapping, optional
        The parsed ``dataset.json``; read from the installed package when
        omitted (then the result is cached).
    cache_dir : path-like, optional
        Cache root (default :func:`~synthfilter.data.fetch.cache_root`).
    use_cache : bool, default True
        Read and write the Parquet cache (only when ``data`` is omitted).

    Returns
    -------
    polars.DataFrame
        Columns of :data:`~synthfilter.data.schema.RECORD_SCHEMA`, sorted by
        ``id``; ``group`` is ``chitchat:<conversation id>``. Deterministic.

    Raises
    ------
    SourceUnavailableError
        When the package is not installed and ``data`` is not given.
    """
    if data is not None or not use_cache:
        return _build(data)
    path = chitchat_path()
    try:
        version = metadata.version("chitchat-dataset")
    except metadata.PackageNotFoundError:  # pragma: no cover - imported but not installed as a distribution
        version = "unknown"
    cached = cache_root(cache_dir) / "chitchat" / f"paragraphs-{version}-v{LOADER_VERSION}.parquet"
    if cached.exists():
        try:
            return pl.read_parquet(cached)
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
            pass
    frame = _build(json.loads(path.read_text(encoding="utf-8")))
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        frame.write_parquet(tmp)
    return frame
