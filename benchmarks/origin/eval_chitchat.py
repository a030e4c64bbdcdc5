"""The shipped detector on its held-out split plus chitchat, a human domain it never saw.

    PYTHONPATH=. python benchmarks/origin/eval_chitchat.py        # about 30 s with the static encoder
    PYTHONPATH=. python benchmarks/origin/eval_chitchat.py --model models/origin-v3 \
        --out benchmarks/origin/results/heldout_v4_plus_chitchat_origin_v3   # another model, same records

Writes ``--out`` (default ``benchmarks/origin/results/heldout_v4_plus_chitchat/``:
``metrics.json``, ``breakdown.md``; the ROC and reliability plots are left in
a temporary folder; ``pooled.json``: every generator's records against the pooled clean
human sources, Brown, SpamAssassin and chitchat, and against those plus the
ShareGPT user turns: AUROC, TPR at 1 % FPR, ECE): ``synthfilter evaluate
--model MODEL`` on ``--heldout``
(default: the shipped detector's ``heldout_test.parquet``) with 2,000
chitchat paragraphs (label 0, source ``chitchat``, seeded sample, one
document per conversation) added. The chitchat row of the per-source table
reads "how well is machine text told from chat written by people", and
its TPR at 1 % FPR sets the threshold on chitchat alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from synthfilter.cli import main as cli  # noqa: E402
from synthfilter.data.chitchat import load_chitchat  # noqa: E402

HELDOUT = ROOT / "models" / "origin-v4" / "heldout_test.parquet"
#: Human sides of the pooled figures: the clean sources (no pasted model output), and with ShareGPT user turns.
HUMAN_SIDES = {"clean: brown+spamassassin+chitchat": ["brown", "spamassassin", "chitchat"],
               "all humans (+ sharegpt user turns)": ["brown", "spamassassin", "chitchat", "sharegpt_human"]}
OUT = ROOT / "benchmarks" / "origin" / "results" / "heldout_v4_plus_chitchat"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="detector folder (default: the shipped one)")
    ap.add_argument("--heldout", type=Path, default=HELDOUT, help="labelled held-out records")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for metrics.json and breakdown.md")
    args = ap.parse_args(argv)
    heldout = pl.read_parquet(args.heldout).select("id", "text", "label", "source", "group", "split")
    chats = load_chitchat().sample(2000, seed=0).select(heldout.columns[:-1]).with_columns(split=pl.lit("chitchat"))
    data = pl.concat([heldout, chats.select(heldout.columns).cast(heldout.schema)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heldout_plus_chitchat.parquet"
        data.write_parquet(path)
        result = CliRunner().invoke(cli, ["evaluate", str(path), "--model", args.model, "-o", str(Path(tmp) / "eval")])
        print(result.output)
        if result.exit_code != 0:
            return result.exit_code
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "breakdown.md"):
            shutil.copy(Path(tmp) / "eval" / name, args.out / name)
    pooled = pooled_metrics(data, args.model)
    print(json.dumps(pooled, indent=2))
    (args.out / "pooled.json").write_text(json.dumps(pooled, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def pooled_metrics(data: pl.DataFrame, model: str) -> dict:
    """Every machine record against each human side pooled: AUROC, TPR at 1 % FPR (ranked by score), ECE (on p)."""
    from sklearn.metrics import roc_auc_score

    from synthfilter.evaluation import expected_calibration_error, tpr_at_fpr
    from synthfilter.origin import load_model

    detector = load_model(None if model == "default" else model)
    score = np.asarray(detector.decision_function(data["text"].to_list()), dtype=np.float64)
    p = detector.calibrate(score)
    y, source = data["label"].to_numpy(), data["source"].to_numpy()
    out: dict = {"model": detector.model_id_}
    for name, humans in HUMAN_SIDES.items():
        for generator in ("all", *sorted(set(source[y == 1]))):
            keep = np.isin(source, humans) | ((y == 1) & ((source == generator) | (generator == "all")))
            out.setdefault(name, {})[generator] = {
                "n_machine": int((y[keep] == 1).sum()), "n_human": int((y[keep] == 0).sum()),
                "auroc": round(float(roc_auc_score(y[keep], score[keep])), 4),
                "tpr_at_1pct_fpr": round(float(tpr_at_fpr(y[keep], score[keep], 0.01)), 4),
                "ece": round(float(expected_calibration_error(y[keep], p[keep])), 4)}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
