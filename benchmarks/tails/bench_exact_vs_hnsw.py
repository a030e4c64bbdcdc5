"""Exact search against the HNSW graph for every row's k nearest neighbours: where the CPU cost crosses.

    python benchmarks/tails/bench_exact_vs_hnsw.py --sizes 100000 150000 200000 --dims 64 384 \\
        --out benchmarks/tails/results/exact_vs_hnsw.json

``score`` (one process, ``--index auto``) needs the self-excluded top-``k``
of every record among all of them. It can search exactly (a flat index:
BLAS products and a heap, cost growing as ``n**2``) or build an HNSW graph
and search it with the least ``efSearch`` whose recall@k reaches 0.95
(:func:`synthfilter.knn_index.build_index`). This script measures both on
the same vectors, on one thread, in CPU seconds (the fair measure on a
shared machine), so that :data:`synthfilter.knn_index.HNSW_THRESHOLD` can be
set where the graph starts to pay.

Vectors: the first ``n`` records of ``benchmarks/scale/real_corpus.py``
encoded with the static encoder (64 dimensions). ``--dims 384`` maps the same
vectors into 384 dimensions with a seeded matrix of orthonormal columns, which
keeps every inner product (hence the neighbours and the recall the graph
reaches) and gives the distance computations MiniLM's width. Prints one JSON
line per measurement, with the load average, and the whole object at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

from real_corpus import real_corpus  # noqa: E402

from synthfilter.encoders import get_encoder  # noqa: E402
from synthfilter.knn_index import build_index, exact_neighbours, search_index  # noqa: E402


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def lifted(x: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """``x`` mapped into ``dim`` dimensions by orthonormal columns (inner products kept)."""
    if dim == x.shape[1]:
        return x
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, x.shape[1])))
    return np.ascontiguousarray(x @ q.T.astype(np.float32))


def measure(x: np.ndarray, k: int) -> dict:
    """CPU seconds of the HNSW build (with its ``efSearch`` choice) and search of every row, and of exact search."""
    ids = np.arange(x.shape[0])
    start = time.process_time()
    index, report = build_index(x, k, kind="hnsw")
    built = time.process_time() - start
    start = time.process_time()
    search_index(index, x, k, query_ids=ids)
    searched = time.process_time() - start
    del index
    start = time.process_time()
    exact_neighbours(x, x, k, query_ids=ids)
    exact = time.process_time() - start
    return {"hnsw_build_cpu_s": round(built, 2), "hnsw_search_cpu_s": round(searched, 2),
            "hnsw_cpu_s": round(built + searched, 2), "ef_search": report.ef_search,
            "hnsw_recall_at_k_sample": round(report.recall_at_k, 4), "exact_cpu_s": round(exact, 2),
            "exact_over_hnsw": round(exact / (built + searched), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 150_000, 200_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 384])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    faiss.omp_set_num_threads(1)
    texts = real_corpus(max(args.sizes))["text"].to_list()
    base = np.ascontiguousarray(get_encoder("static").encode(texts), dtype=np.float32)
    out: dict = {"machine": {"cpus": os.cpu_count(), "faiss": faiss.__version__, "threads": 1}, "runs": []}
    for dim in args.dims:
        vectors = lifted(base, dim)
        for n in args.sizes:
            row = {"dim": dim, "n": n, **measure(vectors[:n], args.k), "load_avg": _load()}
            out["runs"].append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
