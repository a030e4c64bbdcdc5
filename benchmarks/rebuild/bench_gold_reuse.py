"""``synthfilter rebuild --gold`` on a large scored corpus: this checkout against another, same run.

    python benchmarks/rebuild/bench_gold_reuse.py --n 100000 --gold 2000 --baseline /path/to/old/checkout

Builds ``n`` real candidate records and a disjoint gold set of ``--gold``
records (``benchmarks/scale/real_corpus.py``), plants copies of gold among the
candidates (1 % of gold copied exactly, 1 % lightly edited), scores the
candidates once with ``synthfilter score --encoder static`` (cached under
``~/.cache/synthfilter/bench/gold_reuse``), then times
``synthfilter rebuild scores --gold gold --encoder static`` with this
checkout's code and, when ``--baseline`` names another checkout (the code
before the change), with that one, one after the other, and compares their
decisions row by row. The embedding cache is shared and warm (scoring filled
it), as it is when a corpus is rebuilt after ``synthfilter score``. Prints one
JSON object with the wall and CPU seconds (user + system of the rebuild
process: the fair measure on a shared, loaded machine), the ratio, the manifest's stage timings, the
load average and whether the decisions are identical.
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

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

from real_corpus import cache_dir, real_corpus  # noqa: E402


def _edit(text: str) -> str:
    words = text.split(" ")
    if len(words) > 4:
        words[len(words) // 2] = words[len(words) // 2].upper()
    return " ".join(words) + " ."


def inputs(n: int, n_gold: int, folder: Path) -> tuple[Path, Path]:
    """Scored candidates and gold on disk (built and scored once)."""
    folder.mkdir(parents=True, exist_ok=True)
    cand_path, gold_path, scores = folder / "candidates.parquet", folder / "gold.parquet", folder / "candidates.scores.parquet"
    if not scores.exists():
        pool = real_corpus(n + n_gold).select("id", "text")
        cands, gold = pool.head(n), pool.tail(n_gold)
        g = gold.get_column("text").to_list()
        planted = [g[i] for i in range(0, n_gold, 100)] + [_edit(g[i]) for i in range(50, n_gold, 100)]
        texts = cands.get_column("text").to_list()
        texts[-len(planted):] = planted
        cands = cands.with_columns(text=pl.Series(texts))
        cands.write_parquet(cand_path)
        gold.write_parquet(gold_path)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from synthfilter.cli import run; run()", "score", str(cand_path),
                        "--encoder", "static", "--keep", "text", "--quiet"], check=True, cwd=str(ROOT),
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        print(json.dumps({"scored": n, "seconds": round(time.perf_counter() - start, 1)}), file=sys.stderr)
    return scores, gold_path


def timed_rebuild(code: Path, scores: Path, gold: Path, out: Path, timeout: float, extra: list[str] | None = None) -> dict:
    """Run ``synthfilter rebuild`` with the code of checkout ``code``; seconds and the manifest's timings.

    The process runs in ``code`` (``python -c`` puts the working folder first on
    ``sys.path``), so it imports that checkout's ``synthfilter``.
    """
    out.mkdir(parents=True, exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    env = {**os.environ, "PYTHONPATH": str(code)}
    imported = subprocess.run([sys.executable, "-c", "import synthfilter; print(synthfilter.__file__)"], cwd=str(code),
                              env=env, capture_output=True, text=True, check=True).stdout.strip()
    load = os.getloadavg()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", "from synthfilter.cli import run; run()", "rebuild", str(scores),
                        "--gold", str(gold), "--encoder", "static", "-o", str(out / "train.parquet"), "--quiet", *(extra or [])],
                       check=True, timeout=timeout, cwd=str(code), env=env)
    except subprocess.TimeoutExpired:
        return {"code": str(code), "imported": imported, "timed_out_after_s": timeout, "load_avg_before": load}
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    manifest = json.loads((out / "train.manifest.json").read_text()) if (out / "train.manifest.json").exists() else {}
    timings = manifest.get("timings_s") or manifest.get("info", {}).get("timings_s")
    tails = manifest.get("tails") or manifest.get("info", {}).get("tails") or {}
    return {"code": str(code), "imported": imported, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
            "stage_timings_s": timings, "joint_stage_seconds": tails.get("timings_s"),
            "load_avg_before": [round(v, 2) for v in load], "load_avg_after": [round(v, 2) for v in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--gold", type=int, default=2_000)
    ap.add_argument("--baseline", type=Path, help="checkout of the code to compare with")
    ap.add_argument("--baseline-timeout", type=float, default=1800)
    args = ap.parse_args()
    folder = cache_dir() / "gold_reuse" / f"n{args.n}_g{args.gold}"
    scores, gold = inputs(args.n, args.gold, folder)
    result = {"n": args.n, "gold": args.gold, "cpus": os.cpu_count()}
    result["new"] = timed_rebuild(ROOT, scores, gold, folder / "new", 3600)
    if args.baseline:
        result["old"] = timed_rebuild(args.baseline, scores, gold, folder / "old", args.baseline_timeout)
        if "seconds" in result["old"]:
            result["speedup_wall"] = round(result["old"]["seconds"] / result["new"]["seconds"], 2)
            result["speedup_cpu"] = round(result["old"]["cpu_seconds"] / result["new"]["cpu_seconds"], 2)
            cols = ["input", "row", "id", "kept", "reason", "dup_cluster"]
            new = pl.read_parquet(folder / "new" / "train.decisions.parquet").select(cols)
            old = pl.read_parquet(folder / "old" / "train.decisions.parquet").select(cols)
            result["decisions_identical"] = new.drop("dup_cluster").equals(old.drop("dup_cluster"))
            result["clusters_identical"] = new.get_column("dup_cluster").equals(old.get_column("dup_cluster"))
            result["decisions_differing"] = int((new.get_column("reason") != old.get_column("reason")).sum())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
