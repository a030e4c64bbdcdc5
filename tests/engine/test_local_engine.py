"""The local engine and the stage contracts: batches do not change answers, nothing is computed twice."""

from __future__ import annotations

import sys

import numpy as np
import polars as pl
import pytest

from synthfilter.engine import LocalEngine, get_engine
from synthfilter.errors import ConfigError, MissingExtraError
from synthfilter.io import validate_corpus
from synthfilter.stages import EncodeStage, OriginRecordStage, SketchStage
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def corpus(heldout) -> pl.DataFrame:
    return validate_corpus(heldout.head(300), source="heldout")


@pytest.fixture(scope="module")
def static():
    from synthfilter.encoders import get_encoder

    return get_encoder("static")


class _NoEncoding:
    """An encoder with the detector's encoder id that fails when asked to encode."""

    def __init__(self, id_: str) -> None:
        self.id = id_

    def encode(self, texts, **kw):
        raise AssertionError("the detector encoded the texts a second time")


def test_batches_give_the_same_columns_as_one_call(corpus, static):
    def stages():
        return [EncodeStage(static), OriginRecordStage(corpus_encoder_id=static.id), SketchStage(0.8)]

    whole = LocalEngine().map_records(corpus, stages()).columns
    batched = LocalEngine(batch_rows=37).map_records(corpus, stages()).columns
    assert set(whole) == {"embedding", "p_synthetic", "synthetic_score", "norm_key", "band_keys"}
    for name in whole:
        np.testing.assert_array_equal(whole[name], batched[name])


def test_the_detector_takes_the_corpus_embeddings_instead_of_encoding_again(corpus, static, monkeypatch):
    from synthfilter.origin import load_model

    texts = corpus["text"].to_list()
    expected = load_model().decision_function(texts)
    stage = OriginRecordStage(corpus_encoder_id=static.id)
    assert stage.reuses_embeddings()
    assert not OriginRecordStage(corpus_encoder_id="minilm:other").reuses_embeddings()

    monkeypatch.setattr("synthfilter.origin.get_encoder", lambda name: _NoEncoding(static.id))
    got = stage.process({"text": np.asarray(texts, dtype=object),
                         "embedding": static.encode(texts)})["synthetic_score"]
    np.testing.assert_array_equal(got, expected)


def test_score_encodes_each_text_once(corpus, static, monkeypatch):
    from synthfilter.scoring import score

    calls = []

    class Counting:
        id, dim = static.id, static.dim

        def encode(self, texts, **kw):
            calls.append(len(texts))
            return static.encode(texts, **kw)

    monkeypatch.setattr("synthfilter.origin.get_encoder", lambda name: _NoEncoding(static.id))
    table = score(corpus.head(50), encoder=Counting())
    assert calls == [50] and table.height == 50


def _counted_jobs(monkeypatch) -> list:
    """Start the detector's second process from 10 texts on, and keep every job started."""
    import synthfilter.background

    started = []

    class Counted(synthfilter.background.DetectorJob):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr("synthfilter.stages.records.BACKGROUND_MIN_TEXTS", 10)
    monkeypatch.setattr(synthfilter.background, "DetectorJob", Counted)
    monkeypatch.setenv("SYNTHFILTER_THREADS", "2")
    return started


def test_the_second_process_gives_the_same_columns(corpus, static, monkeypatch, tmp_path):
    started = _counted_jobs(monkeypatch)
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path))  # nothing cached: every text is scored
    # A corpus encoder other than the detector's own (as MiniLM is): the detector does not wait for it.
    stage = OriginRecordStage(corpus_encoder_id="minilm:other", background=True)
    with_job = LocalEngine().map_records(corpus, [EncodeStage(static), stage]).columns
    assert len(started) == 1 and started[0].failure is None
    assert started[0]._process.poll() is not None  # done, and waited for
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "other"))
    without = LocalEngine().map_records(corpus, [EncodeStage(static), OriginRecordStage(
        corpus_encoder_id="minilm:other")]).columns
    # nor when the detector takes the corpus embeddings (the static path): nothing to start early
    LocalEngine().map_records(corpus, [EncodeStage(static), OriginRecordStage(
        corpus_encoder_id=static.id, background=True)])
    assert len(started) == 1
    np.testing.assert_array_equal(with_job["synthetic_score"], without["synthetic_score"])
    np.testing.assert_array_equal(with_job["p_synthetic"], without["p_synthetic"])


def test_a_failing_stage_stops_the_second_process(corpus, static, monkeypatch, tmp_path):
    started = _counted_jobs(monkeypatch)
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path))

    class Failing(EncodeStage):
        def process(self, batch):
            raise RuntimeError("the encoder broke")

    with pytest.raises(RuntimeError, match="the encoder broke"):
        LocalEngine().map_records(corpus, [Failing(static), OriginRecordStage(corpus_encoder_id="minilm:other",
                                                                              background=True)])
    assert len(started) == 1 and started[0]._process.poll() is not None


def test_engine_choice_errors(monkeypatch):
    with pytest.raises(ConfigError, match="unknown engine 'spark'"):
        get_engine("spark")
    with pytest.raises(ConfigError, match="--ray-address needs --engine ray"):
        get_engine("local", ray_address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'synthfilter\[ray\]'"):
        get_engine("ray")


def test_cli_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    corpus = tmp_path / "c.parquet"
    pl.DataFrame({"text": ["one text here", "another one"]}).write_parquet(corpus)
    monkeypatch.setitem(sys.modules, "ray", None)
    result = run_cli("score", corpus, "--engine", "ray", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "pip install 'synthfilter[ray]'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet"]


def test_local_cli_reads_a_folder_of_shards(tmp_path, heldout):
    folder = tmp_path / "shards"
    folder.mkdir()
    heldout.head(40).write_parquet(folder / "a.parquet")
    heldout.slice(40, 30).write_parquet(folder / "b.parquet")
    out = tmp_path / "scores.parquet"
    result = run_cli("score", folder, "--encoder", "static", "--model", "none", "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out)["id"].to_list() == heldout.head(70)["id"].to_list()
