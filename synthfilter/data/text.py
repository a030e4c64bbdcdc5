"""Text helpers shared by every corpus loader.

All sources go through the same paragraph filters (:func:`keep_paragraph`), so
that no filter leaves a mark on one class only: a detector trained on the
corpus should learn who wrote a paragraph, not which loader produced it.
"""

from __future__ import annotations

import hashlib
import re

from synthfilter.normalise import normalise_text

__all__ = [
    "MAX_CHARS",
    "MIN_CHARS",
    "collapse_whitespace",
    "content_id",
    "is_prose",
    "keep_paragraph",
    "normalised_hash",
    "paragraph_from_block",
    "sentence_ends",
    "split_paragraphs",
    "split_sentences",
    "strip_markup",
    "trim_to_sentences",
]

#: Shortest paragraph kept, in characters (after whitespace collapsing).
MIN_CHARS = 200
#: Longest paragraph kept, in characters (after whitespace collapsing).
MAX_CHARS = 600

_WS = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")

# Characters that are rare in prose and common in code, markup, logs and tables.
_CODE_CHARS = frozenset("{}[]<>=;|\\_#*^~`$@%&+")
_CODE_CHAR_RE = re.compile("[" + re.escape("".join(sorted(_CODE_CHARS))) + "]")
# Fragments that are (almost) never found in running prose.
_CODE_MARKERS = re.compile(
    r"```|=>|::|\(\)|\);|\{\s*$|^\s*[}\]]|</?[a-zA-Z][^>]*>|&[a-z]+;|https?://|www\.\S|\S+@\S+\.\w|"
    r"^\s*(?:def|class|import|from\s+\S+\s+import|function|var|let|const|public|private|"
    r"#include|SELECT|INSERT|CREATE)\s",
    re.MULTILINE,
)
_WORDLIKE = re.compile(r"[\"'(\[]*[A-Za-z0-9$][A-Za-z0-9'\-.,%/]*[.,;:!?\"')\]]*")

# Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "cf", "no", "gen", "col", "lt", "sgt", "capt", "rev", "gov", "sen", "rep", "inc", "ltd", "co", "corp", "dept", "univ", "fig", "vol", "pp", "ed", "eds", "approx", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "u.s", "u.n", "a.m", "p.m", "ph.d"]
)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


def collapse_whitespace(text: str) -> str:
    """Replace every run of whitespace with one space and strip the ends.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The text on one line.
    """
    return _WS.sub(" ", text).strip()


def content_id(text: str) -> str:
    """Stable id of a text: the first 16 hex digits of its SHA-256.

    Parameters
    ----------
    text : str
        The record's text, exactly as stored.

    Returns
    -------
    str
        16 lowercase hex digits.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def normalised_hash(text: str) -> str:
    """Hash of a text's duplicate-detection normal form (:func:`synthfilter.normalise.normalise_text`).

    Two texts that differ only in case, whitespace or punctuation get the
    same hash, as they fall in one duplicate cluster in ``synthfilter score``; the corpus builder keeps such near-duplicates on one side
    of the split.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        16 lowercase hex digits.
    """
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def split_paragraphs(text: str) -> list[str]:
    """Split text on blank lines; return the non-empty blocks, unmodified inside.

    Parameters
    ----------
    text : str
        Text with paragraphs separated by one or more blank lines.

    Returns
    -------
    list of str
        Blocks with their outer whitespace stripped.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.strip() for block in _BLANK_LINE.split(text) if block.strip()]


def is_prose(block: str, max_symbol_share: float = 0.03, min_word_share: float = 0.8) -> bool:
    """Tell running prose from code, markup, tables, logs and similar pastes.

    Parameters
    ----------
    block : str
        A paragraph, before whitespace is collapsed (line structure helps).
    max_symbol_share : float, default 0.03
        Highest share of characters from ``{}[]<>=;|\\_#*^~`$@%&+`` allowed.
    min_word_share : float, default 0.8
        Lowest share of whitespace-separated tokens that look like words
        (letters, with optional leading/trailing punctuation).

    Returns
    -------
    bool
        True when the block reads as prose.
    """
    if not block.strip():
        return False
    if _CODE_MARKERS.search(block):
        return False
    n_symbols = len(_CODE_CHAR_RE.findall(block))
    if n_symbols / len(block) > max_symbol_share:
        return False
    tokens = block.split()
    wordlike = sum(1 for tok in tokens if _WORDLIKE.fullmatch(tok))
    if wordlike / len(tokens) < min_word_share:
        return False
    lines = [line for line in block.splitlines() if line.strip()]
    # Lists, tables and code keep many short lines; prose wraps long ones.
    if len(lines) >= 3 and sum(len(line) for line in lines) / len(lines) < 40:
        return False
    return True


def keep_paragraph(text: str) -> bool:
    """The common gate every stored paragraph must pass.

    Parameters
    ----------
    text : str
        A paragraph after :func:`collapse_whitespace`.

    Returns
    -------
    bool
        True when the paragraph is ASCII, between :data:`MIN_CHARS` and
        :data:`MAX_CHARS` long, and reads as prose.
    """
    return text.isascii() and MIN_CHARS <= len(text) <= MAX_CHARS and is_prose(text)


def paragraph_from_block(block: str) -> str | None:
    """Turn a raw paragraph block (line breaks kept) into a stored paragraph, or reject it.

    The same gate as :func:`keep_paragraph`, plus :func:`is_prose` on the
    raw block, whose line structure also shows lists and code; the cheap
    checks (ASCII, length window after whitespace collapsing) run first.

    Parameters
    ----------
    block : str
        One block from :func:`split_paragraphs`.

    Returns
    -------
    str or None
        The paragraph on one line, or None when it is not kept.
    """
    text = collapse_whitespace(block)
    if not (MIN_CHARS <= len(text) <= MAX_CHARS and text.isascii()):
        return None
    return text if is_prose(block) and is_prose(text) else None


def sentence_ends(text: str) -> list[int]:
    """Offsets just past each sentence end (terminal punctuation plus closing quotes).

    A full stop after a known abbreviation (``Mr.``, ``e.g.``), a single
    capital letter (an initial) or a number is not taken as a sentence end.

    Parameters
    ----------
    text : str
        Text on one line.

    Returns
    -------
    list of int
        Increasing offsets ``i`` such that ``text[:i]`` ends a sentence.
    """
    ends: list[int] = []
    for match in _SENTENCE_END.finditer(text):
        punct = match.group()
        if punct.startswith(".") and len(punct.rstrip("\"')]")) == 1:
            start = match.start()
            word_start = start
            while word_start > 0 and not text[word_start - 1].isspace() and text[word_start - 1] not in "\"'(":
                word_start -= 1
            word = text[word_start:start].lower()
            if word in _ABBREVIATIONS or re.fullmatch(r"[a-z]|\d+|(?:[a-z]\.)+[a-z]", word):
                continue
        ends.append(match.end())
    return ends


def split_sentences(text: str) -> list[str]:
    """Split one-line text into sentences at :func:`sentence_ends`.

    Parameters
    ----------
    text : str
        Text on one line.

    Returns
    -------
    list of str
        Sentences; a trailing fragment without an end mark is the last item.
    """
    out: list[str] = []
    start = 0
    for end in sentence_ends(text):
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


def trim_to_sentences(text: str, max_chars: int | None = None, trim_start: bool = True) -> str:
    """Cut text to whole sentences.

    The start is moved past any leading fragment (text before the first
    sentence end that does not begin like a sentence); the end is cut at the
    last sentence end, and no later than ``max_chars``.

    Parameters
    ----------
    text : str
        Text on one line.
    max_chars : int, optional
        Longest result allowed; the cut falls on the last sentence end at or
        before it.
    trim_start : bool, default True
        Drop a leading fragment that starts in lower case or with punctuation.

    Returns
    -------
    str
        Whole sentences, possibly the empty string.
    """
    text = text.strip()
    if trim_start and text and not (text[0].isupper() or text[0].isdigit() or text[0] in "\"'(["):
        ends = sentence_ends(text)
        if not ends:
            return ""
        text = text[ends[0] :].strip()
    limit = len(text) if max_chars is None else max_chars
    cut = 0
    for end in sentence_ends(text):
        if end > limit:
            break
        cut = end
    return text[:cut].strip()


_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|<!--.*?-->")
_ENTITY = re.compile(r"&(?:[a-z]+|#\d+);")
_MD_LINE = re.compile(r"^\s*(?:#{1,6}\s+|[*\-+]\s+|\d+[.)]\s+|>\s*)", re.MULTILINE)
_MD_INLINE = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")


def strip_markup(text: str) -> str:
    """Remove HTML tags, entities, markdown emphasis and list/heading markers.

    Parameters
    ----------
    text : str
        Raw model output.

    Returns
    -------
    str
        The text with markup removed (line structure kept).
    """
    text = _TAG.sub(" ", text)
    text = _ENTITY.sub(" ", text)
    text = _MD_LINE.sub("", text)
    text = _MD_INLINE.sub(r"\2", text)
    return text
