"""Train the cascade's second stage (``models/origin-cascade-v2``) from the project's data.

    python scripts/train_cascade.py                                      # the shipped build
    python scripts/train_cascade.py --per-source 60 --out /tmp/cascade  # a quick check

Data (the project's real sources only; nothing downloaded): the shipped fast
detector's held-out split (``models/origin-v4/heldout_test.parquet``: Brown,
SpamAssassin ham and ShareGPT human paragraphs, ShareGPT ChatGPT, Gemma 3 270M
and SmolLM2-135M-Instruct paragraphs; origin-v4 never trained or calibrated on
them), at most ``--per-source`` per source. A held-out split without SmolLM2
(an older fast detector's) gets the cleaned SmolLM2 generations of the first
``--smollm2-prompts`` prompts instead (:func:`synthfilter.data.load_smollm2`).
Chitchat is evaluation-only and is not used. The LM features of texts not in
the cache are computed (llama.cpp, ``make lm``; a few minutes).

Records are split by document group (a salted hash of ``group``; a SmolLM2
paragraph's group is its prompt's document, so it lands with that document)
into train / calib / test (40 / 30 / 30 % of groups): the second stage is
fitted on train, its band and calibration are chosen on calib, and the
metrics in ``model.json`` are measured on test. ``--cached-only`` keeps only
the sampled texts whose LM features are already in the cache (no LM cost).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthfilter.cascade import DEFAULT_CASCADE_NAME, MODES, CascadeDetector  # noqa: E402
from synthfilter.data.smollm2 import CASCADE_V1_PROMPTS  # noqa: E402
from synthfilter.evaluation import expected_calibration_error, tpr_at_fpr  # noqa: E402

HELDOUT = ROOT / "models" / "origin-v4" / "heldout_test.parquet"
SPLIT_SALT = "synthfilter-cascade-v1"
SPLIT_FRACTIONS = (("train", 0.4), ("calib", 0.3), ("test", 0.3))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cascade_split(group: str) -> str:
    """train / calib / test of a document group (a salted hash: no document in two splits)."""
    u = int.from_bytes(hashlib.sha256(f"{SPLIT_SALT}\0{group}".encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name, fraction in SPLIT_FRACTIONS:
        edge += fraction
        if u < edge:
            return name
    return SPLIT_FRACTIONS[-1][0]


def cascade_data(per_source: int = 400, smollm2: int = 600, seed: int = 0, heldout: Path = HELDOUT,
                 cached_only: bool = False, smollm2_prompts: int | None = CASCADE_V1_PROMPTS) -> pl.DataFrame:
    """The labelled records (``id, text, label, source, group, split``) the cascade is trained and tested on.

    SmolLM2 paragraphs come from the generations of the first ``smollm2_prompts`` prompts (all if ``None``).
    """
    from synthfilter.data.smollm2 import load_smollm2

    held = pl.read_parquet(heldout)
    parts = [held.filter(pl.col("source") == s).sample(min(per_source, n), seed=seed)
             for s, n in sorted(held.group_by("source").len().rows())]
    smol = load_smollm2(prompts=smollm2_prompts) if "smollm2" not in set(held["source"]) else None
    if smol is not None and smol.height:  # a fast detector that never saw SmolLM2: add its generations
        parts.append(smol.sample(min(smollm2, smol.height), seed=seed))
    data = pl.concat([p.select("id", "text", "label", "source", "group") for p in parts])
    data = data.unique(subset="text", keep="first", maintain_order=True)
    if cached_only:
        from synthfilter.lm_features import LMFeatures

        _, hit = LMFeatures().lookup(data["text"].to_list())
        data = data.filter(pl.Series(hit))
    return data.with_columns(pl.col("group").map_elements(cascade_split, return_dtype=pl.String).alias("split"))


def metrics(y: np.ndarray, score: np.ndarray, p: np.ndarray | None = None) -> dict:
    from sklearn.metrics import roc_auc_score

    out = {"n": int(y.size), "auroc": round(float(roc_auc_score(y, score)), 4),
           "tpr_at_1pct_fpr": round(float(tpr_at_fpr(y, score, 0.01)), 4)}
    if p is not None:
        out["ece"] = round(float(expected_calibration_error(y, p)), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-source", type=int, default=400, help="held-out paragraphs per source")
    ap.add_argument("--smollm2", type=int, default=600, help="SmolLM2 paragraphs at most")
    ap.add_argument("--smollm2-prompts", type=int, default=CASCADE_V1_PROMPTS,
                    help="use the SmolLM2 generations of the first N prompts of its seeded list")
    ap.add_argument("--fast-model", default="default", help="fast detector folder (default: the shipped one)")
    ap.add_argument("--heldout", type=Path, default=HELDOUT, help="the fast detector's held-out split")
    ap.add_argument("--cached-only", action="store_true",
                    help="only texts whose LM features are cached (quick, but depends on the cache: not reproducible)")
    ap.add_argument("--target-fraction", type=float, default=0.3)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / DEFAULT_CASCADE_NAME)
    args = ap.parse_args(argv)
    started, load_start = time.time(), os.getloadavg()

    data = cascade_data(args.per_source, args.smollm2, args.seed, heldout=args.heldout,
                        cached_only=args.cached_only, smollm2_prompts=args.smollm2_prompts)
    counts = {f"{s}/{sp}": n for s, sp, n in data.group_by("source", "split").len().sort("source", "split").rows()}
    log(f"{data.height} records: {counts}")
    train, calib, test = (data.filter(pl.col("split") == s) for s in ("train", "calib", "test"))
    cascade = CascadeDetector(fast_model=args.fast_model, target_fraction=args.target_fraction, C=args.C,
                              lm_threads=args.threads, seed=args.seed)
    cascade.fit(train["text"].to_list(), train["label"].to_numpy(), calib_texts=calib["text"].to_list(),
                calib_y=calib["label"].to_numpy(), calib_groups=calib["group"].to_list(), show_progress=True)
    log(f"band {cascade.band_}, {cascade.calibration_band_fraction_:.3f} of the calibration split in it")

    texts, y = test["text"].to_list(), test["label"].to_numpy().astype(int)
    raw = cascade.fast_().decision_function(texts)
    result: dict = {"records": counts}
    for mode in MODES:
        out = cascade.score(texts, raw=raw, mode=mode)
        entry = {"all": metrics(y, out.synthetic_score, out.p_synthetic), "lm_fraction": round(out.lm_fraction, 4)}
        for source in sorted(set(test["source"]) - {"brown", "spamassassin", "sharegpt_human"}):
            mask = (test["source"].to_numpy() == source) | (y == 0)
            entry[source] = metrics(y[mask], out.synthetic_score[mask])
        result[mode] = entry
        log(f"{mode}: {json.dumps(entry)}")
    metadata = {
        "data": f"{args.heldout.parent.name} held-out split (per-source sample); "
                "split by document group 40/30/30 (train/calib/test)",
        "per_source": args.per_source, "cached_only": args.cached_only, "split_salt": SPLIT_SALT,
        "smollm2_prompts": args.smollm2_prompts,
        "test_metrics": result,
        "note": f"the fast detector {args.heldout.parent.name} never trained or calibrated on these records",
        "load_average_start": [round(v, 2) for v in load_start],
        "wall_seconds": round(time.time() - started, 1),
    }
    cascade.save(args.out, metadata=metadata)
    log(f"wrote {args.out} ({cascade.model_id_})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
