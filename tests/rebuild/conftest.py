"""Shared fixtures for the rebuild tests: small real corpora and an isolated embedding cache."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

WORDS = [
    "river", "stone", "market", "window", "garden", "letter", "morning", "winter", "station",
    "engine", "harbour", "village", "teacher", "doctor", "paper", "kitchen", "county", "mountain",
    "railway", "orchard", "bridge", "candle", "violin", "pocket", "ladder", "summer", "farmer",
    "lawyer", "sailor", "captain", "ribbon", "basket", "pepper", "copper", "silver", "thunder",
    "meadow", "forest", "valley", "island", "castle", "tunnel", "carpet", "blanket", "mirror",
    "needle", "thread", "button", "hammer", "shovel", "bucket", "barrel", "wagon", "saddle",
    "lantern", "chimney", "cellar", "attic", "porch", "fence", "hedge", "pond", "creek", "canyon",
    "desert", "prairie", "glacier", "volcano", "harvest", "season", "council", "ballot", "senate",
    "budget", "tariff", "treaty", "embassy", "colony", "novel", "poem", "chapter", "verse",
    "chorus", "opera", "ballet", "canvas", "sketch", "portrait", "statue", "museum", "gallery",
    "engineer", "chemist", "surgeon", "nurse", "pilot", "miner", "weaver", "potter", "baker",
    "butcher", "tailor", "cobbler", "clerk",
]


def make_texts(n: int, seed: int, words_per_text: int = 40) -> list[str]:
    """Distinct pseudo-sentences of real words (distinct enough for a real encoder)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        picks = rng.choice(len(WORDS), size=words_per_text, replace=True)
        body = " ".join(WORDS[i] for i in picks)
        out.append(body[0].upper() + body[1:] + ".")
    return out


def near_copy(text: str) -> str:
    """A light edit: one word replaced and a comma added."""
    words = text.rstrip(".").split(" ")
    words[len(words) // 2] = "lighthouse"
    words[3] = words[3] + ","
    return " ".join(words) + "."


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path_factory.getbasetemp() / "sf-cache"))


@pytest.fixture
def corpus_files(tmp_path):
    """A scored candidate file and a gold file on disk (Parquet), with planted duplicates.

    Candidates: 60 human-looking (low p), 60 synthetic-looking (high p), one exact and one
    near copy of gold records, and one exact duplicate among candidates.
    """
    gold_texts = make_texts(20, seed=1)
    human = make_texts(60, seed=2)
    machine = make_texts(60, seed=3)
    rng = np.random.default_rng(4)
    texts = human + machine + [gold_texts[0], near_copy(gold_texts[1]), human[5]]
    p = np.concatenate([
        rng.uniform(0.0, 0.15, 60), rng.uniform(0.7, 1.0, 60), [0.05, 0.04, 0.6],
    ])
    cands = pl.DataFrame({
        "id": [f"c{i:03d}" for i in range(len(texts))],
        "text": texts,
        "topic": ["x"] * len(texts),
        "p_synthetic": p,
    })
    gold = pl.DataFrame({"id": [f"g{i:02d}" for i in range(20)], "text": gold_texts,
                         "note": list(range(20))})
    cpath, gpath = tmp_path / "corpus.scores.parquet", tmp_path / "human.parquet"
    cands.write_parquet(cpath)
    gold.write_parquet(gpath)
    return cpath, gpath


MACHINE_WORDS = [
    "certainly", "overall", "additionally", "furthermore", "crucial", "ensure", "leverage",
    "comprehensive", "insights", "delve", "robust", "seamless", "innovative", "landscape", "foster",
    "enhance", "streamline", "pivotal", "valuable",
]


def make_machine_texts(n: int, seed: int) -> list[str]:
    """Texts from a different, chatbot-flavoured vocabulary (a separable 'machine' class)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        body = " ".join(rng.choice(MACHINE_WORDS, size=30).tolist() + rng.choice(WORDS, size=10).tolist())
        out.append("Certainly! " + body + ".")
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A real OriginScorer (static encoder, small hash space) trained and saved in a temp folder."""
    import os

    from synthfilter.origin import OriginScorer

    folder = tmp_path_factory.mktemp("model")
    old = os.environ.get("SYNTHFILTER_CACHE")
    os.environ["SYNTHFILTER_CACHE"] = str(tmp_path_factory.getbasetemp() / "sf-cache")
    try:
        texts = make_texts(60, seed=21) + make_machine_texts(60, seed=22)
        y = [0] * 60 + [1] * 60
        OriginScorer(encoder="static", n_features=2**12, seed=0).fit(texts, y).save(folder, name="tiny")
    finally:
        if old is None:
            os.environ.pop("SYNTHFILTER_CACHE", None)
        else:
            os.environ["SYNTHFILTER_CACHE"] = old
    return folder
