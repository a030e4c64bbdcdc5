"""Generate Gemma 3 270M continuations of Brown/SpamAssassin prompts into the cache.

Resumable: run it again and it continues where it stopped (prompts already in
the output file are skipped). Meant to run in the background, e.g.::

    nohup python scripts/generate_gemma.py --threads 1 >> ~/.cache/synthfilter/gemma/generate.log 2>&1 &

The raw outputs are stored; ``synthfilter.data.gemma.load_gemma`` cleans them
when the corpus is built.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Allow running from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthfilter.data.gemma import gemma_cache_path, human_prompts, run_generation
from synthfilter.errors import SynthfilterError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the generation; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="cache file (default: <cache>/gemma/continuations.jsonl)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache root (default: $SYNTHFILTER_CACHE or ~/.cache/synthfilter)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt order and decoding settings")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many new records")
    parser.add_argument(
        "--prompts",
        type=int,
        default=None,
        help="only the first N prompts of the seeded list (origin-v4 used the first 942, origin-v3 2872: see the model cards)",
    )
    args = parser.parse_args(argv)
    try:
        prompts, lengths = human_prompts(args.cache_dir, seed=args.seed, first=args.prompts)
        out = args.out or gemma_cache_path(args.cache_dir)
        print(f"{len(prompts)} prompts; writing to {out} (pid {os.getpid()})", flush=True)
        written = run_generation(
            prompts, lengths, out, seed=args.seed, n_threads=args.threads, limit=args.limit, cache_dir=args.cache_dir
        )
    except SynthfilterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"done: {written} new records in {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
