from __future__ import annotations

import numpy as np
import pytest

from synthfilter.encoders import CachedEncoder, get_encoder
from synthfilter.errors import ConfigError


@pytest.mark.parametrize("name,dim", [("minilm", 384), ("static", 64)])
def test_packaged_encoders_load_offline_and_normalise(name, dim, monkeypatch):
    # Any attempt to reach a hub would fail: the packaged weights need none.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = get_encoder(name, cache=False)
    vectors = enc.encode(["A short sentence about cats.", "Quarterly revenue rose by four percent."])
    assert vectors.shape == (2, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "@" in enc.id  # name@weights-hash


def test_minilm_puts_paraphrases_closer_than_unrelated_text(minilm):
    a, b, c = minilm.encode(["The cat sat on the mat.", "A cat was sitting on the mat.",
                             "Interest rates rose sharply this quarter."])
    assert a @ b > a @ c + 0.3


def test_cache_returns_identical_vectors_and_skips_work(tmp_path):
    base = get_encoder("static", cache=False)
    cached = CachedEncoder(base, tmp_path)
    texts = ["one text", "two texts", "one text"]
    first = cached.encode(texts)
    assert cached.misses == 2  # the repeat is encoded once
    second = cached.encode(texts)
    assert cached.misses == 0 and cached.hits == 3
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, base.encode(texts))


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown encoder 'nope'"):
        get_encoder("nope")


def test_batch_size_must_be_positive_cached_or_not(tmp_path):
    from synthfilter.encoders import check_batch_size

    texts = ["a text"]
    plain = get_encoder("static", cache=False)
    cached = CachedEncoder(plain, tmp_path)
    cached.encode(texts)
    for enc in (plain, cached):
        for bad in (0, -3):
            with pytest.raises(ConfigError, match="batch size must be a positive integer"):
                enc.encode(texts, batch_size=bad)
    assert check_batch_size(1) == 1


def test_batch_size_zero_is_one_line_before_any_work_in_the_cli(tmp_path):
    import polars as pl

    from tests.conftest import run_cli

    pl.DataFrame({"text": ["one text", "two texts"]}).write_parquet(tmp_path / "c.parquet")
    result = run_cli("score", tmp_path / "c.parquet", "--encoder", "static", "--batch-size", "0")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: batch size must be a positive integer, got 0"
    assert not (tmp_path / "c.scores.parquet").exists()


def _pickled_encoder_folder(tmp_path):
    import json
    import pickle

    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "modules.json").write_text(json.dumps([]))
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return folder


def test_an_encoder_folder_with_pickled_weights_is_refused_unless_trusted(tmp_path):
    from synthfilter.encoders import SentenceTransformerEncoder
    from synthfilter.errors import ModelError

    folder = _pickled_encoder_folder(tmp_path)
    with pytest.raises(ModelError, match="pickle .*pytorch_model.bin.*--trusted-encoder"):
        get_encoder(str(folder))
    trusted = SentenceTransformerEncoder(folder, trusted=True)  # nothing is unpickled until encode()
    assert trusted.id.startswith("enc@")


def test_pickled_encoder_weights_through_the_cli_exit_2_with_one_line(tmp_path):
    import polars as pl

    from tests.conftest import run_cli

    folder = _pickled_encoder_folder(tmp_path)
    pl.DataFrame({"text": ["one text", "two texts"]}).write_parquet(tmp_path / "c.parquet")
    result = run_cli("score", tmp_path / "c.parquet", "--encoder", folder, "--model", "none")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "can run code" in result.output


def test_static_encoder_id_and_dim_need_no_model_load():
    from synthfilter.encoders import StaticEncoder

    enc = StaticEncoder()
    assert enc._model is None and enc.dim == 64 and "@" in enc.id
    assert enc._model is None  # the table is read on the first encode only


def test_static_encoder_gives_model2vecs_vectors_exactly():
    """The one-pass loader must not change a single bit of the embeddings."""
    import polars as pl
    from model2vec import StaticModel

    from synthfilter.encoders import StaticEncoder, _normalise
    from tests.conftest import FIXTURES

    texts = pl.read_parquet(FIXTURES / "origin_sample.parquet")["text"].to_list()[:500]
    texts += ["a", "\u4e2d\u6587 text", "x" * 20000, "\U0001f600 emoji only \U0001f600"]
    ours = StaticEncoder()
    reference = StaticModel.from_pretrained(ours.model_dir)
    np.testing.assert_array_equal(ours.encode(texts), _normalise(reference.encode(texts)))


def test_threads_sharing_a_static_encoder_load_it_once(monkeypatch):
    import threading

    from synthfilter import encoders

    loads: list[int] = []
    real = encoders._StaticTable

    def counting(model_dir):
        loads.append(1)
        return real(model_dir)

    monkeypatch.setattr(encoders, "_StaticTable", counting)
    enc = encoders.StaticEncoder()
    barrier = threading.Barrier(4)
    out: list = []

    def work():
        barrier.wait()
        out.append(enc.encode(["a sentence to embed", "another one"]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [1] and len(out) == 4
    for vectors in out[1:]:
        np.testing.assert_array_equal(vectors, out[0])


def test_an_encoder_folder_with_damaged_weights_exits_2_with_one_line(tmp_path):
    import shutil

    import polars as pl

    from tests.conftest import run_cli

    packaged = get_encoder("minilm", cache=False).model_dir
    folder = tmp_path / "enc"
    shutil.copytree(packaged, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").write_bytes((packaged / "model.safetensors").read_bytes()[:1_000_000])
    corpus = tmp_path / "c.parquet"
    pl.DataFrame({"text": ["one text", "two texts"]}).write_parquet(corpus)
    before = corpus.read_bytes()
    result = run_cli("score", corpus, "--encoder", folder, "--model", "none", "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "cannot load the encoder" in last and "model folder" in last
    assert not (tmp_path / "out.parquet").exists() and corpus.read_bytes() == before
