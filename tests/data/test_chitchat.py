from __future__ import annotations

import polars as pl
import pytest

from synthfilter.data.chitchat import CHITCHAT_SOURCE, chitchat_blocks, iter_chitchat, load_chitchat
from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.text import MAX_CHARS, MIN_CHARS, collapse_whitespace

chitchat_dataset = pytest.importorskip("chitchat_dataset", reason="pip install 'synthfilter[data]'")


def _real_conversations(n: int = 40) -> dict:
    import json
    from pathlib import Path

    data = json.loads((Path(chitchat_dataset.__file__).parent / "dataset.json").read_text(encoding="utf-8"))
    return {k: data[k] for k in sorted(data)[:n]}


def test_blocks_join_consecutive_messages_in_order_within_the_window():
    data = _real_conversations()
    n_blocks = 0
    for conv_id, messages in iter_chitchat(data):
        joined = " ".join(collapse_whitespace(m) for m in messages if collapse_whitespace(m))
        for block in chitchat_blocks(conv_id, messages):
            n_blocks += 1
            assert MIN_CHARS <= len(block) <= MAX_CHARS
            assert block in joined  # consecutive messages, in order, joined by one space
    assert n_blocks > 40  # real conversations give several blocks each


def test_short_messages_are_joined_across_speakers():
    msgs = ["Hello", "How are you doing today?", "im doing good, just got back from a long hike up the canyon",
            "oh nice, which trail did you take? I have been wanting to go up there for weeks now",
            "the one past the reservoir, it was beautiful but my legs are dead", "haha I bet"]
    blocks = chitchat_blocks("x", msgs * 3)
    assert blocks and blocks[0].startswith("Hello How are you doing today? im doing good")


def test_load_chitchat_real_records_schema_groups_and_determinism(tmp_path):
    data = _real_conversations()
    frame = load_chitchat(data)
    assert frame.schema == pl.Schema(RECORD_SCHEMA)
    assert frame.height > 40
    assert set(frame["source"]) == {CHITCHAT_SOURCE} and set(frame["label"]) == {0}
    assert all(g.startswith("chitchat:") and g[len("chitchat:"):] in data for g in frame["group"])
    assert frame["id"].n_unique() == frame.height
    assert load_chitchat(data).equals(frame)  # deterministic


def test_load_chitchat_cache_round_trip(tmp_path):
    first = load_chitchat(cache_dir=tmp_path)
    cached = list((tmp_path / "chitchat").glob("paragraphs-*.parquet"))
    assert len(cached) == 1
    assert load_chitchat(cache_dir=tmp_path).equals(first)
    assert first.height > 20_000 and first["group"].n_unique() > 3_000
