from __future__ import annotations

import pytest

from synthfilter.data.text import (
    MAX_CHARS,
    MIN_CHARS,
    collapse_whitespace,
    content_id,
    is_prose,
    keep_paragraph,
    normalised_hash,
    split_paragraphs,
    split_sentences,
    strip_markup,
    trim_to_sentences,
)

PROSE = (
    "The committee met on Tuesday to discuss the budget. Several members argued that the "
    "proposed cuts would hurt the schools, while others said the town could not afford to wait. "
    "No vote was taken before the meeting ended."
)


def test_content_id_is_stable_hex():
    assert content_id("abc") == content_id("abc")
    assert content_id("abc") != content_id("abd")
    assert len(content_id("abc")) == 16 and int(content_id("abc"), 16) >= 0


def test_normalised_hash_ignores_case_spacing_punctuation():
    assert normalised_hash("Hello,  World!") == normalised_hash("hello world")
    assert normalised_hash("Hello world") != normalised_hash("Hello there world")


def test_split_paragraphs_and_collapse():
    text = "first line\nsame para\n\n  \nsecond para\r\n\r\nthird"
    assert split_paragraphs(text) == ["first line\nsame para", "second para", "third"]
    assert collapse_whitespace(" a \n\t b  ") == "a b"


def test_trim_to_sentences_drops_leading_and_trailing_fragments():
    text = "of the old house. Then Mr. Smith left at 5 p.m. and went home. He was tired and"
    assert trim_to_sentences(text) == "Then Mr. Smith left at 5 p.m. and went home."


def test_trim_to_sentences_respects_max_chars_and_quotes():
    text = 'He said "go home." Then he left the room quietly. And'
    assert trim_to_sentences(text, max_chars=30) == 'He said "go home."'
    assert trim_to_sentences(text) == 'He said "go home." Then he left the room quietly.'
    assert trim_to_sentences("no sentence end here") == ""


def test_split_sentences_keeps_abbreviations_and_initials():
    assert split_sentences("J. F. Kennedy spoke in the U.S. today. It rained.") == [
        "J. F. Kennedy spoke in the U.S. today.",
        "It rained.",
    ]


def test_strip_markup_removes_tags_entities_and_markdown():
    raw = "<p>Hello <b>world</b> &amp; **bold** `code`</p>\n## Heading\n- item one\n1. first"
    out = strip_markup(raw)
    for token in ("<", ">", "&amp;", "**", "`", "##", "- item", "1. first"):
        assert token not in out
    assert "Hello" in out and "bold" in out and "Heading" in out and "item one" in out


@pytest.mark.parametrize(
    "block",
    [
        "def f(x):\n    return x + 1\n\nprint(f(2))",
        "const a = {b: 1, c: [2, 3]};\nconsole.log(a);",
        "See https://example.com/page for details about the thing we discussed at length today.",
        "| col | col |\n|-----|-----|\n| 1 | 2 |",
        "<div class='x'>Some text inside a div that goes on for a while.</div>",
    ],
)
def test_is_prose_rejects_code_markup_and_urls(block):
    assert not is_prose(block)


def test_is_prose_accepts_prose_with_numbers():
    assert is_prose(PROSE)
    assert is_prose("In 1961, about 25 of the 300 members paid $5 each; the rest (most of them) paid nothing.")


def test_keep_paragraph_length_and_ascii_window():
    assert keep_paragraph(PROSE)
    assert not keep_paragraph(PROSE[: MIN_CHARS - 1])
    long = (PROSE + " ") * (MAX_CHARS // len(PROSE) + 1)
    assert not keep_paragraph(long.strip())
    assert not keep_paragraph(PROSE.replace("budget", "budg\u00e9t"))
