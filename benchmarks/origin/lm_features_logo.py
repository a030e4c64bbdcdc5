"""What the LM feature block buys on generators the detector has never seen.

Scores a source-balanced sample of the shipped held-out split
(``models/origin-v3/heldout_test.parquet``: brown, spamassassin and ShareGPT
human paragraphs, ShareGPT ChatGPT and Gemma 3 270M paragraphs) plus cleaned
SmolLM2-135M-Instruct text (``scripts/generate_smollm2.py``) with the LM
feature block (:class:`synthfilter.lm_features.LMFeatures`: SmolLM2-135M,
first 128 tokens) and reports, per generator (ChatGPT, Gemma, SmolLM2) against
all human paragraphs:

- ``zero_shot``: AUROC and TPR at 1 % FPR of each LM feature alone, its sign
  fixed in advance (no training: the generator-agnostic number);
- ``fast_only``: the fast detector's uncalibrated score (origin-v3, and the
  leave-Gemma-out build of ``benchmarks/share/leave_one_generator_out.py``
  when given);
- ``logo``: leave-one-generator-out AUROC of a small logistic regression
  trained on the *other* generators against human text, on (a) the LM
  features alone and (b) the fast detector's uncalibrated score plus the LM
  features. Humans are split by document group into 5 folds (cross-fitting):
  a model never scores a human document it was trained on. For (b) the fast
  score comes from a detector that never saw the held-out generator when one
  exists (Gemma: the leave-Gemma-out build; SmolLM2: origin-v3); for ChatGPT
  none exists here (a leave-ChatGPT-out build needs Gemma training text), so
  that row is marked ``fast_detector_saw_generator: true`` and is not a
  leave-one-out number.

A simulated cascade (``cascade``): records whose fast ``p_synthetic`` (the
detector that never saw the generator) lies in an uncertain band get the
leave-one-generator-out LR's probability, the rest keep the fast one; it
reports the share of records sent to the LM block and the resulting AUROC.

Also reports the surface-tell AUROC of SmolLM2 against Brown+SpamAssassin (the
prompt sources; 0.5 = the cleaning left no tell) and the LM block's cost.

    nice -n 19 python benchmarks/origin/lm_features_logo.py --per-source 300 \
        --no-gemma-model ~/.cache/synthfilter/bench/origin-no-gemma \
        --out benchmarks/origin/results/lm_features_logo.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from synthfilter.data.corpus import _split_of  # noqa: E402  (group hash, reused for folds)
from synthfilter.data.smollm2 import CASCADE_V1_PROMPTS, load_smollm2  # noqa: E402
from synthfilter.data.tells import tell_auroc  # noqa: E402
from synthfilter.evaluation import tpr_at_fpr  # noqa: E402
from synthfilter.lm_features import LM_FEATURE_NAMES, LM_FEATURE_SIGNS, LMFeatures  # noqa: E402
from synthfilter.origin import load_model  # noqa: E402

HELDOUT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"
GENERATORS = ("sharegpt_chatgpt", "gemma", "smollm2")
HUMANS = ("brown", "sharegpt_human", "spamassassin")
N_FOLDS = 5
#: Uncertain bands of the fast detector's p_synthetic for the cascade simulation.
CASCADE_BANDS = ((0.2, 0.8), (0.05, 0.95), (0.01, 0.99))


def _fold(groups: np.ndarray, seed: int) -> np.ndarray:
    import hashlib

    return np.array([int(hashlib.sha256(f"{seed}\0{g}".encode()).hexdigest()[:8], 16) % N_FOLDS for g in groups])


def _metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    return {"auroc": round(float(roc_auc_score(y, s)), 4), "tpr_at_1pct_fpr": round(float(tpr_at_fpr(y, s, 0.01)), 4)}


def logo_scores(x: np.ndarray, source: np.ndarray, folds: np.ndarray, held_out: str, seed: int) -> np.ndarray:
    """Out-of-fold scores of the held-out generator's and the human rows from LRs trained without it.

    For each fold ``k`` a logistic regression is fitted on human rows outside
    fold ``k`` and machine rows of the other generators outside fold ``k``,
    then scores the held-out generator's and the human rows in fold ``k``.
    Other generators' rows get NaN.
    """
    human = np.isin(source, HUMANS)
    others = ~human & (source != held_out)
    target = human | (source == held_out)
    out = np.full(len(source), np.nan)
    for k in range(N_FOLDS):
        train = (human | others) & (folds != k)
        test = target & (folds == k)
        if not test.any():
            continue
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
        )
        model.fit(x[train], (~human[train]).astype(int))
        out[test] = model.decision_function(x[test])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", type=Path, default=HELDOUT)
    ap.add_argument("--per-source", type=int, default=300, help="held-out paragraphs per source")
    ap.add_argument("--smollm2", type=int, default=600, help="SmolLM2 paragraphs at most")
    ap.add_argument("--no-gemma-model", type=Path, default=None, help="leave-Gemma-out detector folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cached-only", action="store_true",
                    help="use only the sampled texts whose LM features are already cached (computes no LM feature)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "origin" / "results" / "lm_features_logo.json")
    args = ap.parse_args(argv)
    started = time.time()
    load_start = os.getloadavg()

    held = pl.read_parquet(args.heldout)
    parts = [
        held.filter(pl.col("source") == s).sample(min(args.per_source, n), seed=args.seed)
        for s, n in sorted(held.group_by("source").len().rows())
    ]
    smol = load_smollm2(prompts=CASCADE_V1_PROMPTS)  # the generations these results were measured on
    if smol.height:
        smol = smol.sample(min(args.smollm2, smol.height), seed=args.seed)
        parts.append(smol.select("id", "text", "label", "source", "group").with_columns(pl.lit("smollm2").alias("split")))
    data = pl.concat([p.select("id", "text", "label", "source", "group") for p in parts])
    lm = LMFeatures(max_tokens=args.max_tokens, n_threads=args.threads)
    if args.cached_only:
        _, hit = lm.lookup(data["text"].to_list())
        print(f"--cached-only: {int(hit.sum())} of {data.height} sampled texts have cached LM features", flush=True)
        data = data.filter(pl.Series(hit))
        smol = smol.filter(pl.col("id").is_in(data.filter(pl.col("source") == "smollm2")["id"].to_list()))
    texts = data["text"].to_list()
    source = data["source"].to_numpy()
    groups = data["group"].to_numpy()
    y = data["label"].to_numpy().astype(int)
    counts = dict(sorted(data.group_by("source").len().rows()))
    print(f"{data.height} texts: {counts}", flush=True)

    result: dict = {"counts": counts, "max_tokens": args.max_tokens, "threads": args.threads, "seed": args.seed,
                    "cached_only": args.cached_only, "per_source_requested": args.per_source}
    if smol.height:
        prompt_humans = held.filter(pl.col("source").is_in(["brown", "spamassassin"]))["text"].to_list()
        smol_texts = smol["text"].to_list()
        result["smollm2_tells_auroc_vs_brown_spamassassin"] = round(
            float(tell_auroc(smol_texts + prompt_humans, [1] * len(smol_texts) + [0] * len(prompt_humans))), 4
        )
        result["smollm2_modes"] = dict(sorted(smol.group_by("gen_mode").len().rows()))
        result["smollm2_tasks"] = dict(sorted(smol.group_by("gen_task").len().rows()))

    t0 = time.perf_counter()
    # Score in a shuffled order, so that a run stopped part-way leaves every source partly cached.
    order = np.random.default_rng(args.seed).permutation(len(texts))
    feats = np.empty((len(texts), len(LM_FEATURE_NAMES)))
    feats[order] = lm.transform([texts[i] for i in order], show_progress=True)
    lm_seconds = time.perf_counter() - t0
    stats = lm.last_stats
    result["lm"] = {
        "id": lm.lm_id,
        **stats,
        "seconds_per_computed_text": round(stats["seconds"] / stats["computed"], 4) if stats["computed"] else None,
        "wall_seconds": round(lm_seconds, 1),
    }
    n_tokens = np.array([len(lm.tokens(t)) - 1 for t in texts])
    result["lm"]["tokens_scored"] = {"median": int(np.median(n_tokens)), "max": int(n_tokens.max()),
                                     "share_truncated": round(float((n_tokens >= args.max_tokens).mean()), 4)}
    print(f"LM features: {result['lm']}", flush=True)

    scorers = {"origin-v3": load_model()}
    if args.no_gemma_model is not None:
        scorers["origin-no-gemma"] = load_model(args.no_gemma_model)
    fast = {name: scorer.decision_function(texts) for name, scorer in scorers.items()}
    fast_p = {name: scorers[name].calibrate(raw) for name, raw in fast.items()}
    # Which fast detector never saw each generator (None: no such build here).
    unseen_fast = {"gemma": "origin-no-gemma" if "origin-no-gemma" in fast else None, "smollm2": "origin-v3",
                   "sharegpt_chatgpt": None}

    human = np.isin(source, HUMANS)
    folds = _fold(groups, args.seed)
    per_generator: dict = {}
    for gen in GENERATORS:
        mask = human | (source == gen)
        if not (source == gen).any():
            continue
        yy = y[mask]
        entry: dict = {"n_machine": int((source == gen).sum()), "n_human": int(human.sum())}
        entry["zero_shot"] = {
            name: _metrics(yy, LM_FEATURE_SIGNS[name] * feats[mask, j]) for j, name in enumerate(LM_FEATURE_NAMES)
        }
        entry["fast_only"] = {name: _metrics(yy, s[mask]) for name, s in fast.items()}
        lm_only = logo_scores(feats, source, folds, gen, args.seed)
        entry["logo_lm_only"] = _metrics(yy, lm_only[mask])
        # The same against each human source alone (AUROC only; TPR at 1 % FPR needs more humans).
        entry["auroc_by_human_source"] = {}
        for h in HUMANS:
            sub = (source == h) | (source == gen)
            ys = y[sub]
            row = {name: round(float(roc_auc_score(ys, LM_FEATURE_SIGNS[name] * feats[sub, j])), 4)
                   for j, name in enumerate(LM_FEATURE_NAMES)}
            row["logo_lm_only"] = round(float(roc_auc_score(ys, lm_only[sub])), 4)
            entry["auroc_by_human_source"][h] = row
        fast_name = unseen_fast[gen] or "origin-v3"
        x = np.column_stack([fast[fast_name], feats])
        combined = logo_scores(x, source, folds, gen, args.seed)
        entry["logo_fast_plus_lm"] = {
            **_metrics(yy, combined[mask]),
            "fast_detector": fast_name,
            "fast_detector_saw_generator": unseen_fast[gen] is None,
        }
        if unseen_fast[gen] is not None:
            entry["fast_unseen_only"] = {"fast_detector": fast_name, **_metrics(yy, fast[fast_name][mask])}
            # A cascade: only records whose fast p_synthetic lies in an uncertain band go to the LM block
            # and get the leave-one-generator-out LR's probability; the rest keep the fast p_synthetic.
            entry["cascade"] = []
            lr_p = 1.0 / (1.0 + np.exp(-combined))
            for lo, hi in CASCADE_BANDS:
                sent = (fast_p[fast_name] >= lo) & (fast_p[fast_name] <= hi)
                final = np.where(sent, lr_p, fast_p[fast_name])
                entry["cascade"].append({
                    "band": [lo, hi], "fast_detector": fast_name,
                    "share_of_sample_sent": round(float(sent[mask].mean()), 4),
                    "share_of_generator_sent": round(float(sent[source == gen].mean()), 4),
                    "share_of_humans_sent": round(float(sent[human].mean()), 4),
                    **_metrics(yy, final[mask]),
                })
        per_generator[gen] = entry
        print(f"{gen}: {json.dumps(entry)}", flush=True)
    result["per_generator"] = per_generator
    result["target_logo_auroc"] = 0.85
    result["environment"] = {
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "wall_seconds": round(time.time() - started, 1),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
