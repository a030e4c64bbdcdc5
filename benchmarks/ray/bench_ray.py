"""Ray engine: 1 vs 2 workers on this machine, the per-worker rate, and the driver's memory at 1M records.

Part 1 (``--part workers``) scores the shipped model's held-out paragraphs,
cut into 4 shards, on a local Ray cluster (``num_cpus=2``) with the static
encoder and the shipped detector, once with a pool of 1 actor and once with 2,
and prints the wall time of the per-record stages of each, their ratio, the
per-worker rate and the load average beside them (the ratio is only as good
as the machine is quiet).

Part 2 (``--part driver``) measures what the driver holds for the global
stages at 1M records: it does not run the per-record stages at 1M; it takes
the real static embeddings and MinHash band keys of the held-out paragraphs
and tiles them to 1M records (each copy's vectors moved by small noise and
re-normalised, each copy's band keys salted so that copies do not collide,
which keeps the real near-duplicate structure within each copy), then runs
the tail stage (k-NN index, rarity, clusters with the pair checks) in a fresh
process and reports its peak resident memory and wall time.

Part 3 (``--part sharded``) runs the same tail stage on Ray as ``score
--engine ray`` now runs it: the tiled columns are made by Ray tasks and stay
in the object store, the k-NN and the band-key group-by run shard by shard
(:mod:`synthfilter.stages.sharded`), and the driver's peak resident memory is
reported with the columns it had to gather (none of the wide ones).

Part 4 (``--part gold``) times ``rebuild --gold`` on both engines (the
held-out split scored on Ray in 4 shards, 600 gold texts of which 150 are
exact copies of candidates) and checks that the decisions are equal.

Usage::

    python benchmarks/ray/bench_ray.py --part workers --records 2000
    python benchmarks/ray/bench_ray.py --part driver --records 1000000
    python benchmarks/ray/bench_ray.py --part sharded --records 200000 --shards 8 --nlist 1024 --nprobe 8
    python benchmarks/ray/bench_ray.py --part gold --shards 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
SPLIT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def workers_part(records: int, shards: int) -> dict:
    """Score ``records`` held-out paragraphs in ``shards`` shards with 1 and then 2 Ray workers."""
    import ray

    from synthfilter.engine.ray import RayEngine
    from synthfilter.stages import EncodeStage, OriginRecordStage, SketchStage
    from synthfilter.encoders import get_encoder
    from synthfilter.shards import ShardSource

    corpus = pl.read_parquet(SPLIT).select("id", "text").head(records)
    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    for i, part in enumerate(np.array_split(np.arange(corpus.height), shards)):
        corpus[part.tolist()].write_parquet(folder / f"shard-{i}.parquet")
    # Ray starts its workers at nice 15; on a machine shared with other jobs that measures the
    # other jobs, not the engine: run them at the driver's priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=400 * 2**20)
    enc = get_encoder("static", cache=False)
    out = {"records": corpus.height, "shards": shards, "runs": []}
    try:
        for workers in (1, 2, 1, 2):  # twice each, interleaved, so that a change in load hits both
            stages = [EncodeStage(enc), OriginRecordStage(corpus_encoder_id=enc.id), SketchStage(0.8)]
            engine = RayEngine(num_workers=workers)
            before = os.getloadavg()
            start = time.perf_counter()
            recs = engine.map_records(ShardSource.of(folder), stages)
            wall = time.perf_counter() - start
            assert recs.frame.height == corpus.height
            run = {"workers": workers, "wall_s": round(wall, 2), "records_per_s": round(corpus.height / wall, 1),
                   "per_worker_records_per_s": round(corpus.height / wall / workers, 1),
                   "load_before": [round(x, 2) for x in before], "load_after": [round(x, 2) for x in os.getloadavg()]}
            print(json.dumps(run), "|", _load(), flush=True)
            out["runs"].append(run)
    finally:
        ray.shutdown()
    one = min(r["wall_s"] for r in out["runs"] if r["workers"] == 1)
    two = min(r["wall_s"] for r in out["runs"] if r["workers"] == 2)
    out["speedup_2_vs_1"] = round(one / two, 3)
    out["per_worker_records_per_s_1"] = round(corpus.height / one, 1)
    print(f"2 workers vs 1: {out['speedup_2_vs_1']:.2f}x (best of 2 each: {one:.1f} s vs {two:.1f} s); "
          f"one worker: {out['per_worker_records_per_s_1']:.1f} records/s | {_load()}")
    return out


def _tiled(records: int, seed: int = 0):
    from synthfilter.encoders import get_encoder
    from synthfilter.stages import textdup

    texts = pl.read_parquet(SPLIT)["text"].to_list()
    base_emb = get_encoder("static").encode(texts)
    base_keys = textdup.band_keys_of(texts, 0.8)
    base_norm = textdup.norm_keys(texts)
    copies = -(-records // len(texts))
    rng = np.random.default_rng(seed)
    emb = np.empty((copies * len(texts), base_emb.shape[1]), dtype=np.float32)
    keys = np.empty((copies * len(texts), base_keys.shape[1]), dtype=np.uint64)
    norm = np.empty((copies * len(texts), 2), dtype=np.uint64)
    for c in range(copies):
        sl = slice(c * len(texts), (c + 1) * len(texts))
        noisy = base_emb + rng.normal(0, 0.05, base_emb.shape).astype(np.float32)
        emb[sl] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        salt = np.uint64(rng.integers(1, 2**63))
        keys[sl] = np.where(base_keys == 0, base_keys, base_keys ^ salt)
        norm[sl] = base_norm ^ salt
    return texts, emb[:records], keys[:records], norm[:records]


def base_part(path: Path) -> None:
    """Write the held-out split's own static embeddings, band keys and normal-form keys to ``path``."""
    from synthfilter.encoders import get_encoder
    from synthfilter.stages import textdup

    texts = pl.read_parquet(SPLIT)["text"].to_list()
    np.savez(path, embedding=get_encoder("static").encode(texts), band_keys=textdup.band_keys_of(texts, 0.8),
             norm_key=textdup.norm_keys(texts))


def prepare_part(records: int, path: Path) -> None:
    """Write the tiled per-record columns (what the workers would hand the driver) to ``path``."""
    _, emb, keys, norm = _tiled(records)
    np.savez(path, embedding=emb, band_keys=keys, norm_key=norm)


def driver_part(records: int, nlist: int, nprobe: int, inputs: Path) -> dict:
    """Peak memory and time of the tail stage on tiled records, in a process that only loads them."""
    from synthfilter.engine.base import GlobalContext
    from synthfilter.engine.local import LocalRecordSet
    from synthfilter.stages import TailGlobalStage

    texts = pl.read_parquet(SPLIT)["text"].to_list()
    with np.load(inputs) as data:
        emb, keys, norm = data["embedding"], data["band_keys"], data["norm_key"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    inputs_mb = (emb.nbytes + keys.nbytes + norm.nbytes) / 2**20
    records_set = LocalRecordSet({"embedding": emb, "band_keys": keys, "norm_key": norm},
                                 pl.DataFrame({"id": np.arange(records)}), _Cycle(texts, records))
    ctx = GlobalContext(seed=0)
    stage = TailGlobalStage(index="ivf", nlist=nlist, nprobe=nprobe)
    start = time.perf_counter()
    out = stage.run(records_set, ctx)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    clusters = out["dup_cluster"]
    result = {"records": records, "dim": int(emb.shape[1]), "bands": int(keys.shape[1]), "nlist": nlist,
              "nprobe": nprobe, "inputs_mib": round(inputs_mb, 1), "rss_before_stage_mib": round(before, 1),
              "peak_rss_mib": round(peak, 1), "tail_stage_s": round(wall, 1),
              "recall_at_k": ctx.info["tails"]["index"]["recall_at_k"],
              "near_duplicates": int(out["is_near_duplicate"].sum()),
              "clusters_with_2_or_more": int((np.bincount(clusters) > 1).sum()), "load": list(os.getloadavg())}
    print(json.dumps(result), "|", _load(), flush=True)
    return result


def _tile_batch(batch: dict, *, base_emb: np.ndarray, base_keys: np.ndarray, base_norm: np.ndarray,
                texts: list, per_shard: int, seed: int = 0) -> dict:
    """On a worker: tiled records ``batch["id"]`` (copy ``id // len(texts)`` of the split, its own noise and salt)."""
    ids = np.asarray(batch["id"], dtype=np.int64)
    n_base = len(texts)
    emb = np.empty((ids.size, base_emb.shape[1]), dtype=np.float32)
    keys = np.empty((ids.size, base_keys.shape[1]), dtype=np.uint64)
    norm = np.empty((ids.size, 2), dtype=np.uint64)
    copy, at = ids // n_base, ids % n_base
    for c in np.unique(copy):
        rng = np.random.default_rng([seed, int(c)])
        noise = rng.normal(0, 0.05, base_emb.shape).astype(np.float32)
        salt = np.uint64(rng.integers(1, 2**63))
        sel = copy == c
        rows = base_emb[at[sel]] + noise[at[sel]]
        emb[sel] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        keys[sel] = np.where(base_keys[at[sel]] == 0, base_keys[at[sel]], base_keys[at[sel]] ^ salt)
        norm[sel] = base_norm[at[sel]] ^ salt
    return {"id": ids, "text": np.asarray([texts[i] for i in at], dtype=object), "shard": ids // per_shard,
            "row": ids % per_shard, "embedding": emb, "band_keys": keys, "norm_key": norm}


def sharded_part(records: int, shards: int, nlist: int, nprobe: int, inputs: Path) -> dict:
    """Driver memory and time of the tail stage on Ray, the columns made and kept on the workers.

    The same tiled records as :func:`driver_part`, but generated by Ray tasks
    into the object store (the driver never holds them); the driver holds
    only ``id``, ``shard`` and ``row`` (as after ``map_records``) and runs
    the tail stage through :class:`~synthfilter.engine.ray.RayRecordSet`.
    """
    import ray

    from synthfilter.engine.base import GlobalContext
    from synthfilter.engine.ray import RayEngine, RayRecordSet
    from synthfilter.stages import TailGlobalStage

    texts = pl.read_parquet(SPLIT)["text"].to_list()
    with np.load(inputs) as data:  # the split's own columns, made by another process (no encoder here)
        base = {"base_emb": data["embedding"], "base_keys": data["band_keys"], "base_norm": data["norm_key"],
                "texts": texts}
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=2 * 2**30)
    try:
        engine = RayEngine()
        engine.connect()
        per_shard = -(-records // shards)
        start = time.perf_counter()
        ds = ray.data.range(records, override_num_blocks=max(shards, records // 4096)).rename_columns(
            {"id": "id"}).map_batches(_tile_batch, fn_kwargs={**base, "per_shard": per_shard}, batch_size=4096,
                                      batch_format="numpy", num_cpus=0.5).materialize()
        made = time.perf_counter() - start
        ids = np.arange(records, dtype=np.int64)
        frame = pl.DataFrame({"id": ids, "shard": ids // per_shard, "row": ids % per_shard})
        del base
        records_set = RayRecordSet(engine, ds, {}, frame, remote=("embedding", "band_keys", "norm_key"))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        current = _rss_mib()
        ctx = GlobalContext(seed=0)
        stage = TailGlobalStage(index="ivf", nlist=nlist, nprobe=nprobe)
        start = time.perf_counter()
        out = stage.run(records_set, ctx)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gathered = sorted(dict.keys(records_set.columns))
    finally:
        ray.shutdown()
    clusters = out["dup_cluster"]
    result = {"records": records, "input_shards": shards, "searched_shards": ctx.info["tails"]["sharded"]["shards"],
              "nlist": nlist, "nprobe": nprobe, "columns_made_on_workers_s": round(made, 1),
              "driver_peak_rss_before_stage_mib": round(before, 1), "driver_rss_at_stage_start_mib": round(current, 1),
              "driver_peak_rss_mib": round(peak, 1),
              "tail_stage_s": round(wall, 1), "recall_at_k": ctx.info["tails"]["index"]["recall_at_k"],
              "columns_gathered_on_driver": gathered,
              "near_duplicates": int(out["is_near_duplicate"].sum()),
              "clusters_with_2_or_more": int((np.bincount(clusters) > 1).sum()), "load": list(os.getloadavg())}
    print(json.dumps(result), "|", _load(), flush=True)
    return result


def gold_part(shards: int) -> dict:
    """``rebuild --gold`` on both engines: the held-out split scored on Ray, 600 gold texts (150 exact copies)."""
    import ray

    from synthfilter.rebuild import RebuildPolicy, rebuild
    from synthfilter.rebuild.distributed import rebuild_sharded
    from synthfilter.scoring import score_with_report
    from synthfilter.shards import read_sharded

    corpus = pl.read_parquet(SPLIT).select("id", "text")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-gold-"))
    (tmp / "shards").mkdir()
    for i, part in enumerate(np.array_split(np.arange(corpus.height), shards)):
        corpus[part.tolist()].write_parquet(tmp / "shards" / f"shard-{i}.parquet")
    texts = corpus["text"].to_list()
    picks = np.random.default_rng(7).choice(len(texts), 600, replace=False)
    gold = pl.DataFrame({"id": [f"gold-{n}" for n in range(600)],
                         "text": [texts[i] if n < 150 else " ".join(reversed(texts[i].split()))
                                  for n, i in enumerate(picks.tolist())]})
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=400 * 2**20)
    try:
        table = score_with_report(tmp / "shards", encoder="static", engine="ray", keep_columns=["text"]).table
        scores = tmp / "scores"
        scores.mkdir()
        for s in sorted(set(table["shard"].to_list())):
            table.filter(pl.col("shard") == s).drop("shard").write_parquet(scores / f"part-{s:05d}.parquet")
        policy = RebuildPolicy(max_synthetic=0.1, seed=0)
        start = time.perf_counter()
        local = rebuild(read_sharded(scores), gold, policy, encoder="static", candidate_names=[str(scores)],
                        gold_names=["<gold>"])
        local_s, load_local = time.perf_counter() - start, os.getloadavg()
        start = time.perf_counter()
        remote = rebuild_sharded(scores, tmp / "train", policy, gold=[gold], gold_names=["<gold>"], encoder="static")
        ray_s, load_ray = time.perf_counter() - start, os.getloadavg()
    finally:
        ray.shutdown()
    result = {"candidates": corpus.height, "shards": shards, "gold": gold.height, "local_s": round(local_s, 1),
              "local_timings_s": local.info["timings_s"], "load_after_local": [round(x, 2) for x in load_local],
              "ray_s": round(ray_s, 1), "ray_timings_s": remote.info["timings_s"],
              "load_after_ray": [round(x, 2) for x in load_ray],
              "same_decisions": bool(remote.decisions.equals(local.decisions))}
    print(json.dumps(result), "|", _load(), flush=True)
    return result


def _rss_mib() -> float:
    """Resident memory of this process now (Linux), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Cycle:
    """The texts of copy ``c`` of a tiled corpus: record ``i`` is text ``i % len(texts)``."""

    def __init__(self, texts, n):
        self.texts, self.n = texts, n

    def __getitem__(self, i):
        return self.texts[int(i) % len(self.texts)]

    def __len__(self):
        return self.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["workers", "driver", "sharded", "gold", "both", "prepare", "measure",
                                           "base"],
                        default="both")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--inputs", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    results = {}
    if args.part in ("workers", "both"):
        results["workers"] = workers_part(args.records or 2000, args.shards)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.part == "sharded":
        records = args.records or 200_000
        if args.inputs is None:  # the split's columns made in another process, so no encoder is in this one
            with tempfile.TemporaryDirectory() as tmp:
                inputs = Path(tmp) / "split.npz"
                subprocess.run([sys.executable, __file__, "--part", "base", "--inputs", str(inputs)], check=True)
                results["sharded"] = sharded_part(records, args.shards, args.nlist, args.nprobe, inputs)
        else:
            results["sharded"] = sharded_part(records, args.shards, args.nlist, args.nprobe, args.inputs)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        return
    if args.part == "gold":
        results["gold"] = gold_part(args.shards)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        return
    if args.part == "base":
        base_part(args.inputs)
        return
    if args.part == "prepare":
        prepare_part(args.records, args.inputs)
    elif args.part == "measure":
        results["driver"] = driver_part(args.records, args.nlist, args.nprobe, args.inputs)
    elif args.part in ("driver", "both"):
        # Two fresh processes: one makes the inputs (loads the encoder), one only loads them and runs
        # the global stage, so that its peak memory is the global stage's own.
        records = args.records if args.part == "driver" and args.records else 1_000_000
        with tempfile.TemporaryDirectory() as tmp:
            inputs = Path(tmp) / "columns.npz"
            base = [sys.executable, __file__, "--records", str(records), "--inputs", str(inputs)]
            subprocess.run(base + ["--part", "prepare"], check=True)
            subprocess.run(base + ["--part", "measure", "--nlist", str(args.nlist), "--nprobe", str(args.nprobe)]
                           + (["--out", str(args.out.with_suffix(".driver.json"))] if args.out else []),
                           check=True)
        return
    if args.out and args.part == "measure":
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
