"""Does another training generator help the fast detector find one it never saw?

    PYTHONPATH=. nice -n 19 python benchmarks/origin/logo_third_generator.py \\
        --work ~/.cache/synthfilter/bench/logo3 --out benchmarks/origin/results/logo_third_generator_v4.json \\
        --variants gemma_smollm2 chatgpt_smollm2 chatgpt_gemma all_three   # all_three: re-make origin-v4

Builds of the fast detector made by ``models/build_origin_model.py
--skip-loso`` with the shipped model's settings, per-source count, seed and
generations (the Gemma continuations of the first ``--gemma-prompts`` and the
SmolLM2 generations of the first ``--smollm2-prompts`` prompts of their
seeded lists; ``scripts/generate_gemma.py`` / ``generate_smollm2.py
--prompts N`` make them), on the same human sources, differing only in their
machine sources (``--variants``):

- ``chatgpt_only``: ChatGPT is the only machine source;
- ``chatgpt_smollm2``: ChatGPT and SmolLM2 (Gemma left out);
- ``smollm2_only``: SmolLM2 alone (neither ChatGPT nor Gemma);
- ``chatgpt_gemma``: ChatGPT and Gemma (SmolLM2 left out; origin-v3's sources);
- ``gemma_smollm2``: Gemma and SmolLM2 (ChatGPT left out);
- ``all_three``: the shipped origin-v4's corpus.

Every source's records go to the split of their document group
(``synthfilter.data.corpus.assign_splits``; a generation's group is its
prompt's document), so none of the train or calibration records shares a
document with a test record.

Each build, origin-v3 (ChatGPT and re-made Gemma of another llama.cpp build)
and origin-v4 are tested on each generator of origin-v4's held-out split
(``models/origin-v4/heldout_test.parquet``), marked seen or not (the figure
that matters is the unseen one; the seen ones are the in-distribution
reference), against that split's human paragraphs, all of them and the
clean ones (Brown, SpamAssassin; the ShareGPT user turns often paste model
output). AUROC and TPR at 1 % FPR rank by the uncalibrated
``synthetic_score``; the generator's mean calibrated ``p_synthetic``, its
share at ``p_synthetic >= 0.5`` and the humans' false-positive rate there
show the threshold. (Result files written before origin-v4 used origin-v3's
held-out split plus the test-split SmolLM2 paragraphs, and appended the
SmolLM2 records to the corpus without its per-source draw.)

The models are written under ``--work`` (not shipped), in folders named by
a digest of their training corpus, so a build is reused only for the same
records; a build took 1.5-2 minutes on the 2 cores here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from synthfilter.data.corpus import build_corpus, write_corpus  # noqa: E402
from synthfilter.data.schema import HUMAN_SOURCES  # noqa: E402
from synthfilter.data import gemma, smollm2  # noqa: E402
from synthfilter.evaluation import tpr_at_fpr  # noqa: E402
from synthfilter.origin import load_model  # noqa: E402

ORIGIN_V3 = ROOT / "models" / "origin-v3"
HELDOUT = ROOT / "models" / "origin-v4" / "heldout_test.parquet"
CLEAN_HUMANS = ("brown", "spamassassin")


GENERATORS = ("gemma", "sharegpt_chatgpt", "smollm2")
HUMANS = HUMAN_SOURCES
#: Machine sources of each build; the ones with Gemma need the Gemma generation cache.
VARIANTS: dict[str, tuple[str, ...]] = {
    "chatgpt_only": ("sharegpt_chatgpt",),
    "chatgpt_smollm2": ("sharegpt_chatgpt", "smollm2"),
    "smollm2_only": ("smollm2",),
    "chatgpt_gemma": ("sharegpt_chatgpt", "gemma"),
    "gemma_smollm2": ("gemma", "smollm2"),
    "all_three": ("sharegpt_chatgpt", "gemma", "smollm2"),
}
DEFAULT_VARIANTS = ("gemma_smollm2", "chatgpt_smollm2", "chatgpt_gemma")




def training_corpus(machines: tuple[str, ...], per_source: int, seed: int, smollm2_prompts: int,
                    gemma_prompts: int) -> pl.DataFrame:
    """The human sources and ``machines``, drawn as the shipped model's build draws them.

    ``all_three`` is the shipped build's corpus; each other variant is it without one or two generators.
    """
    return build_corpus(per_source=per_source, seed=seed, sources=[*HUMANS, *machines],
                        gemma_prompts=gemma_prompts, smollm2_prompts=smollm2_prompts)


def build(name: str, corpus: pl.DataFrame, work: Path, per_source: int, seed: int) -> tuple[Path, float | None]:
    """Build (or reuse) the model folder for ``corpus``; the build's wall time when it ran."""
    digest = hashlib.sha256("\n".join(corpus["id"].to_list()).encode()).hexdigest()[:10]
    out = work / f"{name}-{digest}"
    if (out / "model.json").is_file():
        print(f"{name}: reusing {out}", flush=True)
        return out, None
    path = work / f"corpus_{name}.parquet"
    write_corpus(corpus, path)
    print(f"{name}: {corpus.height} records -> {path}", flush=True)
    start = time.perf_counter()
    with open(work / f"build_{name}.log", "w") as log:
        code = subprocess.call([sys.executable, str(ROOT / "models" / "build_origin_model.py"), "--corpus", str(path),
                                "--out", str(out), "--per-source", str(per_source), "--seed", str(seed),
                                "--skip-loso"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{name}: the build failed ({code}); see {work / f'build_{name}.log'}")
    return out, round(time.perf_counter() - start, 1)


def test_records() -> pl.DataFrame:
    """The shipped detector's held-out split (all three generators)."""
    return pl.read_parquet(HELDOUT)


def by_generator(model_dir: Path, seen: tuple[str, ...], test: pl.DataFrame) -> dict:
    """Each generator of ``test`` against its humans, for one model."""
    from sklearn.metrics import roc_auc_score

    model = load_model(model_dir)
    humans = test.filter(pl.col("label") == 0)
    all_scores = model.decision_function(humans["text"].to_list())  # each text scored once
    human_scores = {"all_humans": all_scores,
                    "clean_humans": all_scores[humans["source"].is_in(CLEAN_HUMANS).to_numpy()]}
    out: dict = {"model_id": model.model_id_}
    for gen in GENERATORS:
        machine = test.filter(pl.col("source") == gen)
        m_score = model.decision_function(machine["text"].to_list())
        m_p = model.calibrate(m_score)
        entry: dict = {"seen": gen in seen, "n_machine": machine.height, "mean_p": round(float(m_p.mean()), 4),
                       "tpr_at_0.5": round(float((m_p >= 0.5).mean()), 4)}
        for name, h_score in human_scores.items():
            y = np.r_[np.ones(m_score.size), np.zeros(h_score.size)]
            score = np.r_[m_score, h_score]
            entry[name] = {"n_human": int(h_score.size), "auroc": round(float(roc_auc_score(y, score)), 4),
                           "tpr_at_1pct_fpr": round(tpr_at_fpr(y, score, 0.01), 4),
                           "human_fpr_at_0.5": round(float((model.calibrate(h_score) >= 0.5).mean()), 4)}
        out[gen] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="Folder for the corpora, logs and models (outside git).")
    ap.add_argument("--out", type=Path, default=None, help="JSON result file.")
    ap.add_argument("--per-source", type=int, default=9000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smollm2-prompts", type=int, default=smollm2.ORIGIN_V4_PROMPTS,
                    help="SmolLM2 generations of the first N prompts of its seeded list (scripts/generate_smollm2.py)")
    ap.add_argument("--gemma-prompts", type=int, default=gemma.ORIGIN_V4_PROMPTS,
                    help="Gemma continuations of the first N prompts of its seeded list (scripts/generate_gemma.py)")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(DEFAULT_VARIANTS),
                    help="builds to make (those with gemma need its generation cache)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
                    "per_source": args.per_source, "seed": args.seed, "smollm2_prompts": args.smollm2_prompts,
                    "gemma_prompts": args.gemma_prompts}
    built = {name: training_corpus(VARIANTS[name], args.per_source, args.seed, args.smollm2_prompts,
                                   args.gemma_prompts) for name in args.variants}
    result["training_records"] = {
        name: {f"{s}/{sp}": n for s, sp, n in c.group_by("source", "split").len().sort("source", "split").rows()}
        for name, c in built.items()}
    test = test_records()
    result["by_generator"] = {"origin-v3": by_generator(ORIGIN_V3, VARIANTS["chatgpt_gemma"], test),
                              "origin-v4": by_generator(HELDOUT.parent, VARIANTS["all_three"], test)}
    result["build_seconds"] = {}
    for name, corpus in built.items():
        folder, seconds = build(name, corpus, args.work, args.per_source, args.seed)
        result["build_seconds"][name] = seconds
        result["by_generator"][name] = by_generator(folder, VARIANTS[name], test)
        print(f"{name}: {json.dumps(result['by_generator'][name])}", flush=True)
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
