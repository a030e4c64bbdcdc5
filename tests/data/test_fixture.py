"""The shipped held-out sample other tests calibrate on (tests/fixtures/origin_sample.parquet)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from synthfilter.data.schema import MACHINE_SOURCES, SOURCES
from synthfilter.data.tells import tell_auroc

SAMPLE = Path(__file__).parents[1] / "fixtures" / "origin_sample.parquet"


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    return pl.read_parquet(SAMPLE)


def test_sample_is_small_real_held_out(sample):
    assert SAMPLE.stat().st_size < 1_000_000
    assert sample.columns == ["id", "text", "label", "source", "group", "split"]
    assert set(sample["split"]) == {"test"}
    # drawn before SmolLM2 joined the sources (it was added last), and kept so the tests' data stays put
    assert set(sample["source"]) == set(SOURCES) - {"smollm2"}
    assert sample.group_by("source").len()["len"].min() >= 100
    assert sample["id"].is_unique().all()
    expected = pl.col("source").is_in(list(MACHINE_SOURCES)).cast(pl.Int8)
    assert (sample["label"] == sample.select(expected).to_series()).all()


def test_surface_tells_do_not_separate_gemma_from_its_human_sources(sample):
    part = sample.filter(pl.col("source").is_in(["gemma", "brown", "spamassassin"]))
    auroc = tell_auroc(part["text"].to_list(), part["label"].to_list(), seed=0)
    assert auroc < 0.7
