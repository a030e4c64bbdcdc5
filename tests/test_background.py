"""The detector in a second process: the same scores as in this one, and no loss when it fails."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.background import DetectorJob
from synthfilter.origin import default_model_path, load_model


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    heldout = pl.read_parquet(default_model_path() / "heldout_test.parquet")
    return heldout["text"].to_list()[:1500]


@pytest.fixture(scope="module")
def expected(shipped, texts) -> np.ndarray:
    return shipped.decision_function(texts)


def test_the_second_process_sends_the_scores_this_one_computes(shipped, texts, expected):
    with DetectorJob(shipped, texts, chunk=400) as job:
        middle = job.scores(texts[700:1100])  # spans three of the child's chunks, asked before the first ones
        every = job.scores(texts[::-1])
    assert job.failure is None
    assert np.array_equal(middle, expected[700:1100])
    assert np.array_equal(every, expected[::-1])


def test_texts_the_job_was_not_given_are_scored_here(shipped, texts, expected):
    with DetectorJob(shipped, texts[:200], chunk=64) as job:
        got = job.scores([texts[10], "A text the job never saw.", texts[150]])
    assert got[0] == expected[10] and got[2] == expected[150]
    assert got[1] == shipped.decision_function(["A text the job never saw."])[0]


def test_a_child_that_cannot_start_costs_nothing_but_time(shipped, texts, expected, monkeypatch):
    monkeypatch.setattr("synthfilter.background.sys.executable", "/nonexistent/python")
    with DetectorJob(shipped, texts[:300], chunk=100) as job:
        got = job.scores(texts[:300])
    assert "cannot start" in job.failure
    assert np.array_equal(got, expected[:300])


def test_a_child_that_dies_midway_is_replaced_by_this_process(shipped, texts, expected):
    job = DetectorJob(shipped, texts, chunk=100)
    job._process.kill()  # as if the system had killed it
    try:
        got = job.scores(texts[1200:1500])
    finally:
        job.close()
    assert job.failure is not None
    assert np.array_equal(got, expected[1200:1500])


def test_close_stops_a_running_child(shipped, texts):
    job = DetectorJob(shipped, texts * 20, chunk=500)
    job.close()
    assert job._process.poll() is not None  # reaped: no process left behind
