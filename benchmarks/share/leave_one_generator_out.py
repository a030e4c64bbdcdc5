"""Build a detector without one generator, with the project's build script, for the share benchmark.

    PYTHONPATH=. python benchmarks/share/leave_one_generator_out.py --leave-out gemma --out /tmp/origin-no-gemma
    PYTHONPATH=. python benchmarks/share/bench_domain_shift.py --model /tmp/origin-no-gemma \\
        --machine-sources gemma --size 750 --out benchmarks/share/results/domain_shift_no_gemma_model_gemma.json

Builds the labelled corpus from every source but the one left out (same
per-source count and seed as the shipped model, so the same document splits:
the held-out split's documents are the shipped model's), writes it to
``<cache>/bench/corpus_without_<source>.parquet``, and runs
``models/build_origin_model.py --corpus ... --skip-loso``. The model is not
shipped; 946 s on 2 shared cores (load 6-19). Leaving out Gemma needs no
Gemma cache at all.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from synthfilter.data.corpus import build_corpus, write_corpus  # noqa: E402
from synthfilter.data.fetch import cache_root  # noqa: E402
from synthfilter.data.schema import MACHINE_SOURCES, SOURCES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--leave-out", choices=MACHINE_SOURCES, default="gemma")
    ap.add_argument("--out", type=Path, required=True, help="Model folder to write (outside the repository).")
    ap.add_argument("--per-source", type=int, default=9000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    corpus = build_corpus(per_source=args.per_source, seed=args.seed,
                          sources=[s for s in SOURCES if s != args.leave_out])
    path = cache_root() / "bench" / f"corpus_without_{args.leave_out}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_corpus(corpus, path)
    print(f"corpus without {args.leave_out}: {corpus.height} records -> {path}", flush=True)
    cmd = [sys.executable, str(ROOT / "models" / "build_origin_model.py"), "--corpus", str(path),
           "--out", str(args.out), "--per-source", str(args.per_source), "--seed", str(args.seed), "--skip-loso"]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
