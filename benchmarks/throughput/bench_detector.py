"""The origin detector's per-record features: vectorised code against the per-text loops it replaced.

    python benchmarks/throughput/bench_detector.py --sizes 5000 20000

Real paragraphs (ShareGPT turns, drawn with seed 0) through the shipped
detector's ``decision_function``, once with this checkout's code and once
with the feature code of ``--baseline-ref`` (the commit before the
vectorisation; its ``features``, ``ngram`` and ``trees`` modules are loaded
from git into private modules and swapped into a copy of the detector), in
the same run. Prints JSON lines, one per size as it finishes and one with
everything: seconds and records/s per block (style statistics, char and word
n-gram hashing, n-gram likelihoods, tree walk) and in total, the speed-up,
whether the scores are identical, and the load average beside each figure.
Embeddings go to a temporary cache, filled before the timed runs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import synthfilter.origin as origin
from synthfilter.data.sharegpt import load_sharegpt

ROOT = Path(__file__).resolve().parents[2]
#: The last commit with the per-text loops (before the vectorised features).
BASELINE_REF = "22e8481"


def _load_old(ref: str, module: str, name: str, replace: dict[str, str]):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:synthfilter/{module}.py"],
                            check=True, capture_output=True, text=True).stdout
    for old, new in replace.items():
        source = source.replace(old, new)
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    exec(compile(source, f"{ref}:synthfilter/{module}.py", "exec"), mod.__dict__)
    return mod


def baseline_detector(model, ref: str):
    """A copy of ``model`` whose feature blocks and trees run the code of ``ref``."""
    old_ngram = _load_old(ref, "ngram", "_baseline_ngram", {})
    old_features = _load_old(ref, "features", "_baseline_features",
                             {"from synthfilter.ngram import": "from _baseline_ngram import"})
    old_trees = _load_old(ref, "trees", "_baseline_trees", {})
    old = copy.copy(model)
    for name in ("ngrams_", "word_ngrams_"):
        new = getattr(model, name)
        feats = old_features.HashedNgramFeatures(new.analyzer, new.ngram_range, new.n_features)
        feats.idf_ = new.idf_
        setattr(old, name, feats)
    old.lm_ = old_features.NGramLikelihoodFeatures.from_arrays(model.lm_.to_arrays(), model.lm_.orders, model.lm_.seed)
    t = model.trees_
    old.trees_ = old_trees.TreeEnsemble(nodes=t.nodes, roots=t.roots, baseline=t.baseline, n_features=t.n_features)
    return old, old_features.style_statistics


@contextlib.contextmanager
def _style(function):
    saved = origin.style_statistics
    origin.style_statistics = function
    try:
        yield
    finally:
        origin.style_statistics = saved


def _timed(fn):
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, load


def blocks(model, style, texts: list[str]) -> tuple[dict, np.ndarray]:
    """Seconds per block and the scores of one detector on ``texts``."""
    out = {}
    for name, fn in [
        ("style_statistics", lambda: style(texts)),
        ("char_ngrams", lambda: model.ngrams_.transform(texts)),
        ("word_ngrams", lambda: model.word_ngrams_.transform(texts)),
        ("ngram_likelihood", lambda: model.lm_.transform(texts)),
    ]:
        _, seconds, load = _timed(fn)
        out[name] = {"seconds": round(seconds, 3), "records_per_s": round(len(texts) / seconds, 1), "load_1min": load}
    with _style(style):
        sparse, dense = model._blocks(texts)
    x = origin._tree_inputs(np.asarray(sparse @ model.ngram_coef_, dtype=np.float64).ravel() + model.ngram_intercept_, dense)
    _, seconds, load = _timed(lambda: model.trees_.decision_function(x))
    out["tree_walk"] = {"seconds": round(seconds, 3), "records_per_s": round(len(texts) / seconds, 1), "load_1min": load}
    with _style(style):
        scores, seconds, load = _timed(lambda: model.decision_function(texts))
    out["decision_function"] = {"seconds": round(seconds, 3), "records_per_s": round(len(texts) / seconds, 1),
                                "load_1min": load}
    return out, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    ap.add_argument("--baseline-ref", default=BASELINE_REF)
    args = ap.parse_args()
    # A private embedding cache, warmed before timing: both detectors read the same vectors.
    os.environ["SYNTHFILTER_CACHE"] = tempfile.mkdtemp(prefix="bench-detector-")
    model = origin.load_model()
    old_model, old_style = baseline_detector(model, args.baseline_ref)
    texts = load_sharegpt()["text"].to_list()
    order = np.random.default_rng(0).permutation(len(texts))
    encoder = model._encoder()
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                          "load_avg_at_start": os.getloadavg()},
              "baseline_ref": args.baseline_ref, "available_texts": len(texts)}
    warm = [texts[i] for i in order[:200]]
    blocks(model, origin.style_statistics, warm)  # warm-up: tables, caches, imports
    blocks(old_model, old_style, warm)
    for n in args.sizes:
        sample = [texts[i] for i in order[:n]]
        encoder.encode(sample)  # the embedding cache is shared; both runs read it warm
        new, new_scores = blocks(model, origin.style_statistics, sample)
        old, old_scores = blocks(old_model, old_style, sample)
        result[f"n={n}"] = {
            "new": new,
            "baseline": old,
            "speedup": {k: round(old[k]["seconds"] / new[k]["seconds"], 2) for k in new},
            "scores_identical": bool(np.array_equal(new_scores, old_scores)),
            "max_abs_score_difference": float(np.abs(new_scores - old_scores).max()),
        }
        print(json.dumps({f"n={n}": result[f"n={n}"], "load_avg": os.getloadavg()}), flush=True)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
