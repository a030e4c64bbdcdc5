"""The three real-data cases of the monitor's tests, with every number printed.

On ``tests/fixtures/origin_sample.parquet`` (Brown, SpamAssassin and ShareGPT
human paragraphs; ShareGPT ChatGPT and Gemma paragraphs):

1. machine paragraphs against all human paragraphs (narrowing expected);
2. fresh human paragraphs (other groups, same sources) against the rest
   (no alarm expected);
3. all human paragraphs minus their rarest 20 % against all of them
   (tail alarm expected).

Usage::

    python benchmarks/monitor/acceptance_cases.py --encoder static
    python benchmarks/monitor/acceptance_cases.py --encoder minilm --seed 1
    python benchmarks/monitor/acceptance_cases.py --encoder minilm --splits 20   # case 2 over 20 group splits
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from synthfilter.encoders import get_encoder
from synthfilter.monitor import DiversityMonitor, get_spec
from synthfilter.monitor.neighbours import SupportSet

FIXTURE = Path(__file__).parents[2] / "tests" / "fixtures" / "origin_sample.parquet"


def split_groups(human: pl.DataFrame, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    ref_parts, fresh_parts = [], []
    for source in sorted(set(human["source"])):
        part = human.filter(pl.col("source") == source)
        groups = sorted(set(part["group"]))
        np.random.default_rng(seed).shuffle(groups)
        cut = round(len(groups) * 0.62)
        ref_parts.append(part.filter(pl.col("group").is_in(groups[:cut])))
        fresh_parts.append(part.filter(pl.col("group").is_in(groups[cut:])))
    return pl.concat(ref_parts), pl.concat(fresh_parts)


def show(result) -> None:
    print(f"  {result.name}: n={result.n} compared={result.n_compared} status={result.status} "
          f"alarms={result.alarm_groups}")
    if result.values.get("synthetic_share") is not None:
        print(f"    synthetic share {result.values['synthetic_share']:.3f} "
              f"({result.values['synthetic_share_low']:.3f}-{result.values['synthetic_share_high']:.3f})")
    for note in result.notes:
        print(f"    note: {note}")
    for name, s in result.null.items():
        flag = "  <- ALARM" if any(a.metric == name for a in result.alarms) else ""
        print(f"    {name:22s} value {result.values[name]:.4g}  null {s.mean:.4g} ± {s.std:.3g}  "
              f"bound {s.bound:.4g}  z {s.z:+.1f}{flag}")


def false_alarms(human: pl.DataFrame, encoder, splits: int) -> None:
    """Case 2 over many group splits: the largest bad-side z of each fresh batch."""
    embeddings = dict(zip(human["id"].to_list(), encoder.encode(human["text"].to_list())))
    worst = []
    for seed in range(splits):
        reference, fresh = split_groups(human, seed)
        monitor = DiversityMonitor(encoder=encoder, origin_model=None, seed=seed, projection=False)
        monitor.fit(reference["text"].to_list(), np.stack([embeddings[i] for i in reference["id"]]),
                    groups=reference["group"].to_list())
        result = monitor.check(fresh["text"].to_list(), np.stack([embeddings[i] for i in fresh["id"]]))
        bad = {k: (-s.z if get_spec(k).bad == "low" else s.z) for k, s in result.null.items() if s.z is not None}
        name = max(bad, key=bad.get)
        worst.append(bad[name])
        print(f"split {seed}: {result.status} {result.alarm_groups} worst {name} {bad[name]:+.2f}", flush=True)
    w = np.array(worst)
    print("share of splits alarming at sigma 3 / 3.5 / 4 / 4.5 / 5:",
          " / ".join(f"{(w > s).mean():.0%}" for s in (3, 3.5, 4, 4.5, 5)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="static")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixture", type=Path, default=FIXTURE)
    parser.add_argument("--model", default="none", help="Origin detector: 'none', 'default' or a model folder.")
    parser.add_argument("--splits", type=int, default=0,
                        help="Instead: run case 2 over this many group splits and print each one's worst z.")
    args = parser.parse_args()
    sample = pl.read_parquet(args.fixture).sort("id")
    human, machine = sample.filter(pl.col("label") == 0), sample.filter(pl.col("label") == 1)
    encoder = get_encoder(args.encoder)
    if args.splits:
        false_alarms(human, encoder, args.splits)
        return

    texts = human["text"].to_list()
    emb = encoder.encode(texts)
    keep = np.sort(np.argsort(SupportSet(emb, 5).radii_sq, kind="stable")[: round(0.8 * len(texts))])
    start = time.perf_counter()
    origin = None if args.model == "none" else args.model
    monitor = DiversityMonitor(encoder=encoder, origin_model=origin, seed=args.seed)
    monitor.fit(texts, emb, groups=human["group"].to_list(), name="human")
    results = monitor.check_many([
        {"texts": machine["text"].to_list(), "name": "machine"},
        {"texts": [texts[i] for i in keep], "embeddings": emb[keep], "name": "human minus rarest 20%"},
    ])
    print(f"reference: all {len(texts)} human paragraphs ({time.perf_counter() - start:.1f} s, {encoder.id})")
    for result in results:
        show(result)

    reference, fresh = split_groups(human, args.seed)
    start = time.perf_counter()
    monitor = DiversityMonitor(encoder=encoder, origin_model=origin, seed=args.seed)
    monitor.fit(reference["text"].to_list(), groups=reference["group"].to_list(), name="human (62% of groups)")
    result = monitor.check(fresh["text"].to_list(), name="fresh human (other groups)")
    print(f"reference: {reference.height} human paragraphs from 62% of groups ({time.perf_counter() - start:.1f} s)")
    show(result)


if __name__ == "__main__":
    main()
