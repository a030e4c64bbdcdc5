"""Texts that the vectorised text features are checked on: real paragraphs and awkward edge cases."""

from __future__ import annotations

import polars as pl

from tests.conftest import FIXTURES

#: Blank-ish text, one word, no sentence end, non-ASCII, emoji and other astral
#: characters, odd white space (tabs, CR, NBSP, U+001C, U+0085), a dotted
#: capital I (lower-cases to two characters), Greek sigma, CJK, very long text.
EDGE_TEXTS = [
    "", " ", "\n\n", "\t \r\n", "a", "word", "One.", "...", "?!", "No sentence end here",
    "  Hi there.  How are you?  Fine!\n\nNext paragraph.  ",
    "İstanbul İSTANBUL istanbul ΣΑΣ σας ς",
    "Émile émile ÉMILE straße STRASSE Ǆemal ǅemal ǆemal",
    "emoji 😀 test 𝐀𝐁 ok! yes? 👍🏽 family: 👨‍👩‍👧",
    "tabs\tand\nnewlines\r\n. Next\u00a0one.\u2003Then\u001cX\u001fY\u0085Z",
    "ÀÉÎ àéî ’quoted’ “double” — – - (paren) [bracket]; colon: comma,",
    "snake_case __init__ a_b 12 1 ab x2 ²³ ١٢٣ Ⅻ",
    "日本語のテキスト。中文，句子！",
    "Mr. Smith went to Washington. He said: \"don't\" -- it's the U.S.A.'s well-known mid-1960's thing!",
    "x" * 3000 + " y. " * 2500 + "end",
    " ".join(["repeat"] * 400) + ".",
]


def real_paragraphs(n: int = 300) -> list[str]:
    """The first ``n`` real labelled paragraphs of the origin fixture (human and machine)."""
    return pl.read_parquet(FIXTURES / "origin_sample.parquet")["text"].to_list()[:n]
