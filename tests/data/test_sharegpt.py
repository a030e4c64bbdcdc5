from __future__ import annotations

import json

import polars as pl

from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.sharegpt import iter_conversations, load_sharegpt

PARA_H = (
    "I have been trying to understand how the old mill in our town worked, and my grandmother says it ran on water from the river. "
    * 2
)
PARA_G = (
    "A water mill converts the energy of flowing water into mechanical work. The river turns a wheel, and the wheel drives the millstones. "
    * 2
)


def test_iter_conversations_stops_at_cut_off_record():
    items = [{"id": "a_0", "conversations": []}, {"id": "a_1", "conversations": []}]
    raw = json.dumps(items, indent=2)
    truncated = raw[:-1] + ',\n  {"id": "b_0", "conversations": [{"from": "hu'
    assert [c["id"] for c in iter_conversations(truncated)] == ["a_0", "a_1"]


def test_load_sharegpt_labels_roles_and_groups():
    raw = json.dumps(
        [
            {"id": "xyz_0", "conversations": [{"from": "human", "value": PARA_H}, {"from": "gpt", "value": PARA_G}]},
            {"id": "xyz_1", "conversations": [{"from": "system", "value": PARA_H + " system"}]},
        ]
    )
    frame = load_sharegpt(raw)
    assert frame.schema == pl.Schema(RECORD_SCHEMA)
    rows = {r["source"]: r for r in frame.iter_rows(named=True)}
    assert set(rows) == {"sharegpt_human", "sharegpt_chatgpt"}
    assert rows["sharegpt_human"]["label"] == 0 and rows["sharegpt_chatgpt"]["label"] == 1
    assert rows["sharegpt_human"]["group"] == rows["sharegpt_chatgpt"]["group"] == "sharegpt:xyz"


def test_load_sharegpt_drops_text_echoed_between_roles():
    pasted = "Please rewrite this more formally: " + PARA_G.lower()
    raw = json.dumps(
        [
            {
                "id": "echo_0",
                "conversations": [
                    {"from": "human", "value": PARA_H},
                    {"from": "gpt", "value": PARA_G},
                    {"from": "human", "value": pasted},
                ],
            }
        ]
    )
    frame = load_sharegpt(raw)
    assert pasted not in frame["text"].to_list()
    assert sorted(frame["source"].to_list()) == ["sharegpt_human"]  # ChatGPT's paragraph was pasted back too
    assert frame["text"].to_list() == [PARA_H.strip()]


def test_load_sharegpt_on_real_file_head(sharegpt_head):
    frame = load_sharegpt(sharegpt_head)
    counts = dict(frame.group_by("source").len().iter_rows())
    assert counts["sharegpt_chatgpt"] > 100 and counts["sharegpt_human"] > 5
    lengths = frame["text"].str.len_chars()
    assert lengths.min() >= 200 and lengths.max() <= 600
    assert frame["text"].str.contains(r"^[\x00-\x7f]*$").all()
    assert not frame["text"].str.contains("```|def |\\{$").any()
    assert frame["group"].str.contains(r"^sharegpt:[^_]+").all()
