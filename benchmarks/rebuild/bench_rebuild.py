"""Benchmark of ``synthfilter rebuild`` on a labelled pool built from held-out real data.

The pool comes from the ``test`` split of the labelled corpus (groups never
used to train the shipped detector); by default the shipped model's own
held-out split, ``models/<model>/heldout_test.parquet``, so the benchmark runs
from a clean checkout without the Gemma generation cache:

* about half machine text (ShareGPT ChatGPT turns, Gemma continuations);
* common human text (Brown, ShareGPT human turns);
* a small rare human domain (SpamAssassin ham, a few percent of the pool);
* planted exact and near duplicates (near = one or two small edits), and
  copies of gold records;
* a disjoint gold set (common human sources, other groups).

For each cap it runs :func:`synthfilter.rebuild.rebuild` and reports, from the
labels: the true synthetic share of the output, the share of rare human items
kept, the share of all human items kept (each planted duplicate group counts
once), and how many planted duplicate groups are represented more than once.
Baselines on the same pool: no filter, a random subsample to the same size,
and a plain ``p_synthetic < 0.5`` threshold.

Usage::

    python benchmarks/rebuild/bench_rebuild.py                     # the shipped model's held-out split
    python benchmarks/rebuild/bench_rebuild.py --seeds 0 1 2 3 4   # five pools
    python benchmarks/rebuild/bench_rebuild.py --corpus ~/.cache/synthfilter/corpus.parquet --model train
    python benchmarks/rebuild/bench_rebuild.py --corpus tests/fixtures/origin_sample.parquet --pool-size 300 --gold-size 60

Writes ``results/rebuild_benchmark.json`` and ``.md`` beside this file (or
``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import polars as pl

from synthfilter.errors import ConfigError, ModelError
from synthfilter.origin import default_model_path
from synthfilter.rebuild import RebuildPolicy, rebuild

HUMAN_COMMON = ("brown", "sharegpt_human")
RARE_SOURCE = "spamassassin"
CAPS = (0.05, 0.1, 0.2, 0.4)
TARGETS = {"share_slack": 0.02, "rare_kept": 0.95, "human_kept_at_0.2": 0.80}


# ------------------------------------------------------------------------------------ pool
def near_edit(text: str, rng: np.random.Generator) -> str:
    """One or two small edits: swap, drop or repeat a word, change a comma or a letter's case."""
    words = text.split(" ")
    for _ in range(int(rng.integers(1, 3))):
        if len(words) < 6:
            break
        i = int(rng.integers(1, len(words) - 2))
        op = int(rng.integers(0, 4))
        if op == 0:
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == 1:
            del words[i]
        elif op == 2:
            words[i] = words[i] + ","
        else:
            words[i] = words[i].upper() if words[i].islower() else words[i].lower()
    return " ".join(words)


def build_pool(
    corpus: pl.DataFrame,
    *,
    pool_size: int,
    gold_size: int,
    rare_fraction: float,
    exact_dup_fraction: float,
    near_dup_fraction: float,
    gold_copy_fraction: float,
    seed: int,
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Sample the labelled pool and the gold set from the held-out split.

    Returns
    -------
    pool : polars.DataFrame
        ``id, text, label, source, is_rare, item, planted`` where ``item`` names
        the original record a planted copy was made from (its own id for
        originals; a gold id for copies of gold) and ``planted`` is
        ``original``, ``exact``, ``near``, ``gold-exact`` or ``gold-near``.
    gold : polars.DataFrame
        ``id, text, label, source``.
    info : dict
        Composition.
    """
    rng = np.random.default_rng(seed)
    test = corpus.filter(pl.col("split") == "test") if "split" in corpus.columns else corpus
    have = set(test["source"].unique().to_list())
    missing = [s for s in (*HUMAN_COMMON, RARE_SOURCE) if s not in have] + (
        [] if (test["label"] == 1).any() else ["machine text"]
    )
    if missing:
        raise SystemExit(f"the corpus's test split lacks {missing}; build the full corpus first")

    common = test.filter(pl.col("source").is_in(HUMAN_COMMON))
    groups = common["group"].unique().sort().to_list()
    rng.shuffle(groups)
    gold_groups, g_count = set(), 0
    sizes = dict(common.group_by("group").len().rows())
    for g in groups:  # gold: whole groups, disjoint from the pool's groups
        if g_count >= gold_size:
            break
        gold_groups.add(g)
        g_count += sizes[g]
    gold = common.filter(pl.col("group").is_in(sorted(gold_groups)))
    gold = gold.sample(n=min(gold_size, gold.height), seed=seed).sort("id")
    common_pool = common.filter(~pl.col("group").is_in(sorted(gold_groups)))

    machine_all = test.filter(pl.col("label") == 1)
    n_machine = min(pool_size // 2, machine_all.height)  # half machine, even when the split is small
    if n_machine < pool_size // 2:
        print(f"note: only {n_machine} machine records in the test split; pool of {2 * n_machine}", file=sys.stderr)
    n_rare = max(1, round(rare_fraction * 2 * n_machine))
    n_human = 2 * n_machine - n_machine - n_rare

    def take(frame: pl.DataFrame, n: int, what: str) -> pl.DataFrame:
        if frame.height < n:
            print(f"note: only {frame.height} {what} records in the test split (wanted {n})", file=sys.stderr)
        return frame.sample(n=min(n, frame.height), seed=int(rng.integers(1 << 31)))

    parts = [
        take(machine_all, n_machine, "machine"),
        take(common_pool, n_human, "common human"),
        take(test.filter(pl.col("source") == RARE_SOURCE), n_rare, "rare human"),
    ]
    base = pl.concat([p.select("id", "text", "label", "source") for p in parts]).with_columns(
        is_rare=pl.col("source") == RARE_SOURCE, item=pl.col("id"), planted=pl.lit("original")
    )

    extra = []
    n = base.height
    for kind, frac in (("exact", exact_dup_fraction), ("near", near_dup_fraction)):
        picks = rng.choice(n, size=round(frac * n), replace=False)
        for j, i in enumerate(sorted(picks.tolist())):
            row = base.row(i, named=True)
            text = row["text"] if kind == "exact" else near_edit(row["text"], rng)
            extra.append({**row, "id": f"{row['id']}#{kind}{j}", "text": text, "planted": kind})
    gpicks = rng.choice(gold.height, size=round(gold_copy_fraction * n), replace=False)
    for j, i in enumerate(sorted(gpicks.tolist())):
        row = gold.row(i, named=True)
        kind = "gold-exact" if j % 2 == 0 else "gold-near"
        text = row["text"] if kind == "gold-exact" else near_edit(row["text"], rng)
        extra.append({"id": f"{row['id']}#{kind}{j}", "text": text, "label": row["label"], "source": row["source"],
                      "is_rare": False, "item": row["id"], "planted": kind})
    pool = pl.concat([base, pl.DataFrame(extra, schema=base.schema)])
    pool = pool.sample(fraction=1.0, shuffle=True, seed=seed)  # planted copies scattered
    info = {
        "pool": pool.height,
        "machine": int((pool["label"] == 1).sum()),
        "human_common": int(((pool["label"] == 0) & ~pool["is_rare"]).sum()),
        "human_rare": int(pool["is_rare"].sum()),
        "planted": dict(sorted(pool.group_by("planted").len().rows())),
        "gold": gold.height,
        "sources": dict(sorted(pool.group_by("source").len().rows())),
    }
    return pool, gold.select("id", "text", "label", "source"), info


# ------------------------------------------------------------------------------- detector
def get_detector(model: str, corpus: pl.DataFrame, train_size: int, encoder: str, seed: int):
    """The shipped model, or (if missing) one trained here on the corpus ``train`` split."""
    from synthfilter.origin import OriginScorer, load_model

    if model != "train":
        try:
            return load_model(None if model == "default" else model), "shipped" if model == "default" else model
        except ModelError as exc:
            if model != "default":
                raise
            print(f"note: {exc}; training a detector on the corpus train split instead", file=sys.stderr)
    train = corpus.filter(pl.col("split") == "train") if "split" in corpus.columns else corpus
    if train.height == 0:
        raise SystemExit("no shipped model and no train split to train one on")
    per_label = train_size // 2
    parts = [train.filter(pl.col("label") == lab) for lab in (0, 1)]
    parts = [p.sample(n=min(per_label, p.height), seed=seed) for p in parts]
    data = pl.concat(parts).sort("id")
    scorer = OriginScorer(encoder=encoder, seed=seed).fit(data["text"].to_list(), data["label"].to_list())
    return scorer, f"trained in the benchmark on {data.height} train-split records (encoder {encoder})"


# ---------------------------------------------------------------------------------- metrics
def evaluate(kept_pool_ids: set[str], pool: pl.DataFrame, gold: pl.DataFrame) -> dict:
    """Label-based metrics of an output = gold + the kept pool records."""
    kept = pool.filter(pl.col("id").is_in(sorted(kept_pool_ids)))
    n_out = kept.height + gold.height
    machine = int((kept["label"] == 1).sum())
    human_items = pool.filter((pl.col("label") == 0) & ~pl.col("planted").str.starts_with("gold"))
    human_all = human_items["item"].n_unique()
    human_kept = kept.filter(pl.col("item").is_in(human_items["item"].implode()))["item"].n_unique()
    rare = pool.filter(pl.col("is_rare"))
    rare_kept = kept.filter(pl.col("is_rare"))["item"].n_unique()
    # Planted groups (incl. copies of gold, whose item is the gold id) represented twice or more.
    members = pl.concat([kept.select("item"), gold.select(pl.col("id").alias("item"))])
    planted_items = set(pool.filter(pl.col("planted") != "original")["item"].to_list())
    counts = members.filter(pl.col("item").is_in(sorted(planted_items))).group_by("item").len()
    dup_groups_twice = int((counts["len"] > 1).sum())
    extra_copies = int((counts["len"] - 1).clip(lower_bound=0).sum())
    items = pool.group_by("source").agg(pl.col("item").n_unique().alias("all"))
    kept_items = kept.group_by("source").agg(pl.col("item").n_unique().alias("kept"))
    by_source = items.join(kept_items, on="source", how="left").fill_null(0).sort("source")
    return {
        "kept_by_source": {s: round(k / a, 4) for s, a, k in by_source.select("source", "all", "kept").rows()},
        "size": n_out,
        "true_synthetic_share": machine / n_out if n_out else 0.0,
        "rare_human_kept": rare_kept / rare["item"].n_unique() if rare.height else float("nan"),
        "human_kept": human_kept / human_all,
        "dup_groups_twice": dup_groups_twice,
        "extra_copies": extra_copies,
    }


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    corpus_path = Path(args.corpus).expanduser()
    corpus = pl.read_parquet(corpus_path)
    pool, gold, composition = build_pool(
        corpus, pool_size=args.pool_size, gold_size=args.gold_size, rare_fraction=args.rare_fraction,
        exact_dup_fraction=args.exact_dups, near_dup_fraction=args.near_dups, gold_copy_fraction=args.gold_copies,
        seed=args.seed,
    )
    print(f"pool: {composition}", file=sys.stderr)
    detector, detector_desc = get_detector(args.model, corpus, args.train_size, args.detector_encoder, args.seed)
    t_detector = time.perf_counter()
    raw = detector.decision_function(pool["text"].to_list(), show_progress=args.progress)
    p = detector.calibrate(raw)
    # As `synthfilter score` writes them: the raw score breaks ties between equal p.
    scored = pool.with_columns(p_synthetic=pl.Series(p, dtype=pl.Float64),
                               synthetic_score=pl.Series(raw, dtype=pl.Float64))
    t_scored = time.perf_counter()

    from sklearn.metrics import roc_auc_score

    y = pool["label"].to_numpy()
    detector_info = {
        "model": detector.model_id_,
        "source": detector_desc,
        "pool_auroc": float(roc_auc_score(y, p)),
        "pool_tpr_at_1pct_fpr": float(np.mean(p[y == 1] > np.quantile(p[y == 0], 0.99))),
        "rare_human_mean_p": float(p[pool["is_rare"].to_numpy()].mean()),
    }
    candidates = scored.select("id", "text", "p_synthetic", "synthetic_score")
    rows = []
    timings = {}
    variants = [("rebuild", args.max_p)] + [(f"rebuild --max-p {v:g}", v) for v in (1.0, 0.5) if v != args.max_p]
    for cap in args.caps:
        for method, max_p in variants:
            policy = RebuildPolicy(max_synthetic=cap, keep_rare=args.keep_rare, max_p=max_p, seed=args.seed)
            start = time.perf_counter()
            try:
                result = rebuild(candidates, gold.select("id", "text"), policy, model=detector, encoder=args.encoder,
                                 show_progress=args.progress)
            except ConfigError as exc:  # an impossible policy on this pool: report it, go on
                rows.append({"cap": cap, "method": method, "error": str(exc)})
                continue
            timings[f"{method.replace(' --max-p ', '_max_p_')}_cap_{cap}"] = round(time.perf_counter() - start, 2)
            kept_ids = set(result.decisions.filter(pl.col("kept") & (pl.col("origin") == "candidate"))["id"].to_list())
            sel = result.selection
            rebuild_row = {
                "cap": cap, "method": method, "max_p": max_p, **evaluate(kept_ids, pool, gold),
                "estimated_share": sel.output_share.share, "estimated_low": sel.output_share.low,
                "estimated_high": sel.output_share.high, "candidate_share_estimate": sel.candidate_share.share,
                "protected_rare": sel.counts["by_reason"]["protected-rare"],
                "duplicates_dropped": sel.counts["by_reason"]["duplicate"],
            }
            rows.append(rebuild_row)
            if method != "rebuild":
                continue
            rng = np.random.default_rng(args.seed)
            n_rand = rebuild_row["size"] - gold.height
            rand_ids = set(pool["id"].to_numpy()[rng.choice(pool.height, size=n_rand, replace=False)].tolist())
            rows.append({"cap": cap, "method": "random-same-size", **evaluate(rand_ids, pool, gold)})
    rows.append({"cap": None, "method": "no-filter", **evaluate(set(pool["id"].to_list()), pool, gold)})
    thr_ids = set(scored.filter(pl.col("p_synthetic") < 0.5)["id"].to_list())
    rows.append({"cap": None, "method": "threshold-p<0.5", **evaluate(thr_ids, pool, gold)})

    checks = []
    for row in rows:
        if row["method"] != "rebuild":
            continue
        if "error" in row:
            checks.append({"check": f"policy feasible at cap {row['cap']}", "value": 0, "pass": False})
            continue
        checks.append({"check": f"true share <= cap + {TARGETS['share_slack']} at cap {row['cap']}",
                       "value": row["true_synthetic_share"],
                       "pass": row["true_synthetic_share"] <= row["cap"] + TARGETS["share_slack"]})
        checks.append({"check": f"rare human kept >= {TARGETS['rare_kept']:.0%} at cap {row['cap']}",
                       "value": row["rare_human_kept"], "pass": row["rare_human_kept"] >= TARGETS["rare_kept"]})
        checks.append({"check": f"no planted duplicate group twice at cap {row['cap']}",
                       "value": row["dup_groups_twice"], "pass": row["dup_groups_twice"] == 0})
        if row["cap"] == 0.2:
            checks.append({"check": f"human items kept >= {TARGETS['human_kept_at_0.2']:.0%} at cap 0.2",
                           "value": row["human_kept"], "pass": row["human_kept"] >= TARGETS["human_kept_at_0.2"]})
    return {
        "benchmark": "rebuild",
        "corpus": _shown(corpus_path),
        "composition": composition,
        "detector": detector_info,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "results": rows,
        "checks": checks,
        "all_pass": all(c["pass"] for c in checks),
        "timings_s": {"total": round(time.perf_counter() - t0, 1), "detector": round(t_detector - t0, 1),
                      "score_pool": round(t_scored - t_detector, 1), **timings},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }


def _shown(path: Path) -> str:
    """The path relative to the checkout when it lies in it (results do not name the machine's folders)."""
    root = Path(__file__).resolve().parents[2]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def to_markdown(report: dict) -> str:
    d = report["detector"]
    lines = [
        "# rebuild benchmark",
        "",
        (
            f"Corpus: `{report['corpus']}` (test split). Pool: {report['composition']['pool']:,} records "
            f"({report['composition']['machine']:,} machine, {report['composition']['human_common']:,} common "
            f"human, {report['composition']['human_rare']:,} rare human = {RARE_SOURCE}); planted: "
            f"{report['composition']['planted']}; gold: {report['composition']['gold']:,} human records, "
            "disjoint groups."
        ),
        "",
        (
            f"Detector: `{d['model']}` ({d['source']}); on this pool AUROC {d['pool_auroc']:.4f}, "
            f"TPR at 1% FPR {d['pool_tpr_at_1pct_fpr']:.3f}, mean p of rare human records "
            f"{d['rare_human_mean_p']:.3f}."
        ),
        "",
        (
            "| cap | method | size | true synthetic share | est. share (95% CI) | rare human kept | human kept | "
            "dup groups twice |"
        ),
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['cap']:g} | {r['method']} | error: {r['error']} | | | | | |")
            continue
        est = (f"{r['estimated_share']:.3f} ({r['estimated_low']:.3f}–{r['estimated_high']:.3f})"
               if "estimated_share" in r else "")
        cap = "" if r["cap"] is None else f"{r['cap']:g}"
        lines.append(
            f"| {cap} | {r['method']} | {r['size']:,} | {r['true_synthetic_share']:.3f} | {est} | "
            f"{r['rare_human_kept']:.3f} | {r['human_kept']:.3f} | {r['dup_groups_twice']} |"
        )
    sources = sorted({s for r in report["results"] for s in r.get("kept_by_source", {})})
    lines += ["", "Share of each source's items kept (planted copies of one item count once):", "",
              "| cap | method | " + " | ".join(sources) + " |", "|---|---|" + "---:|" * len(sources)]
    for r in report["results"]:
        if "kept_by_source" in r and r["method"].startswith(("rebuild", "threshold")):
            cap = "" if r["cap"] is None else f"{r['cap']:g}"
            cells = " | ".join(f"{r['kept_by_source'].get(s, 0):.3f}" for s in sources)
            lines.append(f"| {cap} | {r['method']} | {cells} |")
    lines += ["", "| check | value | pass |", "|---|---:|---|"]
    for c in report["checks"]:
        value = c["value"] if isinstance(c["value"], int) else f"{c['value']:.3f}"
        lines.append(f"| {c['check']} | {value} | {'yes' if c['pass'] else '**no**'} |")
    lines += ["", f"Total time {report['timings_s']['total']} s on {report['machine']['cpus']} CPUs.", ""]
    return "\n".join(lines)


def summarise_seeds(seeds: list[int], reports: list[dict]) -> dict:
    """Per-seed rebuild rows and, per cap, the worst and mean value of each metric over the pools."""
    rows = []
    for seed, report in zip(seeds, reports):
        for r in report["results"]:
            if r["method"].startswith("rebuild") and "error" not in r:
                rows.append({"seed": seed, "method": r["method"], "cap": r["cap"],
                             "true_synthetic_share": r["true_synthetic_share"], "rare_human_kept": r["rare_human_kept"],
                             "human_kept": r["human_kept"], "dup_groups_twice": r["dup_groups_twice"]})
    keys = sorted({(r["method"], r["cap"]) for r in rows}, key=lambda k: (k[0] != "rebuild", k[0], k[1]))
    per_cap = []
    for method, cap in keys:
        sel = [r for r in rows if r["method"] == method and r["cap"] == cap]
        per_cap.append({
            "method": method,
            "cap": cap,
            "max_true_share": max(r["true_synthetic_share"] for r in sel),
            "mean_true_share": float(np.mean([r["true_synthetic_share"] for r in sel])),
            "min_rare_kept": min(r["rare_human_kept"] for r in sel),
            "mean_rare_kept": float(np.mean([r["rare_human_kept"] for r in sel])),
            "min_human_kept": min(r["human_kept"] for r in sel),
            "max_dup_groups_twice": max(r["dup_groups_twice"] for r in sel),
        })
    checks = [c | {"seed": seed} for seed, report in zip(seeds, reports) for c in report["checks"]]
    return {"seeds": seeds, "rows": rows, "per_cap": per_cap,
            "checks_failed": [c for c in checks if not c["pass"]],
            "all_pass": all(r["all_pass"] for r in reports)}


def seeds_markdown(summary: dict) -> str:
    lines = ["# rebuild benchmark over several pools", "",
             f"Seeds {summary['seeds']}: one pool each (same sizes, other records and duplicates).", "",
             "| method | cap | true share: worst / mean | rare human kept: worst / mean | human kept: worst | "
             "dup groups twice: worst |", "|---|---|---|---|---:|---:|"]
    for c in summary["per_cap"]:
        lines.append(f"| {c['method']} | {c['cap']:g} | {c['max_true_share']:.3f} / {c['mean_true_share']:.3f} | "
                     f"{c['min_rare_kept']:.3f} / {c['mean_rare_kept']:.3f} | {c['min_human_kept']:.3f} | "
                     f"{c['max_dup_groups_twice']} |")
    lines += ["", "| seed | method | cap | true share | rare human kept | human kept | dup groups twice |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        lines.append(f"| {r['seed']} | {r['method']} | {r['cap']:g} | {r['true_synthetic_share']:.3f} | "
                     f"{r['rare_human_kept']:.3f} | {r['human_kept']:.3f} | {r['dup_groups_twice']} |")
    failed = summary["checks_failed"]
    lines += ["", f"Checks missed: {len(failed)}" + ("" if not failed else ": " + "; ".join(
        f"seed {c['seed']}: {c['check']} ({c['value'] if isinstance(c['value'], int) else round(c['value'], 3)})"
        for c in failed)), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(default_model_path() / "heldout_test.parquet"),
                        help="Labelled corpus whose test split the pool is drawn from [default: the shipped "
                             "model's held-out split].")
    parser.add_argument("--pool-size", type=int, default=1300, help="Original records in the pool (half machine).")
    parser.add_argument("--gold-size", type=int, default=300)
    parser.add_argument("--rare-fraction", type=float, default=0.03)
    parser.add_argument("--exact-dups", type=float, default=0.03, help="Exact copies, as a share of the pool.")
    parser.add_argument("--near-dups", type=float, default=0.03, help="Near copies, as a share of the pool.")
    parser.add_argument("--gold-copies", type=float, default=0.01, help="Copies of gold records, share of pool.")
    parser.add_argument("--caps", type=float, nargs="+", default=list(CAPS))
    parser.add_argument("--keep-rare", type=float, default=0.95)
    parser.add_argument("--max-p", type=float, default=0.9,
                        help="Policy max_p of the checked rebuild (rebuild's default); variants with 1 (fill the "
                             "cap) and 0.5 (no machine-looking record) are reported beside it, outside the checks.")
    parser.add_argument("--model", default="default", help="'default' (shipped), a model folder, or 'train'.")
    parser.add_argument("--train-size", type=int, default=4000, help="Records to train a fallback detector on.")
    parser.add_argument("--detector-encoder", default="minilm", help="Encoder of a fallback detector.")
    parser.add_argument("--encoder", default="minilm", help="Encoder of the rebuild's joint tail stage.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="Run on several pools (one per seed); the detailed report is the first seed's, and "
                             "rebuild_benchmark_seeds.md/json summarise every seed.")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    except ImportError:  # pragma: no cover
        pass
    seeds = args.seeds or [args.seed]
    reports = [run(argparse.Namespace(**{**vars(args), "seed": seed})) for seed in seeds]
    report = reports[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rebuild_benchmark.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "rebuild_benchmark.md").write_text(to_markdown(report), encoding="utf-8")
    print(to_markdown(report))
    if len(reports) > 1:
        summary = summarise_seeds(seeds, reports)
        (out / "rebuild_benchmark_seeds.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (out / "rebuild_benchmark_seeds.md").write_text(seeds_markdown(summary), encoding="utf-8")
        print(seeds_markdown(summary))
    return 0 if all(r["all_pass"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
