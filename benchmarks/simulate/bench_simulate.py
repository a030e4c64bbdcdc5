"""Speed of ``synthfilter simulate``: reference simulations, the n-gram model, the text comparison.

Targets (issue #6): 2,000 runs x 200 generations of the Gaussian in seconds;
the 3-generation text comparison of ``tests/simulate/test_text.py`` in under a
minute; the whole 10-generation comparison (``examples/simulate_collapse.py``)
in under 15 minutes on 2 cores.

Usage::

    python benchmarks/simulate/bench_simulate.py            # reference + n-gram + 3 generations
    python benchmarks/simulate/bench_simulate.py --full     # also the 10-generation text comparison

Writes ``results/simulate_benchmark.json`` beside this file (or ``--out``).
Wall times depend on what else runs on the machine; CPU times (user + system
of this process) are reported beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also run the 10-generation text comparison")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import numpy as np

    from synthfilter.ngram import NGramLM, Vocabulary, tokenize
    from synthfilter.simulate import (
        TextSimulationConfig,
        run_text_simulation,
        simulate_gaussian,
        simulate_unigram,
    )
    from synthfilter.simulate.corpus import load_human_paragraphs

    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_avg_start": os.getloadavg()}}
    for regime in ("replace", "fixed_real", "accumulate", "cap_keep_rare"):
        _, wall, cpu = _timed(lambda regime=regime: simulate_gaussian(regime, generations=200, n_runs=2000))
        results[f"gaussian_{regime}_2000x200"] = {"wall_s": wall, "cpu_s": cpu}
        _, wall, cpu = _timed(lambda regime=regime: simulate_unigram(regime, generations=200, n_runs=20))
        results[f"zipf_{regime}_20x200"] = {"wall_s": wall, "cpu_s": cpu}
        print(regime, results[f"gaussian_{regime}_2000x200"], results[f"zipf_{regime}_20x200"], flush=True)

    paragraphs = load_human_paragraphs()
    order = np.random.default_rng(0).permutation(len(paragraphs))
    train = [paragraphs[i] for i in order[:2000]]
    test = [paragraphs[i] for i in order[2000:2500]]
    vocab = Vocabulary.from_texts(paragraphs)
    model, fit_wall, _ = _timed(lambda: NGramLM(vocab).fit(train))
    _, ppl_wall, _ = _timed(lambda: model.perplexity(test))
    samples, sample_wall, _ = _timed(lambda: model.sample(2000, np.random.default_rng(1)))
    results["ngram"] = {
        "train_tokens": sum(len(tokenize(t)) + 1 for t in train), "fit_s": fit_wall,
        "perplexity_tokens": sum(len(tokenize(t)) + 1 for t in test), "perplexity_s": ppl_wall,
        "sampled_paragraphs": len(samples), "sample_s": sample_wall,
    }
    print("ngram", results["ngram"], flush=True)

    config = TextSimulationConfig(generations=3, n_gold=400, n_test=200, n_holdout=100, n_fresh=100, n_synthetic=400,
                                  n_eval_samples=200)
    _, wall, cpu = _timed(lambda: run_text_simulation(
        ["replace", "synthfilter", "oracle"], config, paragraphs=paragraphs,
        regime_options={"synthfilter": {"n_detector_samples": 300}}))
    results["text_3_generations_test_config"] = {"wall_s": wall, "cpu_s": cpu}
    print("text 3 generations", results["text_3_generations_test_config"], flush=True)

    if args.full:
        result, wall, cpu = _timed(lambda: run_text_simulation(config=TextSimulationConfig(generations=10),
                                                               paragraphs=paragraphs))
        last = result.table.filter(result.table["generation"] == 10)
        results["text_10_generations_all_regimes"] = {
            "wall_s": wall, "cpu_s": cpu, "seconds_per_regime": {
                name: round(sum(info["seconds"]), 1) for name, info in result.info["regimes"].items()},
            "generation_10": last.select("regime", "perplexity_ratio", "rare_kept", "synthetic_share").to_dicts(),
        }
        print("text 10 generations", results["text_10_generations_all_regimes"], flush=True)

    results["machine"]["load_avg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "simulate_benchmark.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
