"""``--engine ray`` on a real local Ray cluster gives the local engine's answers.

The corpus is origin-v3's 6,209 held-out paragraphs cut into 4 shards, scored
with origin-v3. The local engine's scores for it are pinned in
``tests/fixtures/heldout_scores_static.parquet`` (``tests/test_heldout_scores.py``
checks that the local engine still gives them), so the Ray run is compared
with them instead of paying for a second local run of the detector.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.rebuild import RebuildPolicy, rebuild
from synthfilter.scoring import _STAGES, register_stage, score_with_report
from synthfilter.shards import read_sharded
from tests.conftest import run_cli

PINNED = Path(__file__).resolve().parents[1] / "fixtures" / "heldout_scores_static.parquet"
ORIGIN_V3 = Path(__file__).resolve().parents[2] / "models" / "origin-v3"  # the model the pinned scores used


def _partition(labels: np.ndarray) -> set[tuple[int, ...]]:
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return {tuple(g) for g in groups.values() if len(g) > 1}


@pytest.fixture(scope="module")
def ray_scores(ray_scores_dir) -> pl.DataFrame:
    return pl.read_parquet(sorted(ray_scores_dir.glob("part-*.parquet")))


@pytest.fixture(scope="module")
def pinned() -> pl.DataFrame:
    return pl.read_parquet(PINNED)


def test_one_score_shard_per_input_shard_with_order_kept(ray_scores_dir, heldout_shards):
    shards = sorted(ray_scores_dir.glob("part-*.parquet"))
    inputs = sorted(p for p in heldout_shards.iterdir())
    assert len(shards) == len(inputs) == 4
    for out, src in zip(shards, inputs):
        src_ids = (pl.read_parquet(src) if src.suffix == ".parquet" else pl.read_ndjson(src))["id"].to_list()
        assert pl.read_parquet(out)["id"].to_list() == src_ids


def test_manifest_hashes_every_shard(ray_scores_dir):
    from synthfilter.provenance import file_sha256

    manifest = json.loads((ray_scores_dir / "manifest.json").read_text())
    assert manifest["engine"] == "ray" and manifest["engine_info"]["workers"] >= 1
    assert len(manifest["outputs"]) == 4 and len(manifest["inputs"]) == 4
    for entry in manifest["outputs"]:
        assert entry["sha256"] == file_sha256(entry["path"])
    assert manifest["counts"]["records"] == 6209
    assert 0 <= manifest["origin"]["synthetic_share"]["share"] <= 1


def test_same_ids_in_the_same_order(ray_scores, pinned):
    assert ray_scores.height >= 5000
    assert ray_scores["id"].to_list() == pinned["id"].to_list()


@pytest.mark.parametrize("column", ["p_synthetic", "synthetic_score"])
def test_detector_scores_within_1e6(ray_scores, pinned, column):
    np.testing.assert_allclose(ray_scores[column].to_numpy(), pinned[column].to_numpy(), rtol=0, atol=1e-6)


def test_same_near_duplicate_clusters(ray_scores, pinned):
    assert _partition(ray_scores["dup_cluster"].to_numpy()) == _partition(pinned["dup_cluster"].to_numpy())
    assert ray_scores["is_near_duplicate"].to_list() == pinned["is_near_duplicate"].to_list()


def test_rarity_within_the_index_recall(ray_scores_dir, ray_scores, pinned):
    index = json.loads((ray_scores_dir / "manifest.json").read_text())["tails"]["index"]
    recall = 1.0 if index["kind"] == "flat" else index["recall_at_k"]
    differ = np.abs(ray_scores["rarity"].to_numpy() - pinned["rarity"].to_numpy()) > 1e-6
    assert differ.mean() <= 1.0 - recall


def test_ivf_rarity_within_measured_recall(ray_cluster, heldout_shards):
    """With a forced IVF index, the Ray run's rarity differs from the local one's at most as often as recall allows."""
    local = score_with_report(read_sharded(heldout_shards), encoder="static", model=None, index="ivf")
    remote = score_with_report(heldout_shards, encoder="static", model=None, index="ivf", engine="ray")
    recall = remote.info["tails"]["index"]["recall_at_k"]
    assert 0.5 < recall <= 1.0
    differ = np.abs(remote.table["rarity"].to_numpy() - local.table["rarity"].to_numpy()) > 1e-6
    assert differ.mean() <= 1.0 - recall
    assert remote.table["id"].to_list() == local.table["id"].to_list()


class CrashOnce:
    """Per-record stage that kills its worker process the first time it sees a marked text."""

    name = "crash_once"
    columns = ("chars",)

    def __init__(self, flag: str, marker: str) -> None:
        self.flag, self.marker = flag, marker

    def setup(self) -> None:
        pass

    def process(self, batch):
        texts = [str(t) for t in batch["text"]]
        if self.marker in texts:
            try:
                fd = os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os._exit(1)  # the worker dies mid-run; Ray restarts the actor and retries the batch
        return {"chars": np.asarray([len(t) for t in texts], dtype=np.int64)}


def test_a_worker_killed_mid_run_gives_the_same_output(ray_cluster, heldout_shards, heldout, tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    flag = tmp_path / "crashed"
    marker = heldout["text"][3500]
    register_stage("crash_once")(lambda **_: CrashOnce(str(flag), marker))
    try:
        remote = score_with_report(heldout_shards, encoder="static", model=None, stages=["crash_once", "tails"],
                                   engine="ray")
        assert flag.exists()  # a worker did die
        local = score_with_report(read_sharded(heldout_shards), encoder="static", model=None,
                                  stages=["crash_once", "tails"])
    finally:
        _STAGES.pop("crash_once", None)
    assert remote.table.drop("shard").equals(local.table)
    assert remote.table["chars"].to_list() == heldout["text"].str.len_chars().to_list()


def test_rebuild_on_ray_makes_the_local_decisions(ray_cluster, ray_scores_dir, tmp_path):
    policy = RebuildPolicy(max_synthetic=0.1, seed=0)
    local = rebuild(read_sharded(ray_scores_dir), policy=policy, candidate_names=[str(ray_scores_dir)],
                    model=ORIGIN_V3)
    out = tmp_path / "train"
    result = run_cli("rebuild", ray_scores_dir, "--engine", "ray", "--model", ORIGIN_V3, "--max-synthetic", "0.1",
                     "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    decisions = pl.read_parquet(out / "_decisions.parquet")
    assert decisions.equals(local.decisions)
    training = pl.read_parquet(sorted(out.glob("part-*.parquet")))
    assert training.equals(local.training)
    assert 0 < training.height < decisions.height
    manifest = json.loads((out / "_manifest.json").read_text())
    assert len(manifest["outputs"]) == 5 and manifest["counts"] == json.loads(json.dumps(local.selection.counts))


def test_a_bad_shard_is_a_one_line_error_and_writes_nothing(ray_cluster, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    pl.DataFrame({"id": ["a", "b"], "text": ["a fine paragraph", "another one"]}).write_parquet(shards / "0.parquet")
    pl.DataFrame({"id": ["c", "d"], "text": ["fine", None]}).write_parquet(shards / "1.parquet")
    out = tmp_path / "scores"
    result = run_cli("score", shards, "--engine", "ray", "--encoder", "static", "--model", "none", "-o", out)
    assert result.exit_code == 2
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "1.parquet: column 'text' is null at row 1" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]
