from __future__ import annotations

import re

import numpy as np
import pytest

from synthfilter.errors import ConfigError, InputError
from synthfilter.neardup.shingles import (
    ShingleHashes,
    _is_word,
    jaccard,
    pair_jaccard,
    shingle_hashes,
    shingles,
    verify_pairs,
)
from synthfilter.normalise import normalise_text

TRICKY = [
    "",
    "   !! ",
    "a",
    "ab",
    "abcd",
    "abcde",
    "ÉCOLE ﬁnale, STRASSE Straße",
    "x\x00y\x00\x00z",
    "\ud800 lone surrogate",
    "snake_case_name",
    "١٢٣ ٤٥٦ numbers",
    "हिन्दी भाषा में लेख",
    "漢字かな交じり文の例です。",
    "emoji 🙂🙂 end",
    "café  --  CAFÉ",
]


def test_word_table_matches_the_normal_form_pattern_on_every_code_point():
    pattern = re.compile(r"[\W_]")
    codes = np.arange(0x110000, dtype=np.uint32)
    sample = np.concatenate([codes[:0x3000], codes[0x3000::97]])  # all of the common scripts, a stride of the rest
    expected = np.array([pattern.fullmatch(chr(c)) is None for c in sample])
    assert np.array_equal(_is_word(sample), expected)


def test_hashes_count_the_reference_shingles_and_equal_forms_hash_equal(paragraphs):
    texts = paragraphs[:300] + TRICKY
    h = shingle_hashes(texts)
    assert len(h) == len(texts)
    assert h.sizes.tolist() == [len(shingles(t)) for t in texts]
    for i in range(len(texts)):
        assert np.all(np.diff(h[i].astype(np.int64)) > 0)  # sorted, unique
        assert h[i].size == 0 or int(h[i].max()) < 2**48
    same = shingle_hashes(["Hello,  World!", "hello world", "HELLO_WORLD", "hello worlds"])
    assert np.array_equal(same[0], same[1]) and np.array_equal(same[0], same[2])
    assert not np.array_equal(same[0], same[3])


@pytest.mark.parametrize("size", [1, 3, 5, 9])
def test_jaccard_from_hashes_equals_the_set_jaccard_on_real_texts(paragraphs, size):
    rng = np.random.default_rng(size)
    base = [t for t in paragraphs if len(t.split()) >= 30][:120]
    edited = []
    for t in base:
        words = t.split(" ")
        drop = set(rng.choice(len(words), size=int(rng.integers(1, 8)), replace=False).tolist())
        edited.append(" ".join(w for i, w in enumerate(words) if i not in drop))
    texts = base + edited + TRICKY
    h = shingle_hashes(texts, size)
    rows = np.concatenate([np.arange(len(base)) + len(base), rng.integers(0, len(texts), 200)])
    cols = np.concatenate([np.arange(len(base)), rng.integers(0, len(texts), 200)])
    sets = [shingles(t, size) for t in texts]
    expected = np.array([jaccard(sets[i], sets[j]) for i, j in zip(rows, cols)])
    got = pair_jaccard(rows, cols, h, batch_elements=5000)  # many small steps
    assert np.array_equal(got, expected)
    assert 0.3 < expected[: len(base)].mean() < 1.0  # the edits leave real, partial overlaps


def test_hashes_do_not_depend_on_the_batch(paragraphs):
    texts = paragraphs[:50] + TRICKY
    whole = shingle_hashes(texts)
    split = shingle_hashes(texts, batch_size=7)
    assert np.array_equal(whole.values, split.values) and np.array_equal(whole.offsets, split.offsets)
    parts = ShingleHashes.concat([shingle_hashes(texts[:20]), shingle_hashes(texts[20:])])
    assert np.array_equal(parts.values, whole.values)
    picked = whole.take(np.array([3, 0, 3]))
    assert [picked[i].tolist() for i in range(3)] == [whole[3].tolist(), whole[0].tolist(), whole[3].tolist()]


def test_verify_pairs_keeps_exactly_the_pairs_at_or_above_the_threshold(paragraphs):
    a = paragraphs[0]
    texts = [a, a.replace(" ", "  "), a[: len(a) // 2], paragraphs[1]]
    h = shingle_hashes(texts)
    rows, cols = np.array([1, 2, 3, 3]), np.array([0, 0, 0, 2])
    sims = pair_jaccard(rows, cols, h)
    assert sims[0] == 1.0 and 0.3 < sims[1] < 0.7 and sims[2] < 0.2
    r, c = verify_pairs((rows, cols), h, sims[1])
    assert list(zip(r.tolist(), c.tolist())) == [(1, 0), (2, 0)]


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="shingle_size"):
        shingle_hashes(["abc"], 0)
    with pytest.raises(InputError, match="row 1"):
        shingle_hashes(["abc", None])
    assert len(shingle_hashes([])) == 0
    assert normalise_text("x\x00y") == "x y"
