"""``rebuild --engine ray --gold`` makes the local engine's decisions.

Candidates: the 6,209 held-out paragraphs scored on Ray in 4 shards. Gold:
600 texts built from them so that every kind of gold edge occurs (exact
copies, copies with a word dropped, which only the shingle check joins, and
texts that join nothing), under their own ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.rebuild import RebuildPolicy, rebuild
from synthfilter.shards import read_sharded
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def gold_file(heldout, tmp_path_factory) -> Path:
    texts = heldout["text"].to_list()
    rng = np.random.default_rng(7)
    picks = rng.choice(len(texts), size=600, replace=False)
    gold = []
    for n, i in enumerate(picks.tolist()):
        text = texts[i]
        words = text.split()
        if n < 150:
            gold.append(text)  # exact copy of a candidate
        elif n < 350 and len(words) > 30:
            gold.append(" ".join(words[:10] + words[11:]))  # near copy: one word dropped
        else:
            gold.append(" ".join(reversed(words)) + " (gold)")  # joins nothing
    path = tmp_path_factory.mktemp("gold") / "gold.parquet"
    pl.DataFrame({"id": [f"gold-{n}" for n in range(len(gold))], "text": gold,
                  "source": ["human"] * len(gold)}).write_parquet(path)
    return path


def test_rebuild_with_gold_on_ray_makes_the_local_decisions(ray_scores_dir, gold_file, tmp_path):
    policy = RebuildPolicy(max_synthetic=0.1, seed=0)
    local = rebuild(read_sharded(ray_scores_dir), pl.read_parquet(gold_file), policy, encoder="static",
                    candidate_names=[str(ray_scores_dir)], gold_names=[str(gold_file)])
    out = tmp_path / "train"
    result = run_cli("rebuild", ray_scores_dir, "--gold", gold_file, "--engine", "ray", "--encoder", "static",
                     "--max-synthetic", "0.1", "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    decisions = pl.read_parquet(out / "_decisions.parquet")
    assert decisions.equals(local.decisions)
    training = pl.read_parquet(sorted(out.glob("part-*.parquet")))
    assert training.equals(local.training)
    # The gold edges mattered: candidates dropped as duplicates of gold, rarity measured against gold.
    cand = decisions.filter(pl.col("origin") != "gold")
    gold_clusters = set(decisions.filter(pl.col("origin") == "gold")["dup_cluster"].to_list())
    assert cand.filter(pl.col("dup_cluster").is_in(list(gold_clusters)))["kept"].sum() < 150
    assert cand.filter(pl.col("dup_cluster").is_in(list(gold_clusters))).height >= 150 + 100
    scored = read_sharded(ray_scores_dir)["rarity"].to_numpy()
    assert not np.allclose(cand["rarity"].to_numpy(), scored)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["tails"]["computed"] == "joint" and manifest["tails"]["rarity_against"] == "gold"
    assert manifest["tails"]["sharded"]["shards"] >= 4
    assert any(entry["path"] == str(gold_file) for entry in manifest["inputs"])
    assert manifest["counts"] == json.loads(json.dumps(local.selection.counts))
    # The share's human side comes from the gold on both engines.
    assert manifest["share_correction"] == local.info["share_correction"]
    assert manifest["share_correction"]["correction"] == "gold-human"


def test_rebuild_with_gold_on_ray_refuses_an_id_that_names_two_texts(ray_scores_dir, heldout, tmp_path):
    gold = tmp_path / "clash.parquet"
    pl.DataFrame({"id": [heldout["id"][5], "g1"], "text": ["not the candidate's text", "another"]}).write_parquet(gold)
    result = run_cli("rebuild", ray_scores_dir, "--gold", gold, "--engine", "ray", "--encoder", "static",
                     "-o", tmp_path / "out", "--quiet")
    assert result.exit_code != 0
    assert f"id '{heldout['id'][5]}' names different texts" in result.output
    assert not (tmp_path / "out").exists()
