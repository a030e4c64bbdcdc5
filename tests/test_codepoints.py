"""Code points and character classes agree with Python's str methods."""

from __future__ import annotations

import numpy as np

from synthfilter.codepoints import ALNUM, DIGIT, SPACE, UPPER, char_flags, code_points, is_run_end, is_run_start
from tests.text_cases import EDGE_TEXTS, real_paragraphs


def test_code_points_lay_texts_end_to_end():
    texts = EDGE_TEXTS + real_paragraphs(50)
    cps, bounds = code_points(texts)
    assert bounds[-1] == cps.size and np.array_equal(np.diff(bounds), [len(t) for t in texts])
    for t, a, b in zip(texts, bounds[:-1], bounds[1:]):
        assert [chr(c) for c in cps[a:b]] == list(t)


def test_flags_are_pythons_answers_including_astral_characters():
    sample = "".join(EDGE_TEXTS) + "".join(chr(c) for c in range(0, 0x3000, 7)) + "𝐀𝟗\U0001F600\U00010400"
    cps, _ = code_points([sample])
    flags = char_flags(cps)
    for c, f in zip(sample, flags):
        assert bool(f & UPPER) == c.isupper() and bool(f & DIGIT) == c.isdigit()
        assert bool(f & SPACE) == c.isspace() and bool(f & ALNUM) == c.isalnum()


def test_runs_never_cross_texts():
    texts = ["ab", "cd", "", " e", "f "]
    cps, bounds = code_points(texts)
    member = (char_flags(cps) & ALNUM) != 0
    starts = np.flatnonzero(is_run_start(member, bounds))
    ends = np.flatnonzero(is_run_end(member, bounds))
    assert "".join(chr(c) for c in cps[starts]) == "acef"
    assert "".join(chr(c) for c in cps[ends]) == "bdef"
