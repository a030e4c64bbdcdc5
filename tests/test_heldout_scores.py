"""Speed work changes no result: the held-out split scores as pinned in the fixture.

The fixture (``tests/fixtures/heldout_scores_static.parquet``, made by
``tests/fixtures/make_heldout_scores.py``) holds what ``score`` gave for
``origin-v3``'s held-out split with that model and the static encoder before
the throughput work (the model is named, so a new default detector leaves the
comparison like with like). Ids and order must match, floats within 1e-6, and the near-duplicate
clusters must be the same partition (labels may differ); also when the
detector runs in a second process (:mod:`synthfilter.background`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.scoring import score

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODEL = Path(__file__).resolve().parent.parent / "models" / "origin-v3"
SPLIT = MODEL / "heldout_test.parquet"


def _partition(labels: np.ndarray) -> set[tuple[int, ...]]:
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return {tuple(g) for g in groups.values() if len(g) > 1}


@pytest.fixture(scope="module", params=["one process", "second process"])
def pinned_and_now(request, tmp_path_factory):
    """The pinned scores, and today's: in one process, and with the detector in a second one."""
    pinned = pl.read_parquet(FIXTURES / "heldout_scores_static.parquet")
    corpus = pl.read_parquet(SPLIT).select("id", "text")
    if request.param == "one process":
        return pinned, score(corpus, encoder="static", seed=0, model=MODEL)
    import synthfilter.background
    import synthfilter.stages.records

    started = []

    class CountedJob(synthfilter.background.DetectorJob):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTHFILTER_CACHE", str(tmp_path_factory.mktemp("cold-cache")))  # every text to score
        patch.setenv("SYNTHFILTER_THREADS", "2")
        # as with a corpus encoder other than the detector's (MiniLM): the detector runs in the second process
        patch.setattr(synthfilter.stages.records.OriginRecordStage, "reuses_embeddings", lambda self: False)
        patch.setattr(synthfilter.background, "DetectorJob", CountedJob)
        now = score(corpus, encoder="static", seed=0, model=MODEL)
    assert len(started) == 1 and started[0].failure is None and started[0]._process.poll() is not None
    return pinned, now


def test_ids_and_order_unchanged(pinned_and_now):
    pinned, now = pinned_and_now
    assert now["id"].to_list() == pinned["id"].to_list()


@pytest.mark.parametrize("column", ["p_synthetic", "synthetic_score", "knn_distance", "rarity"])
def test_float_scores_unchanged(pinned_and_now, column):
    pinned, now = pinned_and_now
    np.testing.assert_allclose(now[column].to_numpy(), pinned[column].to_numpy(), rtol=0, atol=1e-6)


def test_near_duplicate_clusters_unchanged(pinned_and_now):
    pinned, now = pinned_and_now
    assert _partition(now["dup_cluster"].to_numpy()) == _partition(pinned["dup_cluster"].to_numpy())
    assert now["is_near_duplicate"].sum() == pinned["is_near_duplicate"].sum()
