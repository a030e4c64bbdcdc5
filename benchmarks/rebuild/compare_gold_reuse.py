"""Same decisions before and after: ``rebuild --gold`` reusing the candidates' clusters, on the benchmark's pools.

    python benchmarks/rebuild/compare_gold_reuse.py --baseline /path/to/old/checkout --seeds 0 1 2

For each seed, builds the pool and gold set of ``bench_rebuild.py`` (held-out
real text, planted exact and near copies of pool and gold records), scores the
pool as ``synthfilter score`` does (shipped detector, static encoder), writes
the scores and the gold set to a temporary folder, and runs ``synthfilter
rebuild scores --gold gold --encoder static --max-synthetic CAP`` with this
checkout and with the baseline checkout (the code that re-clusters every
candidate). Prints, per seed and cap, whether the decisions (kept, reason per
row) and the cluster partitions are identical, and the seconds of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_gold_reuse import ROOT, timed_rebuild  # noqa: E402
from bench_rebuild import build_pool  # noqa: E402

from synthfilter.scoring import score  # noqa: E402


def _partition(labels: np.ndarray) -> set[tuple[int, ...]]:
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(i)
    return {tuple(g) for g in groups.values() if len(g) > 1}


def compare(seed: int, caps: list[float], baseline: Path, folder: Path) -> list[dict]:
    corpus = pl.read_parquet(ROOT / "models" / "origin-v3" / "heldout_test.parquet")
    pool, gold, _ = build_pool(corpus, pool_size=1300, gold_size=300, rare_fraction=0.03, exact_dup_fraction=0.03,
                               near_dup_fraction=0.03, gold_copy_fraction=0.01, seed=seed)
    scores = folder / "pool.scores.parquet"
    gold_path = folder / "gold.parquet"
    score(pool.select("id", "text"), keep_columns=["text"], encoder="static", seed=seed).write_parquet(scores)
    gold.select("id", "text").write_parquet(gold_path)
    rows = []
    for cap in caps:
        runs = {}
        for name, code in (("new", ROOT), ("old", baseline)):
            out = folder / f"{name}_{cap}"
            runs[name] = timed_rebuild(code, scores, gold_path, out, 1800, extra=["--max-synthetic", str(cap)])
            runs[name]["decisions"] = pl.read_parquet(out / "train.decisions.parquet")
        new, old = runs["new"].pop("decisions"), runs["old"].pop("decisions")
        cols = ["input", "row", "id", "kept", "reason"]
        rows.append({
            "seed": seed, "cap": cap, "records": new.height,
            "decisions_identical": new.select(cols).equals(old.select(cols)),
            "kept_new": int(new["kept"].sum()), "kept_old": int(old["kept"].sum()),
            "duplicates_dropped": int(new["reason"].str.starts_with("duplicate-of:").sum()),
            "partition_identical": _partition(new["dup_cluster"].to_numpy()) == _partition(old["dup_cluster"].to_numpy()),
            "seconds_new": runs["new"].get("seconds"), "seconds_old": runs["old"].get("seconds"),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--caps", type=float, nargs="+", default=[0.05, 0.2, 0.4])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            folder = Path(tmp) / f"seed{seed}"
            folder.mkdir()
            rows += compare(seed, args.caps, args.baseline, folder)
    print(json.dumps({"all_identical": all(r["decisions_identical"] and r["partition_identical"] for r in rows),
                      "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
