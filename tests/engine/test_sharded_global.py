"""The tail stage's global steps shard by shard (``synthfilter.stages.sharded``).

In-process first (the local record set cut into shards of 1,500 records),
then on a real local Ray cluster, where the embeddings and band keys must
stay in the cluster: the driver gets distances, positions and edges only.
The answers are compared bit for bit with the single-index path the local
engine takes.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.engine.base import GlobalContext
from synthfilter.engine.local import LocalEngine, LocalRecordSet
from synthfilter.stages import EncodeStage, SketchStage, TailGlobalStage, textdup
from synthfilter.stages.knn import knn_tails
from synthfilter.stages.sharded import build_sharded_index, sharded_candidate_pairs, sharded_knn_tails


@pytest.fixture(scope="module")
def local_records(heldout) -> LocalRecordSet:
    return LocalEngine().map_records(heldout, [EncodeStage("static"), SketchStage(0.8)])


@pytest.fixture(scope="module")
def sharded(local_records) -> LocalRecordSet:
    return LocalRecordSet(local_records.columns, local_records.frame, local_records.texts, shard_rows=1500)


def _active(records) -> np.ndarray:
    keys = records.columns["norm_key"]
    n = keys.shape[0]
    rows, _ = textdup.exact_pairs(keys)
    first = np.ones(n, dtype=bool)
    first[rows] = False
    return first & ~np.all(keys == textdup.BLANK_KEY, axis=1)


def _same_knn(a, b) -> None:
    assert np.array_equal(a.knn_distance, b.knn_distance)
    assert np.array_equal(a.rarity, b.rarity)
    assert np.array_equal(a.embedding_clusters, b.embedding_clusters)
    assert a.info["index"] == b.info["index"]


@pytest.mark.parametrize("index", ["auto", "ivf"])
def test_sharded_knn_equals_the_single_index(local_records, sharded, index):
    whole = knn_tails(local_records.columns["embedding"], index=index)
    parts = sharded_knn_tails(sharded, index=index)
    _same_knn(whole, parts)
    assert parts.info["sharded"]["shards"] == 5
    assert whole.info["index"]["kind"] == ("flat" if index == "auto" else "ivf")
    assert (np.bincount(parts.embedding_clusters) > 1).any()  # there are embedding duplicates to agree on


def test_sharded_knn_against_a_reference_equals_the_single_index(local_records, sharded):
    ref = LocalRecordSet({"embedding": local_records.columns["embedding"][:2000]}, local_records.frame[:2000],
                         local_records.texts[:2000], shard_rows=700)
    _same_knn(knn_tails(local_records.columns["embedding"], local_records.columns["embedding"][:2000]),
              sharded_knn_tails(sharded, ref))


def test_ivf_nprobe_is_chosen_by_measured_recall(sharded):
    built = build_sharded_index(sharded, 10, index="ivf", seed=3)
    report = built.report
    assert report.kind == "ivf" and report.recall_sample == 500 and len(built.kept) == 5
    assert report.recall_at_k >= report.recall_target or report.nprobe == report.nlist
    tried = [p for p, _ in report.nprobe_trials]
    assert tried[-1] == report.nprobe and all(r < report.recall_target for _, r in report.nprobe_trials[:-1])
    fixed = build_sharded_index(sharded, 10, index="ivf", seed=3, nprobe=1)
    assert fixed.report.nprobe == 1 and fixed.report.recall_at_k < report.recall_at_k


@pytest.mark.parametrize("buckets", [1, 3])
def test_band_key_group_by_gives_the_candidate_pairs(local_records, sharded, buckets):
    active = _active(local_records)
    rows, cols = textdup.candidate_pairs(local_records.columns["band_keys"], active)
    got = sharded_candidate_pairs(sharded, active, buckets=buckets)
    assert rows.size > 100
    assert np.array_equal(got[0], rows) and np.array_equal(got[1], cols)


# ----------------------------------------------------------------------------- on Ray
@pytest.fixture(scope="module")
def ray_records(ray_cluster, heldout_shards):
    from synthfilter.engine.ray import RayEngine
    from synthfilter.shards import ShardSource

    return RayEngine().map_records(ShardSource.of(heldout_shards), [EncodeStage("static"), SketchStage(0.8)])


def test_on_ray_the_tail_stage_keeps_vectors_in_the_cluster_and_equals_local(ray_records, local_records):
    stage = TailGlobalStage()
    ctx = GlobalContext()
    remote = stage.run(ray_records, ctx)
    local = stage.run(local_records, GlobalContext())
    held = set(dict.keys(ray_records.columns))
    assert "embedding" not in held and "band_keys" not in held  # never gathered on the driver
    assert ctx.info["tails"]["sharded"]["shards"] >= 4
    for column in ("knn_distance", "rarity", "dup_cluster", "is_near_duplicate"):
        assert np.array_equal(remote[column], local[column]), column


def test_on_ray_ivf_and_band_groups_equal_local(ray_records, local_records):
    whole = knn_tails(local_records.columns["embedding"], index="ivf")
    _same_knn(whole, sharded_knn_tails(ray_records, index="ivf"))
    active = _active(local_records)
    rows, cols = textdup.candidate_pairs(local_records.columns["band_keys"], active)
    got = sharded_candidate_pairs(ray_records, active)
    assert np.array_equal(got[0], rows) and np.array_equal(got[1], cols)
    assert "band_keys" not in set(dict.keys(ray_records.columns))


def _exit_once(part, *, flag: str):
    """Shard function that kills its worker the first time it runs anywhere, then counts rows."""
    import os

    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return int(part["pos"].size), int(part["pos"][0])
    os.close(fd)
    os._exit(1)


def test_on_ray_a_shard_task_whose_worker_dies_is_retried(ray_records, tmp_path):
    import sys
    from functools import partial

    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    flag = tmp_path / "died"
    got = ray_records.map_shards(partial(_exit_once, flag=str(flag)), ["embedding"])
    assert flag.exists()
    sizes, starts = zip(*got)
    assert sum(sizes) == 6209 and starts[0] == 0 and list(starts) == sorted(starts)


def test_on_ray_rarity_against_a_reference_equals_local(ray_cluster, heldout_shards, heldout):
    from synthfilter.scoring import score_with_report
    from synthfilter.shards import read_sharded

    reference = heldout.slice(0, 1500).with_columns(text=heldout["text"].slice(0, 1500) + " (ref)")
    local = score_with_report(read_sharded(heldout_shards), encoder="static", model=None, reference=reference)
    remote = score_with_report(heldout_shards, encoder="static", model=None, reference=reference, engine="ray")
    assert remote.info["tails"]["rarity_against"] == "reference" == local.info["tails"]["rarity_against"]
    assert remote.info["tails"]["sharded"]["shards"] >= 2
    assert remote.table.drop("shard").equals(local.table)
