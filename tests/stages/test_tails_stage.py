"""The tail stage started early: the k-NN part built while later record stages run."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.engine import GlobalContext, LocalEngine
from synthfilter.io import validate_corpus
from synthfilter.stages import EncodeStage, SketchStage, TailGlobalStage
from synthfilter.stages import tails as tails_module

SPLIT = Path(__file__).resolve().parents[2] / "models" / "origin-v3" / "heldout_test.parquet"


@pytest.fixture(scope="module")
def corpus() -> pl.DataFrame:
    return validate_corpus(pl.read_parquet(SPLIT).select("id", "text").head(400), source="heldout")


@pytest.fixture(scope="module")
def static():
    from synthfilter.encoders import get_encoder

    return get_encoder("static")


def _records(corpus, static, on_stage_done=None):
    return LocalEngine().map_records(corpus, [EncodeStage(static), SketchStage(0.8)], on_stage_done=on_stage_done)


def test_the_engine_hands_each_finished_stage_to_the_hook(corpus, static):
    seen: list[tuple[str, set[str]]] = []
    _records(corpus, static, lambda stage, cols: seen.append((stage.name, set(cols))))
    assert seen == [("encode", {"embedding"}), ("sketch", {"embedding", "norm_key", "band_keys"})]

    batched: list[str] = []
    LocalEngine(batch_rows=150).map_records(corpus, [EncodeStage(static)],
                                            on_stage_done=lambda stage, cols: batched.append(len(cols["embedding"])))
    assert batched == [corpus.height]  # once, with the whole corpus, not per batch


def test_a_prefetched_tail_stage_gives_the_same_columns(corpus, static, monkeypatch):
    records = _records(corpus, static)
    plain = TailGlobalStage().run(records, GlobalContext(seed=3))

    threads: list[str] = []
    real = tails_module.knn_tails

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(tails_module, "knn_tails", spy)
    stage, ctx = TailGlobalStage(), GlobalContext(seed=3)
    assert stage.prefetch({"embedding": records.columns["embedding"]}, ctx)
    early = stage.run(records, ctx)
    assert threads == ["synthfilter-knn"]  # built once, in the background thread
    for name in plain:
        np.testing.assert_array_equal(plain[name], early[name])


def test_a_prefetch_on_other_embeddings_is_not_used(corpus, static, monkeypatch):
    records = _records(corpus, static)
    calls: list[int] = []
    real = tails_module.knn_tails

    def spy(embeddings, *args, **kwargs):
        calls.append(len(embeddings))
        return real(embeddings, *args, **kwargs)

    monkeypatch.setattr(tails_module, "knn_tails", spy)
    stage, ctx = TailGlobalStage(), GlobalContext(seed=0)
    stage.prefetch({"embedding": records.columns["embedding"][::-1].copy()}, ctx)
    out = stage.run(records, ctx)
    assert len(calls) == 2  # the early result was for other vectors: computed again
    expected = TailGlobalStage().run(records, GlobalContext(seed=0))
    np.testing.assert_array_equal(out["rarity"], expected["rarity"])


def test_an_error_in_the_background_reaches_the_caller(static):
    one = validate_corpus(pl.DataFrame({"text": ["a single record"]}), source="one")
    records = LocalEngine().map_records(one, [EncodeStage(static), SketchStage(0.8)])
    stage, ctx = TailGlobalStage(), GlobalContext()
    stage.prefetch(records.columns, ctx)
    with pytest.raises(Exception, match="at least 2 records"):
        stage.run(records, ctx)


def test_score_builds_the_index_while_the_detector_runs(corpus, static, monkeypatch):
    from synthfilter.scoring import score

    threads: list[str] = []
    real = tails_module.knn_tails

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    expected = score(corpus.head(120), encoder=static)
    monkeypatch.setattr(tails_module, "knn_tails", spy)
    got = score(corpus.head(120), encoder=static)
    assert threads == ["synthfilter-knn"]
    assert got.equals(expected)


def test_sketches_come_from_the_cache_on_a_rerun(corpus, tmp_path, monkeypatch):
    from synthfilter.stages import textdup

    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path))
    texts = np.asarray(corpus["text"].to_list()[:200], dtype=object)
    fresh = SketchStage(0.8, cache=False).process({"text": texts})
    first = SketchStage(0.8).process({"text": texts})
    calls: list[int] = []
    real = textdup.band_keys_of
    monkeypatch.setattr(textdup, "band_keys_of", lambda t, th: calls.append(len(t)) or real(t, th))
    again = SketchStage(0.8).process({"text": np.concatenate([texts, ["a text never sketched before, here"]])})
    assert calls == [1]  # only the new text
    for name in fresh:
        np.testing.assert_array_equal(fresh[name], first[name])
        np.testing.assert_array_equal(fresh[name], again[name][:200])
    assert list((tmp_path / "sketches").iterdir())
