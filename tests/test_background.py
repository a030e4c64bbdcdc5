"""The detector's text part in a second process: the same rows as in this one, and no loss when it fails."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.background import TextPartJob
from synthfilter.errors import ConfigError
from synthfilter.origin import OriginScorer, default_model_path, load_model


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    heldout = pl.read_parquet(default_model_path() / "heldout_test.parquet")
    return heldout["text"].to_list()[:1500]


def test_text_part_rows_give_the_detectors_own_scores(shipped, texts):
    direct = shipped.decision_function(texts)
    rows = shipped.text_part(texts)
    assert rows.shape[0] == len(texts) and np.isfinite(rows).all()
    assert np.array_equal(shipped.decision_function(texts, text_part=rows), direct)
    # and on a slice, one thread (fewer texts than a second thread needs)
    assert np.array_equal(shipped.decision_function(texts[:40], text_part=rows[:40]), direct[:40])


def test_a_linear_detector_has_no_text_part(texts):
    labels = np.arange(200) % 2
    linear = OriginScorer(classifier="linear", use_embeddings=False, lm_orders=(), n_features=2**10).fit(
        texts[:200], labels)
    assert not linear.has_text_part()
    with pytest.raises(ConfigError, match="linear"):
        linear.text_part(texts[:3])


def test_the_second_process_sends_the_rows_this_one_computes(shipped, texts):
    with TextPartJob(shipped, texts, chunk=400) as job:
        middle = job.rows(texts[700:1100])  # spans three of the child's chunks, asked before the first ones
        every = job.rows(texts[::-1])
    assert job.failure is None
    expected = shipped.text_part(texts)
    assert np.array_equal(middle, expected[700:1100])
    assert np.array_equal(every, expected[::-1])


def test_a_child_that_cannot_start_costs_nothing_but_time(shipped, texts, monkeypatch, capsys):
    monkeypatch.setattr("synthfilter.background.sys.executable", "/nonexistent/python")
    with TextPartJob(shipped, texts[:300], chunk=100) as job:
        rows = job.rows(texts[:300])
    assert "cannot start" in job.failure
    assert np.array_equal(rows, shipped.text_part(texts[:300]))


def test_a_child_that_dies_midway_is_replaced_by_this_process(shipped, texts):
    job = TextPartJob(shipped, texts, chunk=100)
    job._process.kill()  # as if the system had killed it
    try:
        rows = job.rows(texts[1200:1500])
    finally:
        job.close()
    assert job.failure is not None
    assert np.array_equal(rows, shipped.text_part(texts[1200:1500]))


def test_close_stops_a_running_child(shipped, texts):
    job = TextPartJob(shipped, texts * 20, chunk=500)
    job.close()
    assert job._process.poll() is not None  # reaped: no process left behind


def test_texts_the_job_was_not_given_are_computed_here(shipped, texts):
    with TextPartJob(shipped, texts[:200], chunk=64) as job:
        rows = job.rows([texts[10], "A text the job never saw.", texts[150]])
    assert np.array_equal(rows, shipped.text_part([texts[10], "A text the job never saw.", texts[150]]))
