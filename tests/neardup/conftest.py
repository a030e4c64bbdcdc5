"""Real paragraphs for the near-duplicate tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

HELDOUT = Path(__file__).resolve().parents[2] / "models" / "origin-v3" / "heldout_test.parquet"


@pytest.fixture(scope="session")
def paragraphs(tails_sample) -> list[str]:
    """Brown and SpamAssassin paragraphs (the tails fixture)."""
    return tails_sample["text"].to_list()


@pytest.fixture(scope="session")
def heldout_texts() -> list[str]:
    """The 6,209 held-out paragraphs of the shipped model (ShareGPT, Brown, SpamAssassin, Gemma)."""
    return pl.read_parquet(HELDOUT, columns=["text"])["text"].to_list()

