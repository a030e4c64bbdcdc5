from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from synthfilter.data.corpus import (
    CORPUS_COLUMNS,
    SPLITS,
    assign_splits,
    build_corpus,
    deduplicate,
    sample_corpus,
    write_corpus,
)
from synthfilter.data.fetch import SourceUnavailableError
from synthfilter.data.gemma import load_gemma
from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.text import normalised_hash
from synthfilter.errors import ConfigError, OutputError

GEMMA_SAMPLE = Path(__file__).with_name("gemma_sample.jsonl")  # real Gemma 3 270M records


def _assert_no_leaks(frame: pl.DataFrame) -> None:
    per_group = frame.group_by("group").agg(pl.col("split").n_unique().alias("n"))
    assert per_group["n"].max() == 1, "a group crosses splits"
    norm = frame.with_columns(pl.col("text").map_elements(normalised_hash, return_dtype=pl.String).alias("norm"))
    per_text = norm.group_by("norm").agg(pl.col("split").n_unique().alias("n"))
    assert per_text["n"].max() == 1, "a normalised text crosses splits"


def test_deduplicate_keeps_one_copy_and_drops_label_conflicts(brown_frame):
    rows = brown_frame.head(3)
    a, b, c = rows["text"].to_list()
    extra = pl.DataFrame(
        {
            "id": ["x1", "x2"],
            "text": [a.upper() + "!!", b],  # near-duplicate of a (same label), exact copy of b as machine text
            "label": [0, 1],
            "source": ["spamassassin", "gemma"],
            "group": ["spamassassin:thread:other", "brown:zz99"],
        }
    ).with_columns(
        [pl.lit(None, dtype=dtype).alias(name) for name, dtype in RECORD_SCHEMA.items() if name.startswith("gen_")]
    )
    frame = pl.concat([rows, extra.cast(RECORD_SCHEMA).select(list(RECORD_SCHEMA))])
    out = deduplicate(frame)
    assert out.filter(pl.col("text") == a).height == 1 and out.filter(pl.col("text") == a)["source"][0] == "brown"
    assert out.filter(pl.col("text").str.starts_with(a.upper())).height == 0
    assert b not in out["text"].to_list()  # seen as human and as machine: no trustworthy label
    assert c in out["text"].to_list()


def test_splits_keep_groups_and_texts_together(brown_frame, spamassassin_frame):
    gemma = load_gemma(GEMMA_SAMPLE)
    frame = assign_splits(deduplicate(pl.concat([brown_frame, spamassassin_frame, gemma])))
    assert set(frame["split"].unique()) == set(SPLITS)
    _assert_no_leaks(frame)
    # a Gemma continuation sits in the split of the document its prompt came from
    human_split = dict(frame.filter(pl.col("label") == 0).select("group", "split").unique().iter_rows())
    for group, split in frame.filter(pl.col("source") == "gemma").select("group", "split").iter_rows():
        if group in human_split:
            assert human_split[group] == split
    shares = frame.select("group", "split").unique()["split"].value_counts(normalize=True)
    share = dict(shares.iter_rows())
    assert abs(share["train"] - 0.6) < 0.08 and abs(share["calib"] - 0.2) < 0.06 and abs(share["test"] - 0.2) < 0.06


def test_split_of_a_group_does_not_depend_on_what_else_is_loaded(brown_frame):
    full = assign_splits(brown_frame)
    part = assign_splits(brown_frame.head(500))
    joined = part.join(full.select("id", pl.col("split").alias("full_split")), on="id")
    assert (joined["split"] == joined["full_split"]).all()


def test_sample_corpus_is_capped_balanced_and_reproducible(tmp_path: Path, brown_frame):
    pool = pl.concat([brown_frame, load_gemma(GEMMA_SAMPLE)])
    corpus = sample_corpus(pool, per_source=40, seed=3)
    assert tuple(corpus.columns) == CORPUS_COLUMNS
    counts = dict(corpus.group_by("source").len().iter_rows())
    assert counts["brown"] == 40 and 5 <= counts["gemma"] <= 12
    assert dict(corpus.group_by("source").agg(pl.col("label").first()).iter_rows()) == {"brown": 0, "gemma": 1}
    gemma = corpus.filter(pl.col("source") == "gemma")
    assert gemma["gen_temperature"].is_not_null().all() and gemma["gen_seed"].is_not_null().all()
    assert corpus.filter(pl.col("source") == "brown")["gen_temperature"].is_null().all()
    _assert_no_leaks(corpus)
    first = write_corpus(corpus, tmp_path / "a.parquet")
    second = write_corpus(sample_corpus(pool.reverse(), per_source=40, seed=3), tmp_path / "b.parquet")
    assert first.read_bytes() == second.read_bytes()  # same records and seed, any load order: same bytes
    assert set(sample_corpus(pool, per_source=40, seed=4)["id"]) != set(corpus["id"])
    assert pl.read_parquet(first).equals(corpus)
    assert not list(tmp_path.glob(".*tmp"))


def test_build_corpus_loads_real_sources(brown_root):
    corpus = build_corpus(per_source=20, seed=0, sources=["brown", "gemma"], gemma_path=GEMMA_SAMPLE)
    counts = dict(corpus.group_by("source", "label").len().select("source", "len").iter_rows())
    assert counts["brown"] == 20 and counts["gemma"] >= 5


def test_missing_gemma_cache_is_an_error_not_a_corpus_without_gemma(brown_root, tmp_path):
    with pytest.raises(SourceUnavailableError, match="no Gemma continuations in .*generate_gemma.py"):
        build_corpus(per_source=20, sources=["brown", "gemma"], gemma_path=tmp_path / "missing.jsonl")
    assert build_corpus(per_source=5, sources=["brown"], gemma_path=tmp_path / "missing.jsonl").height == 5


def test_split_filter_and_argument_errors(brown_frame):
    test_only = sample_corpus(brown_frame, per_source=30, seed=0, splits=["test"])
    assert set(test_only["split"]) == {"test"} and test_only.height == 30
    with pytest.raises(ConfigError, match="per_source"):
        build_corpus(per_source=0)
    with pytest.raises(ConfigError, match="unknown split"):
        build_corpus(per_source=5, splits=["dev"])  # refused before any source is loaded
    with pytest.raises(ConfigError, match="unknown source"):
        build_corpus(per_source=5, sources=["gpt2"])


def test_write_corpus_refuses_a_directory(tmp_path: Path):
    with pytest.raises(OutputError, match="is a directory"):
        write_corpus(pl.DataFrame({"id": ["a"]}), tmp_path)


SMOLLM2_SAMPLE = Path(__file__).with_name("smollm2_sample.jsonl")  # real SmolLM2-135M-Instruct records


def test_smollm2_is_a_machine_source_with_its_modes(brown_root):
    corpus = build_corpus(per_source=50, seed=0, sources=["brown", "smollm2"], smollm2_path=SMOLLM2_SAMPLE)
    smol = corpus.filter(pl.col("source") == "smollm2")
    assert smol.height >= 8 and set(smol["label"]) == {1}
    assert set(smol["gen_mode"]) == {"raw", "chat"} and smol.filter(pl.col("gen_mode") == "chat")["gen_task"].null_count() == 0
    assert corpus.filter(pl.col("source") == "brown")["gen_mode"].null_count() == 50
    _assert_no_leaks(corpus)


def test_missing_smollm2_cache_is_an_error(brown_root, tmp_path):
    with pytest.raises(SourceUnavailableError, match="no SmolLM2 generations in .*generate_smollm2.py"):
        build_corpus(per_source=20, sources=["brown", "smollm2"], smollm2_path=tmp_path / "missing.jsonl")


def test_prompt_pins_keep_only_the_first_prompts_generations(brown_root, monkeypatch):
    """``gemma_prompts``/``smollm2_prompts`` reach the loaders: a cache grown later gives the same corpus."""
    import synthfilter.data.gemma as gemma
    import synthfilter.data.smollm2 as smollm2

    def first_of(path):
        ids = [r["prompt_id"] for r in gemma.read_generations(path)]
        return lambda cache_dir=None, seed=0, first=None: ([gemma.Prompt(i, "brown", "g", "x") for i in ids[:first]], {})

    monkeypatch.setattr(gemma, "human_prompts", first_of(GEMMA_SAMPLE))
    monkeypatch.setattr(smollm2, "human_prompts", first_of(SMOLLM2_SAMPLE))
    every = build_corpus(per_source=100, sources=["gemma", "smollm2"], gemma_path=GEMMA_SAMPLE,
                         smollm2_path=SMOLLM2_SAMPLE)
    pinned = build_corpus(per_source=100, sources=["gemma", "smollm2"], gemma_path=GEMMA_SAMPLE,
                          smollm2_path=SMOLLM2_SAMPLE, gemma_prompts=3, smollm2_prompts=14)
    for source, first in (("gemma", 3), ("smollm2", 14)):
        path = GEMMA_SAMPLE if source == "gemma" else SMOLLM2_SAMPLE
        allowed = set(list(dict.fromkeys(r["prompt_id"] for r in gemma.read_generations(path)))[:first])
        kept = set(pinned.filter(pl.col("source") == source)["gen_prompt_id"])
        assert kept and kept <= allowed
        assert kept < set(every.filter(pl.col("source") == source)["gen_prompt_id"])
