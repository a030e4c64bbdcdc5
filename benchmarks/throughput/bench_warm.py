"""Warm re-runs and start-up of ``synthfilter score --encoder static``, in one run.

    python benchmarks/throughput/bench_warm.py                  # 20,000 real paragraphs
    python benchmarks/throughput/bench_warm.py --n 100000       # the full figure
    python benchmarks/throughput/bench_warm.py --baseline OTHER_CHECKOUT   # start-up, old vs new

Each figure is a real ``synthfilter score`` process on real ShareGPT
paragraphs, timed from process start to exit (the scores file is written at
the end, so this is also the time to the first record):

* ``cold``: an empty cache folder;
* ``warm``: the same corpus again (embeddings and detector scores cached);
* ``new_5pct``: the corpus with 5 % of its records replaced by new ones.

Ratios are cold / warm and cold / new_5pct. Warm runs still pay the global
stages (the FAISS index, the near-duplicate pass), so the manifest's
per-stage ``timings_s`` are reported beside each run. Start-up is the same
command on a 20-record corpus: first with an empty cache (the encoder and
model are hashed, the encoder table loaded), then warm (median of
``--repeats``); with ``--baseline`` the same figures for another checkout's
code (``PYTHONPATH`` set to it), measured in the same run. ``os.getloadavg()``
is printed beside every figure: on a shared machine the load changes them.
Prints one JSON object (and writes it to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from synthfilter.cli import run; run()"]


def _run_score(corpus: Path, out: Path, cache: Path, code_root: Path) -> dict:
    env = dict(os.environ, SYNTHFILTER_CACHE=str(cache), PYTHONPATH=str(code_root))
    env.pop("SYNTHFILTER_MODEL", None)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([*CLI, "score", str(corpus), "--encoder", "static", "--quiet", "-o", str(out)],
                          capture_output=True, text=True, env=env, cwd=code_root)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"score failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    manifest = json.loads(out.with_name(out.name.removesuffix(".parquet") + ".manifest.json").read_text())
    return {"seconds": round(seconds, 2), "timings_s": manifest.get("timings_s"),
            "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def _startup(tmp: Path, corpus: Path, code_root: Path, repeats: int, tag: str) -> dict:
    cache = tmp / f"startup-cache-{tag}"
    cold = _run_score(corpus, tmp / f"startup-{tag}-cold.parquet", cache, code_root)
    warm = [_run_score(corpus, tmp / f"startup-{tag}-{i}.parquet", cache, code_root) for i in range(repeats)]
    return {"cold_cache_s": cold["seconds"], "warm_cache_s_median": statistics.median(w["seconds"] for w in warm),
            "warm_cache_s": [w["seconds"] for w in warm], "load_avg_1min": [w["load_avg_1min"] for w in warm]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="Records in the corpus.")
    ap.add_argument("--new-fraction", type=float, default=0.05, help="Share of records replaced for the third run.")
    ap.add_argument("--repeats", type=int, default=3, help="Warm start-up runs (median reported).")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="Root of another checkout of synthfilter: its start-up is measured too, for the ratio.")
    ap.add_argument("--skip-corpus", action="store_true", help="Measure start-up only.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = ap.parse_args()

    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
                    "command": "synthfilter score CORPUS --encoder static --quiet"}
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp_name:
        tmp = Path(tmp_name)
        texts = pl.read_parquet(ROOT / "models" / "origin-v3" / "heldout_test.parquet")["text"].to_list()
        tiny = tmp / "tiny.parquet"
        pl.DataFrame({"id": [f"t{i}" for i in range(20)], "text": texts[:20]}).write_parquet(tiny)
        startup = {"new": _startup(tmp, tiny, ROOT, args.repeats, "new")}
        if args.baseline is not None:
            startup["baseline"] = _startup(tmp, tiny, args.baseline.resolve(), args.repeats, "baseline")
            for key in ("cold_cache_s", "warm_cache_s_median"):
                startup[f"ratio_{key}_baseline_over_new"] = round(startup["baseline"][key] / startup["new"][key], 2)
        result["startup_20_records"] = startup

        if not args.skip_corpus:
            from synthfilter.data.sharegpt import load_sharegpt

            pool = load_sharegpt().unique("text", keep="first", maintain_order=True)
            pool = pool.sample(fraction=1.0, shuffle=True, seed=args.seed)
            n_new = int(round(args.n * args.new_fraction))
            if pool.height < args.n + n_new:
                raise SystemExit(f"only {pool.height} distinct paragraphs; lower --n")
            base = pool.head(args.n).select("id", "text")
            corpus = tmp / "corpus.parquet"
            base.write_parquet(corpus)
            changed = tmp / "corpus_new.parquet"
            replaced = pool.slice(args.n, n_new).select("id", "text")
            pl.concat([base.head(args.n - n_new), replaced]).write_parquet(changed)
            cache = tmp / "cache"
            runs = {"cold": _run_score(corpus, tmp / "cold.parquet", cache, ROOT),
                    "warm": _run_score(corpus, tmp / "warm.parquet", cache, ROOT),
                    "new_5pct": _run_score(changed, tmp / "new.parquet", cache, ROOT)}
            same = pl.read_parquet(tmp / "cold.parquet").equals(pl.read_parquet(tmp / "warm.parquet"))
            result["corpus"] = {
                "n": args.n, "new_records": n_new, "runs": runs, "warm_output_identical_to_cold": same,
                "ratio_cold_over_warm": round(runs["cold"]["seconds"] / runs["warm"]["seconds"], 2),
                "ratio_cold_over_new_5pct": round(runs["cold"]["seconds"] / runs["new_5pct"]["seconds"], 2),
                "targets": {"cold_over_warm": 10, "cold_over_new_5pct": 5},
            }
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
