"""Share estimate under a human-domain shift, with and without a gold human sample.

    PYTHONPATH=. python benchmarks/share/bench_domain_shift.py                  # shipped model
    PYTHONPATH=. python benchmarks/share/bench_domain_shift.py --model M --machine-sources gemma \\
        --out benchmarks/share/results/domain_shift_logo_gemma.json            # a generator left out

Mixes of known synthetic share (0, 0.1, 0.3, 0.6 by default; several seeds
each) are drawn from

* human text of a domain the detector never trained on: chitchat (human chat,
  2018; PyPI ``chitchat-dataset``) paragraphs, from one half of the
  conversations; and, as an in-domain control, the detector's held-out human
  paragraphs (``heldout-humans``);
* machine text from the model's held-out split (``heldout_test.parquet``):
  generators the shipped model *did* train on (other paragraphs of them). With
  ``--machine-sources gemma`` and a model built without Gemma, the machine
  side is a generator the model never saw.

Each mix is estimated five ways: the calibration split's correction (what
``score`` does without ``--reference``), the gold-human correction and the
gold-mixture correction (``ShareCalibration.with_gold_mixture``: the share as
a mixture proportion against the gold, no machine side) with a gold sample
drawn from the *other* half of the domain's conversations (documents), each
bootstrapped by document (``gold-human``, ``gold-mixture``) and by record
(``gold-human-records``, ``gold-mixture-records``, what ``score --reference``
does: the reference has no document column). The corpus bootstrap resamples documents (conversations,
held-out documents; ``score --group-column``) or records (``score`` without
one): both are run (``corpus_bootstrap``). The JSON holds every trial and,
per (domain, share, method, gold size, corpus bootstrap), the mean absolute
error, the mean signed error and the 95 % interval's coverage and width.

Scoring the pools is the only slow step (seconds with the static-encoder
shipped model; cached by the detector's score cache for re-runs).

``--cascade-mode cascade|full`` estimates with the cascade instead
(``score --detector cascade|full``): a cascade is trained here, as
``scripts/train_cascade.py`` trains the shipped one, but without the
``--machine-sources`` generators (their records are dropped from its
training and calibration splits), on top of ``--model`` (give the build
that never saw them); probabilities and the share calibration are the
cascade's. The LM features of texts not yet cached cost ~0.7 s each, so use
small pools (``--pool``, ``--size``).

    PYTHONPATH=. python benchmarks/share/bench_domain_shift.py --model ~/.cache/synthfilter/bench/origin-no-gemma \
        --machine-sources gemma --cascade-mode full --domains chitchat --size 200 --pool 240 \
        --gold-sizes 100 --out benchmarks/share/results/domain_shift_logo_gemma_full.json
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from synthfilter.cache import CachedDetector  # noqa: E402
from synthfilter.data.chitchat import load_chitchat  # noqa: E402
from synthfilter.origin import load_model  # noqa: E402
from synthfilter.share import ShareCalibration, estimate_share  # noqa: E402

HELDOUT = ROOT / "models" / "origin-v4" / "heldout_test.parquet"


def split_by_group(frame: pl.DataFrame, seed: int, gold_fraction: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two document-disjoint pools: (corpus pool, gold pool)."""
    groups = np.array(sorted(set(frame.get_column("group").to_list())))
    np.random.default_rng(seed).shuffle(groups)
    gold_groups = set(groups[: int(round(gold_fraction * groups.size))].tolist())
    is_gold = frame.get_column("group").is_in(list(gold_groups))
    return frame.filter(~is_gold), frame.filter(is_gold)


def cap(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    return frame if frame.height <= n else frame.sample(n, seed=seed)


def probabilities(model, texts: list[str]) -> np.ndarray:
    if isinstance(model, CascadeScorer):
        return model.probabilities(texts)
    raw = np.asarray(CachedDetector(model).decision_function(texts), dtype=np.float64)
    return model.calibrate(raw)


class CascadeScorer:
    """A cascade trained without some generators, scored in one mode (``probabilities`` takes it)."""

    def __init__(self, fast, mode: str, exclude: list[str], seed: int = 0) -> None:
        sys.path.insert(0, str(ROOT / "scripts"))
        from train_cascade import cascade_data

        from synthfilter.cascade import CascadeDetector

        data = cascade_data(seed=seed, cached_only=True).filter(~pl.col("source").is_in(exclude))
        train, calib = (data.filter(pl.col("split") == name) for name in ("train", "calib"))
        self.cascade = CascadeDetector(fast_model=fast, seed=seed, lm_threads=2).fit(
            train["text"].to_list(), train["label"].to_numpy(), calib_texts=calib["text"].to_list(),
            calib_y=calib["label"].to_numpy(), calib_groups=calib["group"].to_list())
        self.mode = mode
        self.share_calibration_ = self.cascade.share_calibration(mode)
        self.model_id_ = f"cascade without {','.join(exclude) or 'nothing'} on {fast.model_id_} ({mode})"
        self.lm_fraction: list[float] = []

    def probabilities(self, texts: list[str]) -> np.ndarray:
        result = self.cascade.score(texts, mode=self.mode, show_progress=True)
        self.lm_fraction.append(result.lm_fraction)
        return result.p_synthetic


def summarise(trials: list[dict]) -> list[dict]:
    frame = pl.DataFrame(trials, infer_schema_length=None)
    out = (
        frame.with_columns(
            err=(pl.col("estimate") - pl.col("true_share")),
            covered=(pl.col("low") <= pl.col("true_share")) & (pl.col("true_share") <= pl.col("high")),
            width=pl.col("high") - pl.col("low"),
        )
        .group_by("domain", "corpus_bootstrap", "true_share", "method", "gold_size", maintain_order=True)
        .agg(
            trials=pl.len(),
            mean_abs_error=pl.col("err").abs().mean().round(4),
            mean_signed_error=pl.col("err").mean().round(4),
            coverage=pl.col("covered").mean().round(3),
            mean_width=pl.col("width").mean().round(4),
        )
    )
    return out.to_dicts()


def overall(trials: list[dict]) -> list[dict]:
    frame = pl.DataFrame(trials, infer_schema_length=None).with_columns(
        err=(pl.col("estimate") - pl.col("true_share")).abs(),
        covered=(pl.col("low") <= pl.col("true_share")) & (pl.col("true_share") <= pl.col("high")),
    )
    return (
        frame.group_by("domain", "corpus_bootstrap", "method", "gold_size", maintain_order=True)
        .agg(trials=pl.len(), mean_abs_error=pl.col("err").mean().round(4), max_abs_error=pl.col("err").max().round(4),
             coverage=pl.col("covered").mean().round(3))
        .to_dicts()
    )


def dump(result: dict) -> str:
    """JSON with one line per trial (the rest indented)."""
    rest = {k: v for k, v in result.items() if k != "trials"}
    body = json.dumps(rest, indent=1)
    trials = ",\n".join("  " + json.dumps(t) for t in result["trials"])
    return body[:-2] + ',\n "trials": [\n' + trials + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="Detector folder (default: the shipped origin-v4).")
    ap.add_argument("--heldout", type=Path, default=HELDOUT, help="Held-out split with machine text (label 1).")
    ap.add_argument("--machine-sources", nargs="*", default=None,
                    help="Machine sources of the held-out split to mix in (default: all).")
    ap.add_argument("--machine-corpus", type=Path, default=None,
                    help="Take the --machine-sources records from this built corpus, every split (e.g. "
                         "logo_third_generator.py's corpus_<variant>.parquet): for a model built without those "
                         "generators all their text is unseen, which gives larger pools than the held-out split.")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.3, 0.6])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--size", type=int, default=1000, help="Records per mix.")
    ap.add_argument("--gold-sizes", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--domains", nargs="+", default=["chitchat", "heldout-humans"])
    ap.add_argument("--pool", type=int, default=4000, help="Most records scored per human pool.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "share" / "results" / "domain_shift.json")
    ap.add_argument("--cascade-mode", choices=["cascade", "full"], default=None,
                    help="Estimate with a cascade trained here without --machine-sources (see above).")
    args = ap.parse_args(argv)

    started = time.time()
    load_before = os.getloadavg()
    model = load_model(args.model)
    base: ShareCalibration = model.share_calibration_
    heldout = pl.read_parquet(args.heldout)
    machine = heldout.filter(pl.col("label") == 1)
    if args.machine_corpus is not None:  # every split: a model built without these generators saw none of it
        if not args.machine_sources:
            raise SystemExit("--machine-corpus needs --machine-sources (the generators the model never saw)")
        machine = pl.read_parquet(args.machine_corpus).filter(pl.col("label") == 1)
    if args.machine_sources:
        machine = machine.filter(pl.col("source").is_in(args.machine_sources))
    if args.cascade_mode:
        model = CascadeScorer(model, args.cascade_mode, exclude=args.machine_sources or [])
        base = model.share_calibration_
        machine = cap(machine, args.pool, 3)
    p_machine = probabilities(model, machine.get_column("text").to_list())
    g_machine = machine.get_column("group").to_numpy()
    print(f"{model.model_id_}: machine pool {machine.height} ({sorted(set(machine['source'].to_list()))}), "
          f"mean p {p_machine.mean():.3f}; calibration m1 {base.mean_machine:.3f}, m0 {base.mean_human:.3f}",
          flush=True)

    pools: dict[str, dict] = {}
    for domain in args.domains:
        if domain == "chitchat":
            humans = load_chitchat()
        elif domain == "heldout-humans":
            humans = heldout.filter(pl.col("label") == 0)
        else:
            raise SystemExit(f"unknown domain {domain!r}")
        corpus_pool, gold_pool = split_by_group(humans, seed=0, gold_fraction=0.4)
        corpus_pool, gold_pool = cap(corpus_pool, args.pool, 1), cap(gold_pool, args.pool // 2, 2)
        pools[domain] = {
            "p": probabilities(model, corpus_pool.get_column("text").to_list()),
            "g": corpus_pool.get_column("group").to_numpy(),
            "p_gold": probabilities(model, gold_pool.get_column("text").to_list()),
            "g_gold": gold_pool.get_column("group").to_numpy(),
        }
        print(f"{domain}: corpus pool {corpus_pool.height} ({corpus_pool['group'].n_unique()} documents), "
              f"mean p {pools[domain]['p'].mean():.3f}; gold pool {gold_pool.height} "
              f"({gold_pool['group'].n_unique()} documents), mean p {pools[domain]['p_gold'].mean():.3f}", flush=True)
    scored_s = time.time() - started

    trials: list[dict] = []
    for domain, pool in pools.items():
        for share in args.shares:
            n_m = int(round(share * args.size))
            n_h = args.size - n_m
            if n_m > p_machine.size or n_h > pool["p"].size:
                raise SystemExit(f"pool too small for share {share} at size {args.size}")
            for seed in range(args.seeds):
                rng = np.random.default_rng([seed, int(share * 1000), len(domain)])
                im = rng.choice(p_machine.size, n_m, replace=False)
                ih = rng.choice(pool["p"].size, n_h, replace=False)
                p = np.r_[p_machine[im], pool["p"][ih]]
                groups = np.r_[g_machine[im], pool["g"][ih]]
                true = n_m / args.size
                golds = []
                for gold_size in args.gold_sizes:
                    ig = rng.choice(pool["p_gold"].size, min(gold_size, pool["p_gold"].size), replace=False)
                    golds.append(ig)
                for boot, corpus_groups in (("documents", groups), ("records", None)):
                    row = {"domain": domain, "corpus_bootstrap": boot, "true_share": true, "seed": seed}
                    est = estimate_share(p, base, groups=corpus_groups, seed=seed)
                    trials.append({**row, "method": "calibration-split", "gold_size": 0, "estimate": est.share,
                                   "low": est.low, "high": est.high, "naive_mean": est.naive_mean, "threshold": None})
                    for ig in golds:
                        for method, g_gold in (("gold-human", pool["g_gold"][ig]), ("gold-human-records", None),
                                               ("gold-mixture", pool["g_gold"][ig]), ("gold-mixture-records", None)):
                            with_gold = base.with_gold_mixture if method.startswith("gold-mixture") else \
                                base.with_gold_human
                            cal = with_gold(pool["p_gold"][ig], groups=g_gold)
                            est = estimate_share(p, cal, groups=corpus_groups, seed=seed)
                            trials.append({**row, "method": method, "gold_size": int(ig.size), "estimate": est.share,
                                           "low": est.low, "high": est.high, "naive_mean": est.naive_mean,
                                           "threshold": est.threshold})
    result = {
        "benchmark": "share estimate under a human-domain shift (benchmarks/share/bench_domain_shift.py)",
        "command": "python benchmarks/share/bench_domain_shift.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": model.model_id_,
        "machine_sources": sorted(set(machine["source"].to_list())),
        "machine_pool": int(machine.height),
        "machine_corpus": None if args.machine_corpus is None else str(args.machine_corpus),
        "calibration": {"m1": round(base.mean_machine, 4), "m0": round(base.mean_human, 4)},
        "pools": {d: {"corpus_pool": int(v["p"].size), "corpus_mean_p": round(float(v["p"].mean()), 4),
                      "gold_pool": int(v["p_gold"].size), "gold_mean_p": round(float(v["p_gold"].mean()), 4)}
                  for d, v in pools.items()},
        "settings": {"shares": args.shares, "seeds": args.seeds, "size": args.size, "gold_sizes": args.gold_sizes,
                     "n_bootstrap": 1000,
                     "gold_split": "40% of the domain's documents, disjoint from the mixes' documents"},
        "summary": summarise(trials),
        "overall": overall(trials),
        "trials": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in t.items()} for t in trials],
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "load_average_before": [round(x, 2) for x in load_before],
                        "load_average_after": [round(x, 2) for x in os.getloadavg()],
                        "scoring_s": round(scored_s, 1), "total_s": round(time.time() - started, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(result))
    for row in result["overall"]:
        print(row)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
