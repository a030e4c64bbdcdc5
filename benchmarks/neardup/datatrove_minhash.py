"""datatrove's MinHash de-duplication (stages 1-3) on a JSON list of texts; run with datatrove's own Python.

Called by ``bench_neardup.py --datatrove-python PATH``, in a separate
environment (datatrove is not a synthfilter dependency). Shingles are character
5-grams, as in synthfilter (a tokenizer that yields characters; datatrove
joins 5 of them), of datatrove's own simplified text; the banding is
synthfilter's (21 bands of 6 hashes). datatrove does not verify candidates:
every pair that shares a band is joined. Prints JSON: seconds per stage and
the cluster id of every clustered record.

Usage: python datatrove_minhash.py texts.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer


class Characters(WordTokenizer):
    """Every character a token, so datatrove's 5-token shingles are character 5-grams."""

    def word_tokenize(self, text: str) -> list[str]:
        return list(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        texts = json.load(f)
    config = MinhashConfig(n_grams=5, num_buckets=21, hashes_per_bucket=6, seed=1,
                           hash_config=HashConfig(precision=64, hash_fc="sha1"))
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sig = MinhashDedupSignature(f"{tmp}/sigs", config=config, language=Characters())
        sig.run((Document(text=t, id=str(i)) for i, t in enumerate(texts)), rank=0, world_size=1)
        seconds["signatures"] = time.perf_counter() - start
        start = time.perf_counter()
        buckets = MinhashDedupBuckets(f"{tmp}/sigs", f"{tmp}/buckets", config=config)
        for rank in range(config.num_buckets):
            buckets.run(None, rank=rank, world_size=config.num_buckets)
        seconds["buckets"] = time.perf_counter() - start
        start = time.perf_counter()
        MinhashDedupCluster(f"{tmp}/buckets", f"{tmp}/clusters", config=config, save_cluster_id=True).run(None)
        seconds["clusters"] = time.perf_counter() - start
        labels = {}
        try:
            with open(f"{tmp}/clusters/000000.clusters", "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        words = memoryview(data).cast("I")
        for k in range(0, len(words), 2):
            labels[int(words[k])] = int(words[k + 1])
    print(json.dumps({"seconds": seconds, "labels": labels}))


if __name__ == "__main__":
    main()
