"""End-to-end throughput of ``synthfilter score`` and ``rebuild --gold`` against the bare encoder.

    python benchmarks/throughput/bench_score.py                       # 10k, 30k, 100k static; 2k and 10k default; warm; rebuild
    python benchmarks/throughput/bench_score.py --sizes 10000 100000 300000 --million
    python benchmarks/throughput/bench_score.py --sizes 100000 --default-n --baseline ../old-checkout

Every figure is measured in this one run, on real records
(``benchmarks/scale/real_corpus.py``), so the ratios hold on a shared, noisy
machine; the load average is printed beside each. ``score`` runs as the user
runs it, in a fresh process (``synthfilter score ... --quiet``), with its own
empty cache folder for the cold runs, so start-up, reading and writing count.
The baseline is the bare encoder's ``encode`` call on the same texts, in this
process, without a cache. With ``--baseline``, the cold static runs and the
default-encoder pairs are also timed against another checkout's code, in
alternating order.

Prints one JSON object per measurement and a summary at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

from real_corpus import real_corpus  # noqa: E402

from synthfilter.encoders import get_encoder  # noqa: E402

CLI = [str(Path(sys.executable).with_name("synthfilter"))]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (Linux ``/proc``; 0 elsewhere)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def _check_imports(code: Path, env: dict) -> None:
    """Stop unless a process run as :func:`_run` runs it imports ``code``'s synthfilter."""
    imported = subprocess.run([sys.executable, "-c", "import synthfilter; print(synthfilter.__file__)"],
                              cwd=str(code), env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(imported).resolve().is_relative_to(Path(code).resolve()):
        raise SystemExit(f"--baseline {code}: its process imported {imported}, not that checkout's synthfilter")


def _run(args: list[str], cache: Path, code: Path | None = None) -> dict:
    """Run the CLI in a fresh process (``code``: another checkout's); wall time and peak RSS.

    ``peak_rss_mb`` is the kernel's figure for the process (its largest process, when it starts
    others); ``peak_tree_rss_mb``, the largest sum over the process and its children, sampled
    every 0.2 s.
    """
    env = {**os.environ, "SYNTHFILTER_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    command = CLI + args
    if code is not None:
        # ``python -c`` puts the working folder first on sys.path, ahead of PYTHONPATH: run in the
        # checkout itself, or this checkout's synthfilter is what gets imported.
        env["PYTHONPATH"] = str(code)
        command = [sys.executable, "-c", "import sys; from synthfilter.cli import run; sys.exit(run())", *args]
        _check_imports(code, env)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(code) if code is not None else None)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    out, err = proc.stdout.read(), proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(args)} failed ({code}): {err.strip()[-2000:]}")
    return {"seconds": round(elapsed, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_tree_rss_mb": round(peak[0] / 1024, 1)}


def _bare_encode(name: str, texts: list[str]) -> float:
    encoder = get_encoder(name, cache=False)
    encoder.encode(texts[:64])  # warm-up: the model is loaded before the clock starts
    start = time.perf_counter()
    encoder.encode(texts)
    return time.perf_counter() - start


def _manifest(scores: Path) -> dict:
    return json.loads(scores.with_name(scores.name.replace(".parquet", ".manifest.json")).read_text())


def emit(out: dict, key: str, value: dict) -> None:
    value = {**value, "load_avg": _load()}
    out[key] = value
    print(json.dumps({key: value}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 30_000, 100_000],
                    help="static-path sizes (none: skip the static, warm and rebuild runs)")
    ap.add_argument("--default-n", type=int, nargs="*", default=[2_000, 10_000],
                    help="record counts for the default (MiniLM) encoder (none: skip)")
    ap.add_argument("--default-encoder", default="minilm")
    ap.add_argument("--default-repeats", type=int, default=1,
                    help="bare-encode / score pairs per default-encoder size, alternating (the median ratio is reported)")
    ap.add_argument("--gold-n", type=int, default=2_000)
    ap.add_argument("--million", action="store_true", help="also score 1,000,000 records (static)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout: its cold runs too (static sizes and default-encoder pairs), alternating with this code's")
    ap.add_argument("--baseline-repeats", type=int, default=3, help="pairs per size with --baseline")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="synthfilter-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "load_avg_at_start": _load()}}
    biggest = max(args.sizes + ([1_000_000] if args.million else []) + list(args.default_n))
    pool = real_corpus(int(biggest * 1.1) + args.gold_n + 1)
    pool = pool.select("id", "text")

    # --- static path: cold, warm, 5 % new, at each size ---------------------------------
    timings = []
    for n in args.sizes:
        corpus = pool.head(n)
        path = work / f"corpus_{n}.parquet"
        corpus.write_parquet(path)
        texts = corpus["text"].to_list()
        bare = _bare_encode("static", texts)
        cache = work / f"cache_{n}"
        shutil.rmtree(cache, ignore_errors=True)
        scores = work / f"corpus_{n}.scores.parquet"
        command = ["score", str(path), "--encoder", "static", "--keep", "text", "--quiet", "-o", str(scores)]
        if args.baseline is not None:  # the other checkout's cold runs, alternating with this one's
            pairs = []
            for _ in range(args.baseline_repeats):
                shutil.rmtree(cache, ignore_errors=True)
                old = _run(command, cache, code=args.baseline)
                shutil.rmtree(cache, ignore_errors=True)
                now = _run(command, cache)
                pairs.append({"baseline_s": old["seconds"], "this_s": now["seconds"],
                              "ratio": round(now["seconds"] / old["seconds"], 3), "load_avg": _load()})
            emit(out, f"static_cold_vs_baseline_{n}", {
                "records": n, "baseline": str(args.baseline), "pairs": pairs,
                "ratio_median": round(float(np.median([p["ratio"] for p in pairs])), 3)})
            shutil.rmtree(cache, ignore_errors=True)
        cold = _run(command, cache)
        manifest = _manifest(scores)
        emit(out, f"static_cold_{n}", {
            "records": n, **cold, "records_per_s": round(n / cold["seconds"], 1),
            "bare_encode_s": round(bare, 2), "ratio_to_bare_encode": round(cold["seconds"] / bare, 2),
            "stage_timings_s": manifest.get("timings_s"), "index": manifest.get("tails", {}).get("index"),
        })
        timings.append((n, cold["seconds"]))
        warm = _run(["score", str(path), "--encoder", "static", "--quiet", "-o", str(work / "warm.parquet")], cache)
        warm_manifest = _manifest(work / "warm.parquet")
        emit(out, f"static_warm_{n}", {"records": n, **warm,
                                       "speedup_vs_cold": round(cold["seconds"] / warm["seconds"], 2),
                                       "reused_run": bool(warm_manifest.get("reused_run")),
                                       "stage_timings_s": warm_manifest.get("timings_s")})
        # 5 % new records: appended to the corpus scored above (n + n/20 records; the ratio is against the
        # cold run of n, so it understates the gain by 5 %), then in place of its last 5 % (n records, some gone).
        k = n // 20
        fresh = pool.slice(biggest + args.gold_n, k)
        other = pool.slice(biggest + args.gold_n + k, k)  # texts no run has seen, for the second case
        for label, changed in (("new", pl.concat([corpus, fresh])), ("replaced", pl.concat([corpus.head(n - k), other]))):
            changed_path = work / f"corpus_{n}_5pct_{label}.parquet"
            changed.write_parquet(changed_path)
            new = _run(["score", str(changed_path), "--encoder", "static", "--quiet", "-o", str(work / "new.parquet")],
                       cache)
            new_manifest = _manifest(work / "new.parquet")
            emit(out, f"static_5pct_{label}_{n}", {
                "records": changed.height, "new_records": k, "removed_records": n + k - changed.height, **new,
                "speedup_vs_cold": round(cold["seconds"] / new["seconds"], 2),
                "stage_timings_s": new_manifest.get("timings_s"),
                "knn_reuse": {key: v for key, v in (new_manifest.get("tails", {}).get("reuse") or {}).items()
                              if key in ("mode", "new_rows", "reused_rows", "removed_rows", "repaired_rows",
                                     "recall_at_k", "note")}})
    if len(timings) >= 2:
        n_arr, t_arr = np.log([t[0] for t in timings]), np.log([t[1] for t in timings])
        slope = float(np.polyfit(n_arr, t_arr, 1)[0])
        emit(out, "static_loglog_slope", {"sizes": [t[0] for t in timings], "slope": round(slope, 3)})

    # --- rebuild --gold on the largest static scores ------------------------------------
    if args.sizes:
        n = max(args.sizes)
        gold_path = work / "gold.parquet"
        pool.slice(biggest, args.gold_n).write_parquet(gold_path)
        rebuild = _run(["rebuild", str(work / f"corpus_{n}.scores.parquet"), "--gold", str(gold_path),
                        "--max-synthetic", "0.2", "-o", str(work / "train.parquet")], work / f"cache_{n}")
        emit(out, f"rebuild_gold_{n}", {"records": n, "gold": args.gold_n, **rebuild})

    # --- the default encoder --------------------------------------------------------------
    for m in args.default_n:
        _default_encoder(out, work, pool.head(m), args.default_encoder, args.default_repeats, args.baseline)

    # --- a million records, static ----------------------------------------------------------
    if args.million:
        n = 1_000_000
        path = work / "corpus_1m.parquet"
        pool.head(n).write_parquet(path)
        del pool
        run = _run(["score", str(path), "--encoder", "static", "--quiet", "-o", str(work / "m.parquet")],
                   work / "cache_1m")
        manifest = _manifest(work / "m.parquet")
        emit(out, "static_cold_1000000", {"records": n, **run, "records_per_s": round(n / run["seconds"], 1),
                                          "stage_timings_s": manifest.get("timings_s"),
                                          "index": manifest.get("tails", {}).get("index")})
    out["machine"]["load_avg_at_end"] = _load()
    print(json.dumps(out, indent=2))


def _default_encoder(out: dict, work: Path, corpus: pl.DataFrame, encoder: str, repeats: int = 1,
                     baseline: Path | None = None) -> None:
    """Cold ``score`` with ``encoder`` against its bare ``encode`` call, ``repeats`` pairs, alternating.

    The bare call's own time moves between runs on a shared machine by as much as the overhead measured,
    so each pair's ratio is reported and the median of them. With ``baseline`` (another checkout), each
    pair also times that code's cold run, before this code's in even pairs and after it in odd ones.
    """
    m = corpus.height
    path = work / f"corpus_default_{m}.parquet"
    corpus.write_parquet(path)
    pairs = []
    command = ["score", str(path), "--encoder", encoder, "--quiet", "-o", str(work / "d.parquet")]
    cache = work / f"cache_default_{m}"
    for i in range(max(1, repeats)):
        bare = _bare_encode(encoder, corpus["text"].to_list())
        old = None
        for which in (("baseline", "this") if i % 2 == 0 else ("this", "baseline")):
            if which == "baseline" and baseline is None:
                continue
            shutil.rmtree(cache, ignore_errors=True)
            if which == "baseline":
                old = _run(command, cache, code=baseline)
            else:
                cold = _run(command, cache)
        pair = {**cold, "bare_encode_s": round(bare, 2), "ratio_to_bare_encode": round(cold["seconds"] / bare, 3),
                "load_avg": _load()}
        if old is not None:
            pair.update({"baseline_s": old["seconds"], "ratio_to_baseline": round(cold["seconds"] / old["seconds"], 3),
                         "baseline_ratio_to_bare_encode": round(old["seconds"] / bare, 3)})
        pairs.append(pair)
    emit(out, f"default_cold_{m}", {"encoder": encoder, "records": m, **pairs[-1],
                                    "ratio_median": round(float(np.median([p["ratio_to_bare_encode"] for p in pairs])), 3),
                                    **({"ratio_to_baseline_median": round(float(np.median(
                                        [p["ratio_to_baseline"] for p in pairs])), 3)} if baseline else {}),
                                    "pairs": pairs,
                                    "stage_timings_s": _manifest(work / "d.parquet").get("timings_s")})


if __name__ == "__main__":
    main()
