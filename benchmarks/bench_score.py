"""Throughput of the score pipeline's parts on this machine.

    python benchmarks/bench_score.py --encode-n 2000 --search-n 20000 100000

Encoding: real held-out-style paragraphs (ShareGPT turns, 200-600 characters)
through each packaged encoder, no cache. Search: FAISS k-NN (k=10) over real
paragraph embeddings from the static encoder, exact (flat) and IVF, with IVF
recall@10 against exact search (the duplicate graph includes the shingle
near-duplicate pass, also timed on its own). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from synthfilter.data.sharegpt import load_sharegpt
from synthfilter.encoders import get_encoder
from synthfilter.neardup import near_duplicate_pairs
from synthfilter.tails import TailScorer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encode-n", type=int, default=2000)
    ap.add_argument("--search-n", type=int, nargs="+", default=[20000, 100000])
    args = ap.parse_args()
    texts = load_sharegpt()["text"].to_list()
    print(json.dumps({"available_texts": len(texts)}), flush=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_avg_at_start": os.getloadavg()}}

    sample = [texts[i] for i in order[: args.encode_n]]
    for name in ([] if args.encode_n == 0 else ["static", "minilm"]):
        enc = get_encoder(name, cache=False)
        enc.encode(sample[:32])  # warm-up
        start = time.perf_counter()
        enc.encode(sample)
        elapsed = time.perf_counter() - start
        out[f"encode_{name}"] = {"records": len(sample), "seconds": round(elapsed, 2),
                                 "records_per_s": round(len(sample) / elapsed, 1)}
        print(json.dumps(out[f"encode_{name}"]), flush=True)

    static = get_encoder("static", cache=False)
    for n in args.search_n:
        pool = [texts[i] for i in order[:n]] if n <= len(texts) else None
        if pool is None:
            continue
        x = static.encode(pool)
        start = time.perf_counter()
        rows, _ = near_duplicate_pairs(pool)
        elapsed = time.perf_counter() - start
        out[f"text_near_duplicates_{n}"] = {"records": n, "seconds": round(elapsed, 2),
                                            "records_per_s": round(n / elapsed, 1), "pairs": int(rows.size)}
        print(json.dumps(out[f"text_near_duplicates_{n}"]), flush=True)
        for kind in ("flat", "ivf"):
            if kind == "flat" and n > 50000:
                continue
            start = time.perf_counter()
            scorer = TailScorer(k=10, index=kind).fit(x)
            scorer.score(x, pool, is_reference=True)
            elapsed = time.perf_counter() - start
            rep = scorer.index_report_
            out[f"search_{kind}_{n}"] = {"records": n, "seconds": round(elapsed, 2),
                                         "records_per_s": round(n / elapsed, 1),
                                         "recall_at_10": rep.recall_at_k, "nlist": rep.nlist, "nprobe": rep.nprobe}
            print(json.dumps(out[f"search_{kind}_{n}"]), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
