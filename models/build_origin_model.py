"""Build the shipped origin detector from the packaged real corpora.

    python models/build_origin_model.py                # full build (~30-60 min on 2 cores)
    python models/build_origin_model.py --per-source 300 --out /tmp/m   # quick check

Steps: assemble the labelled corpus (ShareGPT human and ChatGPT turns, Brown,
SpamAssassin ham, Gemma 3 270M continuations; split by document), fit the
detector on ``train``, calibrate on ``calib``, and measure on ``test``: overall
and per-source metrics, leave-one-source-out AUROC, share-estimation accuracy
on held-out mixes, and a TF-IDF character n-gram baseline on the same splits.
Writes the model folder (model.json, weights.npz), metrics.json, MODEL_CARD.md,
the held-out split (heldout_test.parquet) and the ROC/reliability plots.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from synthfilter.data.corpus import build_corpus
from synthfilter.data.schema import SOURCES
from synthfilter.evaluation import evaluate_detector, plot_roc_and_reliability, tpr_at_fpr
from synthfilter.io import atomic_write_parquet, atomic_write_text
from synthfilter.share import estimate_share
from synthfilter.training import CharTfidfBaseline, evaluate_on, fit_origin_scorer, share_trials

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-source", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--calibration", default="isotonic", choices=["isotonic", "sigmoid"])
    ap.add_argument("--C", type=float, default=4.0)
    ap.add_argument("--corpus", type=Path, default=None, help="Use this built corpus instead of building one.")
    ap.add_argument("--out", type=Path, default=HERE / "origin-minilm-v1")
    ap.add_argument("--skip-loso", action="store_true")
    args = ap.parse_args()

    started = time.time()
    if args.corpus:
        corpus = pl.read_parquet(args.corpus)
    else:
        log("building corpus")
        corpus = build_corpus(per_source=args.per_source, seed=args.seed)
    counts = corpus.group_by("source", "split").len().sort("source", "split")
    log(f"corpus: {corpus.height} records\n{counts}")
    train, calib, test = (corpus.filter(pl.col("split") == s) for s in ("train", "calib", "test"))
    params = dict(encoder=args.encoder, C=args.C, calibration=args.calibration, seed=args.seed)

    log("fitting detector")
    scorer = fit_origin_scorer(train, calib, show_progress=True, **params)
    p_test, report = evaluate_on(scorer, test)
    log(f"test: {report.overall}")
    y_test = test["label"].to_numpy()

    loso = []
    if not args.skip_loso:
        for source in SOURCES:
            if source not in set(corpus["source"].to_list()):
                continue
            log(f"leave-one-source-out: {source}")
            keep = pl.col("source") != source
            model = fit_origin_scorer(train.filter(keep), calib.filter(keep), **params)
            cls = int(test.filter(pl.col("source") == source)["label"][0])
            held = test.filter((pl.col("source") == source) | (pl.col("label") != cls))
            p = model.predict_proba(held["text"].to_list())[:, 1]
            y = held["label"].to_numpy()
            loso.append({"left_out": source, "class": "machine" if cls else "human", "n": int(held.height),
                         "auroc": round(float(roc_auc_score(y, p)), 4),
                         "tpr_at_1pct_fpr": round(tpr_at_fpr(y, p, 0.01), 4)})
            log(f"  {loso[-1]}")

    log("share estimation on held-out mixes")
    p_m, p_h = p_test[y_test == 1], p_test[y_test == 0]
    size = int(min(1000, p_m.size / 0.6, p_h.size))
    trials = share_trials(p_m, p_h, lambda p, t: estimate_share(p, scorer.share_calibration_, seed=t),
                          size=size, trials=20, seed=args.seed)
    for t in trials:
        log(f"  {t.to_dict()}")

    log("baseline: TF-IDF char n-grams + logistic regression")
    base = CharTfidfBaseline(C=args.C).fit(train["text"].to_list(), train["label"].to_numpy())
    p_base = base.predict_proba(test["text"].to_list())[:, 1]
    base_report = evaluate_detector(y_test, p_base, test["source"].to_list())
    base_loso = []
    if not args.skip_loso:
        for source in SOURCES:
            if source not in set(corpus["source"].to_list()):
                continue
            keep = pl.col("source") != source
            tr = train.filter(keep)
            model = CharTfidfBaseline(C=args.C).fit(tr["text"].to_list(), tr["label"].to_numpy())
            cls = int(test.filter(pl.col("source") == source)["label"][0])
            held = test.filter((pl.col("source") == source) | (pl.col("label") != cls))
            p = model.predict_proba(held["text"].to_list())[:, 1]
            base_loso.append({"left_out": source, "auroc": round(float(roc_auc_score(held["label"].to_numpy(), p)), 4)})
    log(f"baseline test: {base_report.overall}")

    metrics = {
        "heldout_test": report.to_dict(),
        "leave_one_source_out": loso,
        "share_estimation": [t.to_dict() for t in trials],
        "share_mix_size": size,
        "baseline_char_tfidf_lr": {"heldout_test": base_report.to_dict(), "leave_one_source_out": base_loso},
    }
    metadata = {
        "training_data": {
            "sources": sorted(set(corpus["source"].to_list())),
            "counts": counts.to_dicts(),
            "split": "by document/conversation group (hash of group id): 60% train, 20% calib, 20% test",
            "per_source": args.per_source,
            "seed": args.seed,
        },
        "metrics": metrics,
        "build_seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    scorer.save(args.out, name=args.out.name, metadata=metadata)
    atomic_write_text(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    atomic_write_parquet(test.select("id", "text", "label", "source", "group", "split"), args.out / "heldout_test.parquet")
    plot_roc_and_reliability(y_test, p_test, args.out, title=args.out.name)
    log(f"wrote {args.out} ({scorer.model_id_}) in {time.time() - started:.0f}s")
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
