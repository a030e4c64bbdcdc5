"""Benchmark of the diversity monitor's alarms and runtime on real text.

For each reference size and seed it draws, from the labelled corpus
(``synthfilter data`` output, or the small test fixture):

* a **reference**: ``N`` human paragraphs, a third each from Brown,
  SpamAssassin and ShareGPT human turns, from a random 62 % of each source's
  groups;
* a **fresh human batch**: ``m`` paragraphs of the same sources from the other
  groups (no alarm expected: its alarms are false alarms);
* a **machine batch**: ``m`` paragraphs of ShareGPT ChatGPT turns and Gemma
  continuations (narrowing / shift expected);
* a **tail-less batch**: the reference minus its rarest 20 % by k-NN radius
  (tail alarm expected).

It reports how often each batch raised each alarm group, the median z of
the deciding metrics, and the monitor's runtime (encoding excluded; it is
cached). A second part times the monitor alone on random subsets of growing
size with precomputed embeddings.

Usage::

    python benchmarks/monitor/bench_monitor.py                          # ~/.cache/synthfilter/corpus.parquet
    python benchmarks/monitor/bench_monitor.py --corpus tests/fixtures/origin_sample.parquet --sizes 294 --batch 150

Writes ``results/monitor_benchmark.json`` and ``.md`` beside this file (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import polars as pl

from synthfilter.encoders import get_encoder
from synthfilter.monitor import DiversityMonitor, get_spec
from synthfilter.monitor.neighbours import SupportSet

HUMAN = ("brown", "spamassassin", "sharegpt_human")
MACHINE = ("sharegpt_chatgpt", "gemma")
DEFAULT_CORPUS = Path.home() / ".cache" / "synthfilter" / "corpus.parquet"
FIXTURE = Path(__file__).parents[2] / "tests" / "fixtures" / "origin_sample.parquet"
WATCH = {"fresh": ("narrowing", "tail", "shift", "duplication"), "machine": ("narrowing", "shift"),
         "minus_rarest_20": ("tail", "narrowing")}
SIGMAS = (3.0, 3.5, 4.0, 4.5, 5.0)
KEY_METRICS = ("distinct_2", "type_token_ratio", "vendi_score", "mmd_rbf", "tail_reach", "tail_mass", "tail_recall")


def whole_groups(pool: pl.DataFrame, size: int, rng: np.random.Generator) -> pl.DataFrame:
    """Whole groups in random order until ``size`` records (the last group cut short).

    Batches arrive as documents and conversations, not as scattered paragraphs,
    so every set is drawn by group, as the monitor draws its pseudo-batches.
    """
    groups = sorted(set(pool["group"]))
    rng.shuffle(groups)
    order = {g: i for i, g in enumerate(groups)}
    ranked = pool.with_columns(_rank=pl.col("group").replace_strict(order, return_dtype=pl.Int64),
                               _tie=pl.Series(rng.permutation(pool.height)))
    return ranked.sort("_rank", "_tie").head(size).drop("_rank", "_tie")


def draw(corpus: pl.DataFrame, n_ref: int, m: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ref_parts, fresh_parts = [], []
    for source in HUMAN:
        part = corpus.filter(pl.col("source") == source)
        groups = sorted(set(part["group"]))
        rng.shuffle(groups)
        cut = round(len(groups) * 0.62)
        ref_parts.append(whole_groups(part.filter(pl.col("group").is_in(groups[:cut])), n_ref // 3, rng))
        fresh_parts.append(whole_groups(part.filter(pl.col("group").is_in(groups[cut:])), m // 3, rng))
    machine = whole_groups(corpus.filter(pl.col("source").is_in(list(MACHINE))), m, rng)
    return pl.concat(ref_parts), pl.concat(fresh_parts), machine


def _bad_side(metric: str, z: float) -> float:
    return -z if get_spec(metric).bad == "low" else z


def alarm_part(corpus: pl.DataFrame, encoder, sizes: list[int], m: int, seeds: list[int]) -> list[dict]:
    rows = []
    for n_ref in sizes:
        for seed in seeds:
            reference, fresh, machine = draw(corpus, n_ref, m, seed)
            texts = reference["text"].to_list()
            emb = encoder.encode(texts)
            keep = np.sort(np.argsort(SupportSet(emb, 5).radii_sq, kind="stable")[: round(0.8 * len(texts))])
            batches = {
                "fresh": {"texts": fresh["text"].to_list(), "embeddings": encoder.encode(fresh["text"].to_list())},
                "machine": {"texts": machine["text"].to_list(),
                            "embeddings": encoder.encode(machine["text"].to_list())},
                "minus_rarest_20": {"texts": [texts[i] for i in keep], "embeddings": emb[keep]},
            }
            monitor = DiversityMonitor(encoder=encoder, origin_model=None, seed=seed)
            start = time.perf_counter()
            monitor.fit(texts, emb, groups=reference["group"].to_list())
            results = monitor.check_many([{"name": k, **v} for k, v in batches.items()])
            seconds = time.perf_counter() - start
            for result in results:
                rows.append({
                    "size": n_ref, "n_reference": len(texts), "batch": result.name, "n_batch": result.n,
                    "n_compared": result.n_compared, "seed": seed, "seconds_all_batches": round(seconds, 2),
                    "alarm_groups": result.alarm_groups,
                    "alarms": [a.metric for a in result.alarms],
                    "z": {k: (None if result.null[k].z is None else round(result.null[k].z, 2))
                          for k in KEY_METRICS if k in result.null},
                    # Largest deviation in a bad direction, in null scales: the batch alarms at sigma < this.
                    "worst_z": round(max(_bad_side(name, s.z) for name, s in result.null.items()
                                         if s.z is not None), 2),
                })
            print(f"N={len(texts)} seed={seed} {seconds:.1f}s " + "; ".join(
                f"{r.name}: {','.join(r.alarm_groups) or 'ok'}" for r in results), flush=True)
    return rows


def timing_part(corpus: pl.DataFrame, encoder, sizes: list[int], m: int) -> list[dict]:
    human = corpus.filter(pl.col("source").is_in(list(HUMAN)))
    rows = []
    for n_ref in sizes:
        if n_ref + m > human.height:
            continue
        pick = human.sample(n_ref + m, seed=0)
        emb = encoder.encode(pick["text"].to_list())
        texts = pick["text"].to_list()
        monitor = DiversityMonitor(encoder=encoder, origin_model=None, seed=0)
        start = time.perf_counter()
        monitor.fit(texts[:n_ref], emb[:n_ref])
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        monitor.check(texts[n_ref:], emb[n_ref:])
        check_s = time.perf_counter() - start
        rows.append({"n_reference": n_ref, "n_batch": m, "half": monitor.half_size_, "dim": emb.shape[1],
                     "fit_s": round(fit_s, 2), "check_s": round(check_s, 2)})
        print(f"timing N={n_ref} m={m} dim={emb.shape[1]}: fit {fit_s:.1f}s, check {check_s:.1f}s", flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    out: list[dict] = []
    if not rows:
        return out
    for (_, batch), group in pl.DataFrame(rows).group_by(["size", "batch"], maintain_order=True):
        records = group.to_dicts()
        entry = {"n_reference": int(np.median([r["n_reference"] for r in records])), "batch": batch,
                 "runs": len(records),
                 "median_n_compared": int(np.median([r["n_compared"] for r in records]))}
        for name in WATCH[batch]:
            entry[f"rate_{name}"] = round(float(np.mean([name in r["alarm_groups"] for r in records])), 3)
        entry["rate_any"] = round(float(np.mean([bool(r["alarm_groups"]) for r in records])), 3)
        for sigma in SIGMAS:
            entry[f"rate_any_at_sigma_{sigma}"] = round(float(np.mean([r["worst_z"] > sigma for r in records])), 3)
        for metric in KEY_METRICS:
            zs = [r["z"][metric] for r in records if r["z"].get(metric) is not None]
            if zs:
                entry[f"median_z_{metric}"] = round(float(np.median(zs)), 2)
        entry["median_seconds_3_batches"] = round(float(np.median([r["seconds_all_batches"] for r in records])), 1)
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS if DEFAULT_CORPUS.is_file() else FIXTURE)
    parser.add_argument("--encoder", default="static")
    parser.add_argument("--sizes", default="300,600,1200", help="Reference sizes (comma-separated).")
    parser.add_argument("--batch", type=int, default=150, help="Fresh and machine batch size.")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--timing-sizes", default="1000,4000", help="Reference sizes for the runtime part.")
    parser.add_argument("--timing-batch", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    corpus = pl.read_parquet(args.corpus)
    if "split" in corpus.columns and corpus.filter(pl.col("split") == "test").height >= 600:
        corpus = corpus.filter(pl.col("split") == "test")  # held-out groups only
    encoder = get_encoder(args.encoder)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = alarm_part(corpus, encoder, sizes, args.batch, list(range(args.seeds)))
    timing = timing_part(pl.read_parquet(args.corpus), encoder, [int(s) for s in args.timing_sizes.split(",") if s],
                         args.timing_batch)
    summary = summarise(rows)
    report = {
        "corpus": str(args.corpus), "encoder": encoder.id, "batch": args.batch, "seeds": args.seeds,
        "machine": platform.platform(), "cpus": os.cpu_count(), "summary": summary, "timing": timing, "runs": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "monitor_benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# Monitor benchmark ({encoder.id}, batch {args.batch}, {args.seeds} seeds)", "",
             f"corpus: `{args.corpus}`", "",
             "| N ref | batch | compared | runs | alarm rates | median z | s (3 batches) |",
             "|---|---|---|---|---|---|---|"]
    for e in summary:
        rates = ", ".join(f"{k[5:]} {v:.0%}" for k, v in e.items()
                          if k.startswith("rate_") and "sigma" not in k)
        rates += " · any alarm at σ " + ", ".join(f"{s:g}: {e[f'rate_any_at_sigma_{s}']:.0%}" for s in SIGMAS)
        zs = ", ".join(f"{k[9:]} {v:+.1f}" for k, v in e.items() if k.startswith("median_z_"))
        lines.append(f"| {e['n_reference']} | {e['batch']} | {e['median_n_compared']} | {e['runs']} | {rates} | {zs} "
                     f"| {e['median_seconds_3_batches']} |")
    lines += ["", "| N ref | batch | half | dim | fit s | check s |", "|---|---|---|---|---|---|"]
    lines += [f"| {t['n_reference']} | {t['n_batch']} | {t['half']} | {t['dim']} | {t['fit_s']} | {t['check_s']} |"
              for t in timing]
    (args.out / "monitor_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
