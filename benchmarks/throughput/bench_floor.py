"""The CPU time each part of a cold ``score --encoder static`` needs, against the "within 3x" target.

    python benchmarks/throughput/bench_floor.py                 # 100,000 records
    python benchmarks/throughput/bench_floor.py --n 30000

Issue #14 asks a cold ``score --encoder static`` to finish within 3x the time
of the bare static ``encode`` call on the same texts. On a machine with
``cores`` cores no schedule can finish before (CPU seconds of the work) /
``cores``, so this script measures, in one process and one run, the CPU
seconds of the parts that every cold run has to do, each on one thread
(the bare encode on the tokenizer's own threads, as ``score`` runs it):

- the bare static ``encode`` call (wall and CPU);
- the shipped origin detector's ``decision_function`` given those embeddings;
- the text sketches (normalised-text keys and MinHash LSH band keys);
- the k-nearest-neighbour lists of every record: an HNSW graph built and
  searched as ``score`` does (``efSearch`` chosen for recall@k >= 0.95), and
  the exact search (a flat index) for comparison; the cheaper one counts.

It then prints the lower bound on the wall time, the sum over ``cores``,
as a multiple of the bare encode's wall time. Start-up, reading, writing,
the caches, the share estimate and the near-duplicate clustering are left
out, so the bound is below what any run can reach. Prints one JSON object,
with the load average beside each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["SYNTHFILTER_THREADS"] = "1"  # the detector on one thread: its CPU seconds, not its overlap

import faiss  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

from real_corpus import real_corpus  # noqa: E402

from synthfilter.encoders import get_encoder  # noqa: E402
from synthfilter.knn_index import build_index, exact_neighbours, search_index  # noqa: E402
from synthfilter.origin import load_model  # noqa: E402
from synthfilter.stages import textdup  # noqa: E402


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``fn()`` with its wall and process CPU seconds (every thread of the process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
                   "load_avg": _load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="records (real text, benchmarks/scale/real_corpus.py)")
    ap.add_argument("--k", type=int, default=10, help="neighbours, as score's default")
    ap.add_argument("--cores", type=int, default=2, help="cores the bound divides by")
    args = ap.parse_args()

    texts = real_corpus(args.n)["text"].to_list()
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                           "records": len(texts), "cores": args.cores}

    encoder = get_encoder("static", cache=False)
    encoder.encode(texts[:64])  # the table is loaded before the clock starts, as in bench_score.py
    x, out["bare_encode"] = timed(lambda: np.ascontiguousarray(encoder.encode(texts), dtype=np.float32))

    model = load_model("default")
    model.decision_function(texts[:64], embeddings=x[:64])  # loads what the detector loads lazily
    _, out["detector"] = timed(lambda: model.decision_function(texts, embeddings=x))
    out["detector"]["model"] = getattr(model, "model_id_", None) or getattr(model, "content_hash_", None)

    _, out["sketches"] = timed(lambda: (textdup.norm_keys(texts), textdup.band_keys_of(texts, 0.8)))

    faiss.omp_set_num_threads(1)
    ids = np.arange(len(x))

    def hnsw() -> dict[str, Any]:
        index, report = build_index(x, args.k, kind="hnsw")
        search_index(index, x, args.k, query_ids=ids)
        return {"ef_search": report.ef_search, "recall_at_k_sample": round(report.recall_at_k, 4)}

    info, out["knn_hnsw"] = timed(hnsw)
    out["knn_hnsw"].update(info)
    _, out["knn_exact"] = timed(lambda: exact_neighbours(x, x, args.k, query_ids=ids))

    needed = {
        "bare_encode": out["bare_encode"]["cpu_s"],
        "detector": out["detector"]["cpu_s"],
        "sketches": out["sketches"]["cpu_s"],
        "knn": min(out["knn_hnsw"]["cpu_s"], out["knn_exact"]["cpu_s"]),
    }
    total = sum(needed.values())
    bound = total / args.cores
    bare_wall = out["bare_encode"]["wall_s"]
    out["floor"] = {
        "cpu_s_by_part": needed, "cpu_s_total": round(total, 2),
        "wall_s_lower_bound": round(bound, 2),
        "lower_bound_ratio_to_bare_encode": round(bound / bare_wall, 2),
        "target_ratio": 3.0, "target_wall_s": round(3 * bare_wall, 2),
        "load_avg": _load(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
