"""``knn_tails`` cold, on an unchanged corpus, and with new records, in one run.

    python benchmarks/throughput/bench_knn_cache.py                        # 100,000 real records
    python benchmarks/throughput/bench_knn_cache.py --corpus /tmp/prof/c100k.parquet

The records are ``benchmarks/scale/real_corpus.py``'s ``real_corpus(n)`` (or
the ``text`` column of ``--corpus``), embedded once with the static encoder
(uncached, not timed). Each figure is one :func:`knn_tails` call in this
process, with its own fresh cache folder:

* ``uncached``: ``cache=False`` (the code path before the k-NN cache);
* ``cold``: an empty cache folder (hashing the rows and writing the state included);
* ``unchanged``: the same rows again;
* ``new``: a state built (not timed) for the corpus without ``--new-share``
  of its rows, chosen at random (so the new ones are inserted anywhere),
  then the whole corpus.

The incremental answer is compared with the cold one (share of rows whose
``knn_distance`` is equal, bit for bit and within 1e-6; rarity differences;
clusters up to labels). With ``--yardstick``, two more (untimed) answers
set the scale: exact search (``index="flat"``), and a cold build of the same
rows in another order (another HNSW graph, as approximate as the first);
each answer's agreement with exact search is reported, and the cold build's
agreement with itself on reordered rows. ``os.getloadavg()`` is printed beside every figure:
on a shared machine the load changes them. Prints one JSON object (and
writes it to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

from synthfilter.encoders import get_encoder  # noqa: E402
from synthfilter.stages.knn import knn_tails  # noqa: E402


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _timed(label: str, fn) -> tuple[object, dict]:
    before = _load()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    figure = {"seconds": round(seconds, 3), "load_avg_1min": [before, _load()]}
    print(f"{label}: {figure}", file=sys.stderr, flush=True)
    return out, figure


def _info(result) -> dict:
    out = dict(result.info["reuse"])
    out["index"] = {k: result.info["index"].get(k) for k in ("kind", "n_indexed", "ef_search", "recall_at_k")}
    return out


def _compare(a, b) -> dict:
    diff = np.abs(a.knn_distance - b.knn_distance)
    drift = np.abs(a.rarity - b.rarity)
    pairs = pl.DataFrame({"a": a.embedding_clusters, "b": b.embedding_clusters}).unique().height
    return {
        "knn_distance_bit_equal": round(float(np.mean(diff == 0)), 4),
        "knn_distance_within_1e-6": round(float(np.mean(diff <= 1e-6)), 4),
        "rarity_abs_diff_mean": round(float(drift.mean()), 5),
        "rarity_abs_diff_p99": round(float(np.percentile(drift, 99)), 5),
        "rarity_abs_diff_max": round(float(drift.max()), 5),
        "clusters": [int(pl.Series(a.embedding_clusters).n_unique()), int(pl.Series(b.embedding_clusters).n_unique())],
        "cluster_label_pairs": int(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--corpus", type=Path, default=None, help="a Parquet file with a text column")
    parser.add_argument("--new-share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--yardstick", action="store_true", help="also exact search and a reordered cold build")
    args = parser.parse_args()

    if args.corpus is not None:
        texts = pl.read_parquet(args.corpus)["text"].to_list()[: args.n]
    else:
        from real_corpus import real_corpus

        texts = real_corpus(args.n)["text"].to_list()
    x = get_encoder("static", cache=False).encode(texts)
    n = x.shape[0]
    left_out = np.sort(np.random.default_rng(args.seed).choice(n, size=int(args.new_share * n), replace=False))
    base = np.setdiff1d(np.arange(n), left_out)
    report: dict = {"n": n, "dim": int(x.shape[1]), "new_rows": int(left_out.size), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uncached, report["uncached"] = _timed("uncached", lambda: knn_tails(x, cache=False))
        cold, report["cold"] = _timed("cold", lambda: knn_tails(x, cache_dir=tmp / "a"))
        same, report["unchanged"] = _timed("unchanged", lambda: knn_tails(x, cache_dir=tmp / "a"))
        _, report["base_state_not_counted"] = _timed("base", lambda: knn_tails(x[base], cache_dir=tmp / "b"))
        new, report["new"] = _timed("new", lambda: knn_tails(x, cache_dir=tmp / "b"))
        report["state_file_bytes"] = sum(p.stat().st_size for p in (tmp / "b").glob("*.npz"))
    report["cold"]["info"], report["unchanged"]["info"], report["new"]["info"] = _info(cold), _info(same), _info(new)
    report["unchanged_bit_identical"] = all(
        np.array_equal(getattr(cold, f), getattr(same, f)) for f in ("knn_distance", "rarity", "embedding_clusters"))
    report["uncached_equals_cold"] = all(
        np.array_equal(getattr(cold, f), getattr(uncached, f)) for f in ("knn_distance", "rarity", "embedding_clusters"))
    report["new_vs_cold"] = _compare(new, cold)
    if args.yardstick:
        exact, _ = _timed("exact", lambda: knn_tails(x, index="flat", cache=False))
        perm = np.random.default_rng(args.seed + 1).permutation(n)
        again, _ = _timed("cold, reordered", lambda: knn_tails(x[perm], cache=False))
        inverse = np.argsort(perm)
        for field in ("knn_distance", "rarity", "embedding_clusters"):
            setattr(again, field, getattr(again, field)[inverse])
        report["yardstick"] = {"new_vs_exact": _compare(new, exact), "cold_vs_exact": _compare(cold, exact),
                               "cold_reordered_vs_cold": _compare(again, cold)}
    report["speedup"] = {"unchanged": round(report["cold"]["seconds"] / report["unchanged"]["seconds"], 1),
                         "new": round(report["cold"]["seconds"] / report["new"]["seconds"], 1)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
