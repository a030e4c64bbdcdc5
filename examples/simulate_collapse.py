"""Model collapse, generation by generation, and what stops it.

Runs the full comparison of ``synthfilter simulate``:

1. the reference simulations (recursive Gaussian and Zipf-unigram fits) under
   replace / fixed real share / accumulate / cap-plus-keep-rare, checked
   against the published figures (README, "Simulating collapse");
2. the text simulation: a Kneser-Ney trigram model trained for 10 generations
   on Brown corpus paragraphs and its own output, under every text regime,
   synthfilter's rebuild (real detector in the loop) and the oracle included,
   checked against the acceptance criteria of issue #6.

Writes CSV tables and PNG plots to ``--out-dir`` (default ``simulate-output``)
and prints a summary; exits 0 whatever the verdicts, which it reports.

Usage::

    python examples/simulate_collapse.py [--out-dir DIR] [--generations 10] [--seed 0] [--quick] [--no-monitor]

``--quick`` shrinks every size (a smoke run of about a minute).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

from synthfilter.io import atomic_path
from synthfilter.origin import default_model_path
from synthfilter.rebuild import RebuildPolicy
from synthfilter.simulate import (
    TextSimulationConfig,
    make_regime,
    run_text_simulation,
    simulate_gaussian,
    simulate_unigram,
)
from synthfilter.simulate.plots import plot_simulation

GAUSSIAN = [("replace", None), ("fixed_real", 0.1), ("fixed_real", 0.2), ("fixed_real", 0.5), ("accumulate", None),
            ("cap_keep_rare", 0.2)]
ZIPF = [("replace", None), ("fixed_real", 0.8), ("accumulate", None), ("cap_keep_rare", 0.8)]


def _write_csv(table: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.write_csv(tmp, float_precision=6)


def _value(table: pl.DataFrame, regime: str, generation: int, column: str) -> float:
    return table.filter((pl.col("regime") == regime) & (pl.col("generation") == generation))[column].item()


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def reference(out: Path, seed: int, quick: bool) -> None:
    runs_g, runs_z = (300, 4) if quick else (2000, 20)
    gens = 200
    tables = []
    for name, share in GAUSSIAN:
        kw = {"real_share": share} if share is not None else {}
        label = name if share is None else f"{name}:{share:g}"
        tables.append(simulate_gaussian(name, generations=gens, n_runs=runs_g, seed=seed, **kw)
                      .with_columns(regime=pl.lit(label)))
    gauss = pl.concat(tables)
    _write_csv(gauss, out / "simulate-gaussian.csv")
    plot_simulation(gauss, "gaussian", out / "simulate-gaussian.png", title="Recursive Gaussian fit, 100 samples")
    print(f"\nGaussian, {runs_g} runs, median sigma (reference figure, +-0.05):")
    checks = [("replace", 10, 0.89), ("replace", 50, 0.58), ("replace", 100, 0.35), ("replace", 200, 0.13),
              ("fixed_real:0.1", 200, 0.87), ("fixed_real:0.2", 200, 0.93), ("fixed_real:0.5", 200, 0.975),
              ("accumulate", 200, 0.986)]
    for regime, t, ref in checks:
        got = _value(gauss, regime, t, "sigma_median")
        print(f"  {regime:<16} t={t:<4} {got:.3f}  (ref {ref})  {_verdict(abs(got - ref) <= 0.05)}")
    print(f"  cap_keep_rare:0.2 t=200 {_value(gauss, 'cap_keep_rare:0.2', 200, 'sigma_median'):.3f}")

    tables = []
    for name, share in ZIPF:
        kw = {"real_share": share} if share is not None else {}
        label = name if share is None else f"{name}:{share:g}"
        tables.append(simulate_unigram(name, generations=gens, n_runs=runs_z, seed=seed, **kw)
                      .with_columns(regime=pl.lit(label)))
    zipf = pl.concat(tables)
    _write_csv(zipf, out / "simulate-zipf.csv")
    plot_simulation(zipf, "zipf", out / "simulate-zipf.png", title="Recursive unigram fit, Zipf(1.1), 10k types")
    print(f"\nZipf unigram, {runs_z} runs (reference figure, +-0.05):")
    for t, kept, rare in [(10, 0.39, 0.28), (50, 0.15, 0.07), (200, 0.05, 0.02)]:
        a, b = _value(zipf, "replace", t, "types_kept"), _value(zipf, "replace", t, "rare_kept")
        print(f"  replace t={t:<4} types {a:.3f} (ref {kept})  rare {b:.3f} (ref {rare})  "
              f"{_verdict(abs(a - kept) <= 0.05 and abs(b - rare) <= 0.05)}")
    lost = 1 - _value(zipf, "fixed_real:0.8", gens, "rare_kept")
    print(f"  80% real: rare types lost {lost:.3f} (ref 0.10)  {_verdict(abs(lost - 0.10) <= 0.05)}")
    kept = _value(zipf, "cap_keep_rare:0.8", gens, "types_kept")
    tv = _value(zipf, "cap_keep_rare:0.8", gens, "tv_to_gen0")
    print(f"  80% real + rare: types kept {kept:.5f} (ref 1.0), TV {tv:.4f} (ref 0.037)")


def text(out: Path, seed: int, generations: int, quick: bool, monitor: bool = True) -> None:
    sizes = {"n_gold": 500, "n_test": 200, "n_holdout": 100, "n_fresh": 100, "n_synthetic": 500} if quick else {}
    # monitor: synthfilter's diversity metrics of each generation's samples against gold (about 1 s each).
    config = TextSimulationConfig(generations=generations, seed=seed, monitor=monitor, **sizes)
    policy = RebuildPolicy(max_synthetic=0.2, seed=seed)  # rebuild's defaults: max_p 0.9, keep_rare 0.95
    # The same cap filled with model samples whatever the detector says of them (--max-p 1).
    fill = RebuildPolicy(max_synthetic=0.2, max_p=1.0, seed=seed)
    regimes = [make_regime(name) for name in ("replace", "naive_mix", "gold_mix", "accumulate")]
    regimes.append(make_regime("synthfilter", policy=policy))  # detector fitted in the loop
    regimes.append(make_regime("synthfilter", policy=fill, name="synthfilter_fill"))
    if (default_model_path() / "model.json").is_file():  # the shipped detector, zero-shot on n-gram text
        regimes.append(make_regime("synthfilter", policy=policy, detector="shipped", name="synthfilter_shipped"))
    else:
        print("  (no shipped detector at models/: skipping synthfilter_shipped)")
    regimes.append(make_regime("oracle", policy=policy))
    regimes.append(make_regime("oracle", policy=fill, name="oracle_fill"))
    started = time.perf_counter()

    def tick(name: str, t: int) -> None:
        print(f"  {name} generation {t} done at {time.perf_counter() - started:.0f} s", flush=True)

    print(f"\nText simulation, {generations} generations:")
    result = run_text_simulation(regimes, config, progress=tick)
    table = result.table
    _write_csv(table, out / "simulate-text.csv")
    plot_simulation(table, "text", out / "simulate-text.png", title="Trigram LM trained on its own output")
    monitor_cols = [c for c in ("monitor_recall", "monitor_tail_recall") if c in table.columns]
    last = table.filter(pl.col("generation") == generations).select(
        "regime", "perplexity_ratio", "rare_kept", "types_kept", "distinct_2", "tv_unigram", "synthetic_share",
        "n_train", *monitor_cols)
    with pl.Config(tbl_rows=20, tbl_cols=12, tbl_width_chars=170, float_precision=3):
        print(last)
    t = generations
    r_rare, r_ppl = _value(table, "replace", t, "rare_kept"), _value(table, "replace", t, "perplexity_ratio")
    print(f"replace: rare types lost {1 - r_rare:.1%} (need >= 50%), perplexity +{r_ppl - 1:.1%} (need >= 30%): "
          f"{_verdict(1 - r_rare >= 0.5 and r_ppl >= 1.3)}")
    for regime in [r.name for r in regimes if r.name.startswith(("synthfilter", "oracle"))]:
        rare, ppl = _value(table, regime, t, "rare_kept"), _value(table, regime, t, "perplexity_ratio")
        later = table.filter((pl.col("regime") == regime) & (pl.col("generation") > 0))
        worst = later["perplexity_ratio"].max()
        share = later["synthetic_share"].mean()
        print(f"{regime}: rare types kept {rare:.1%} (need >= 95%), perplexity {ppl - 1:+.1%} at generation {t}, "
              f"{worst - 1:+.1%} at worst (need within 10% throughout), mean true synthetic share {share:.3f}: "
              f"{_verdict(rare >= 0.95 and abs(ppl - 1) <= 0.10 and abs(worst - 1) <= 0.10)}")
    print(f"text simulation took {result.info['seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path("simulate-output"))
    parser.add_argument("--generations", type=int, default=10, help="text generations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-monitor", action="store_true",
                        help="skip the monitor metrics of each generation's samples (k-NN recall, tail recall, MMD)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reference(args.out_dir, args.seed, args.quick)
    text(args.out_dir, args.seed, args.generations, args.quick, monitor=not args.no_monitor)
    print(f"\nAll done in {time.perf_counter() - started:.0f} s; tables and plots in {args.out_dir}/")


if __name__ == "__main__":
    main()
