"""Build the bundled example corpus ``examples/mixed_corpus.parquet``.

Real text only, from the held-out (test) split of the labelled corpus, so the
shipped detector never saw it: human paragraphs (Brown 1961 prose,
SpamAssassin ham e-mail, ShareGPT user turns) and machine paragraphs
(ShareGPT ChatGPT turns, Gemma 3 270M continuations), plus a few planted exact
and near duplicates, as a scraped corpus would have.

    python examples/make_example_corpus.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from synthfilter.data.corpus import build_corpus
from synthfilter.io import atomic_write_parquet

HERE = Path(__file__).resolve().parent
PER_SOURCE = {"brown": 200, "spamassassin": 150, "sharegpt_human": 150, "sharegpt_chatgpt": 200, "gemma": 100}


def main(seed: int = 0) -> None:
    heldout = build_corpus(per_source=max(PER_SOURCE.values()), seed=seed, splits=["test"])
    parts = [heldout.filter(pl.col("source") == s).head(n) for s, n in PER_SOURCE.items()]
    corpus = pl.concat(parts).select("id", "text", "label", "source")
    rng = np.random.default_rng(seed)
    picks = rng.choice(corpus.height, size=20, replace=False)
    dups = corpus[picks[:10]].with_columns(pl.col("id") + "-copy")
    near = corpus[picks[10:]].with_columns(
        pl.col("id") + "-near", ("Reposted: " + pl.col("text").str.replace_all(",", "")).alias("text"))
    corpus = pl.concat([corpus, dups, near])
    corpus = corpus[rng.permutation(corpus.height)]
    atomic_write_parquet(corpus, HERE / "mixed_corpus.parquet")
    print(corpus.group_by("source").len().sort("source"))
    print(f"wrote {corpus.height} records to {HERE / 'mixed_corpus.parquet'}")


if __name__ == "__main__":
    main()
