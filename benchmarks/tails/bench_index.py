"""Speed, recall and memory of the k-NN tail index (``TailScorer.fit``) at scale.

    python benchmarks/tails/bench_index.py --runs static:100000 static:300000 gauss64:100000 \\
        --out benchmarks/tails/results/index.json

Each run is one child process (so its peak RSS is its own) that builds the
index over ``n`` vectors and searches every vector's ``k = 10`` neighbours,
itself excluded: exactly what ``TailScorer.fit`` does for a corpus scored
against itself. Kinds of vectors:

``static``
    Real text: the first ``n`` records of ``benchmarks/scale/real_corpus.py``
    encoded with the static (model2vec, 64-d) encoder; embeddings cached under
    ``~/.cache/synthfilter/bench``.
``minilm``
    The same records encoded with MiniLM (384-d), for ``n`` that can be
    encoded here (about 50 records/s on 2 cores); the IVF index is forced
    (``index="ivf"``) so that its recall on real 384-d vectors is measured
    even below the 50,000 threshold.
``gauss64``, ``gauss384``
    Seeded standard Gaussian vectors: structureless, the worst case for any
    partitioning index (every cell is about as near as any other).

Reported per run: wall and CPU seconds (user + system; the fairer measure
on a shared machine) for the whole ``fit`` (train, fill, choose
``nprobe``, search all), the index report (``nlist``, ``nprobe``, the recall
measured while choosing it), an independent recall@10 of the full search
against brute force on 1,000 other seeded queries, the baseline (brute-force
search of those 1,000 queries, extrapolated to all ``n``: the ratio is the
speed-up over exact search in the same run), peak RSS (MiB) and the load
average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

from real_corpus import cache_dir, real_corpus  # noqa: E402

from synthfilter.knn_index import exact_neighbours, recall_at_k  # noqa: E402
from synthfilter.tails import TailScorer  # noqa: E402

CHECK_QUERIES = 1_000
CHECK_SEED = 12345


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def real_embeddings(encoder: str, n: int) -> np.ndarray:
    """The first ``n`` real records' embeddings, cached as ``.npy`` (encoded in blocks, no SQLite cache)."""
    from synthfilter.encoders import get_encoder

    path = cache_dir() / f"real_{encoder}_{n}.npy"
    if path.exists():
        return np.load(path)
    bigger = sorted(cache_dir().glob(f"real_{encoder}_*.npy"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    for cand in bigger:
        if int(cand.stem.rsplit("_", 1)[1]) >= n:
            return np.load(cand, mmap_mode="r")[:n].copy()
    texts = real_corpus(n).get_column("text").to_list()
    enc = get_encoder(encoder, cache=False)
    blocks = [enc.encode(texts[i : i + 50_000], batch_size=256 if encoder == "static" else 32)
              for i in range(0, n, 50_000)]
    x = np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), x)
    path.with_suffix(".tmp.npy").replace(path)
    return x


def vectors(kind: str, n: int) -> np.ndarray:
    if kind in ("static", "minilm"):
        return real_embeddings(kind, n)
    if kind in ("gauss64", "gauss384"):
        dim = int(kind[5:])
        return np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    raise SystemExit(f"unknown kind {kind!r}")


def one_run(kind: str, n: int) -> dict:
    load_before = os.getloadavg()
    x = vectors(kind, n)
    rss_vectors = _rss_mib()
    scorer = TailScorer(k=10, index="ivf" if kind == "minilm" else "auto", seed=0)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    scorer.fit(x)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    rss_fit = _rss_mib()
    xn = scorer.reference_
    sims_all, _ = scorer._reference_graph
    # Independent check: other seeded queries, the full search's results against brute force.
    rng = np.random.default_rng(CHECK_SEED)
    m = min(CHECK_QUERIES, n)
    q = np.sort(rng.choice(n, size=m, replace=False))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    exact_sims, _ = exact_neighbours(xn[q], xn, 10, query_ids=q)
    exact_seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    exact_cpu = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    exact_all = exact_seconds * n / m
    report = scorer.index_report_.to_dict()
    return {
        "kind": kind, "n": n, "dim": int(x.shape[1]),
        "fit_seconds": round(seconds, 2),
        "fit_cpu_seconds": round(cpu_seconds, 2),
        "records_per_s": round(n / seconds, 1),
        "index": report,
        "recall_at_10_check": round(recall_at_k(sims_all[q], exact_sims), 4),
        "check_queries": m,
        "exact_seconds_extrapolated": round(exact_all, 1),
        "speedup_vs_exact": round(exact_all / seconds, 2),
        "exact_cpu_seconds_extrapolated": round(exact_cpu * n / m, 1),
        "speedup_vs_exact_cpu": round(exact_cpu * n / m / cpu_seconds, 2) if cpu_seconds else None,
        "peak_rss_mib_vectors_loaded": round(rss_vectors, 1),
        "peak_rss_mib": round(max(rss_fit, _rss_mib()), 1),
        "vectors_mib": round(x.nbytes / 2**20, 1),
        "load_avg_before": [round(v, 2) for v in load_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["static:100000"], help="kind:n, e.g. static:1000000 gauss384:1000000")
    ap.add_argument("--out", type=Path, help="write the JSON here as well")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, n = args.one.split(":")
        print(json.dumps(one_run(kind, int(n))))
        return
    results = []
    for run in args.runs:
        proc = subprocess.run([sys.executable, __file__, "--one", run], capture_output=True, text=True)
        if proc.returncode != 0:
            results.append({"run": run, "error": proc.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    out = {"cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"), "runs": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
