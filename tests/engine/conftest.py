"""A real local Ray cluster for the engine tests, and the held-out split cut into shards."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

#: The model the pinned held-out scores were made with (tests/fixtures/heldout_scores_static.parquet).
ORIGIN_V3 = Path(__file__).resolve().parents[2] / "models" / "origin-v3"
SPLIT = ORIGIN_V3 / "heldout_test.parquet"
#: Shard sizes: unequal, so that batches straddle shard ends; the third shard is JSONL.
SHARD_BOUNDS = (0, 1400, 2900, 4300, 6209)


@pytest.fixture(scope="session")
def ray_cluster():
    """``ray.init(num_cpus=2)`` once per session, shut down at the end."""
    ray = pytest.importorskip("ray", reason="install synthfilter[ray] (the dev extra has it)")
    # Workers at the driver's priority (Ray's default, nice 15, starves them on a busy machine).
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=400 * 2**20,
             configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def heldout() -> pl.DataFrame:
    """The 6,209 real held-out paragraphs (id, text)."""
    return pl.read_parquet(SPLIT).select("id", "text")


@pytest.fixture(scope="session")
def heldout_shards(tmp_path_factory, heldout) -> Path:
    """The held-out split as a folder of 4 shards (3 Parquet, 1 JSONL), in order."""
    folder = tmp_path_factory.mktemp("shards")
    for i, (lo, hi) in enumerate(zip(SHARD_BOUNDS[:-1], SHARD_BOUNDS[1:])):
        part = heldout.slice(lo, hi - lo)
        if i == 2:
            part.write_ndjson(folder / f"shard-{i}.jsonl")
        else:
            part.write_parquet(folder / f"shard-{i}.parquet")
    assert sum(1 for _ in folder.iterdir()) == 4
    assert np.diff(SHARD_BOUNDS).min() > 1024  # every shard spans more than one batch
    return folder


@pytest.fixture(scope="session")
def ray_scores_dir(ray_cluster, heldout_shards, tmp_path_factory) -> Path:
    """The held-out shards scored on Ray (static encoder, origin-v3 as the pinned scores were, texts kept)."""
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("ray-scores") / "scores"
    result = run_cli("score", heldout_shards, "--engine", "ray", "--encoder", "static", "--model", ORIGIN_V3,
                     "--keep", "text", "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out
