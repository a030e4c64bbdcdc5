"""The torch-only MiniLM path must give sentence-transformers' vectors, bit for bit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from synthfilter.bert_pooling import BertMeanPooling, plain_bert_settings
from synthfilter.encoders import SentenceTransformerEncoder, _normalise, get_encoder
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def minilm_dir():
    return get_encoder("minilm", cache=False).model_dir


def _texts() -> list[str]:
    texts = pl.read_parquet(FIXTURES / "origin_sample.parquet")["text"].to_list()[:150]
    # empty, padded, over the 256-token limit, non-Latin, and ties in length (the sort must break them alike)
    return texts + ["", "  leading and trailing  ", "word " * 600, "x" * 5000, "\u4e2d\u6587 \U0001f600 \u00fcml\u00e4ut",
                    "abcd", "efgh", "ijkl"]


@pytest.mark.slow
def test_plain_bert_path_gives_sentence_transformers_vectors_exactly(minilm_dir):
    from sentence_transformers import SentenceTransformer

    texts = _texts()
    ours = get_encoder("minilm", cache=False)
    assert isinstance(ours._load(), BertMeanPooling)
    reference = SentenceTransformer(str(minilm_dir), device="cpu", local_files_only=True)
    for batch_size in (32, 7):
        expected = _normalise(reference.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                               normalize_embeddings=True))
        np.testing.assert_array_equal(ours.encode(texts, batch_size=batch_size), expected)


def test_the_minilm_encoder_does_not_import_sentence_transformers():
    code = ("import sys\nfrom synthfilter.encoders import get_encoder\n"
            "v = get_encoder('minilm', cache=False).encode(['one text', 'another'])\n"
            "assert v.shape == (2, 384), v.shape\n"
            "print(sorted(m for m in sys.modules if m.startswith('sentence_transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _copy(minilm_dir, tmp_path):
    folder = tmp_path / "enc"
    shutil.copytree(minilm_dir, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(minilm_dir / "model.safetensors")
    return folder


def test_the_packaged_minilm_is_a_plain_bert_folder(minilm_dir):
    settings = plain_bert_settings(minilm_dir)
    assert settings is not None
    assert (settings.layers, settings.heads, settings.max_seq_length, settings.normalize_modules) == (6, 12, 256, 1)


@pytest.mark.parametrize("edit", ["cls_pooling", "prompt", "roberta", "relative_positions", "no_tokenizer_json"])
def test_other_folders_are_left_to_sentence_transformers(minilm_dir, tmp_path, edit):
    folder = _copy(minilm_dir, tmp_path)

    def rewrite(name, **changes):
        data = json.loads((folder / name).read_text())
        data.update(changes)
        (folder / name).write_text(json.dumps(data))

    if edit == "cls_pooling":
        rewrite("1_Pooling/config.json", pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    elif edit == "prompt":
        rewrite("config_sentence_transformers.json", prompts={"query": "query: "}, default_prompt_name="query")
    elif edit == "roberta":
        rewrite("config.json", model_type="roberta")
    elif edit == "relative_positions":
        rewrite("config.json", position_embedding_type="relative_key")
    else:
        (folder / "tokenizer.json").unlink()
    assert plain_bert_settings(folder) is None
    encoder = SentenceTransformerEncoder(folder)
    assert encoder._model is None


@pytest.mark.slow
def test_a_cls_pooling_folder_is_encoded_by_sentence_transformers(minilm_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = _copy(minilm_dir, tmp_path)
    pooling = json.loads((folder / "1_Pooling/config.json").read_text())
    pooling.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (folder / "1_Pooling/config.json").write_text(json.dumps(pooling))
    encoder = SentenceTransformerEncoder(folder)
    texts = _texts()[:20]
    vectors = encoder.encode(texts)
    assert isinstance(encoder._model, SentenceTransformer)
    mean_pooled = get_encoder("minilm", cache=False).encode(texts)
    assert not np.allclose(vectors, mean_pooled, atol=1e-3)  # the CLS vector, not the mean


@pytest.mark.slow
def test_a_shorter_token_limit_is_applied(minilm_dir):
    long_text = "word " * 400
    short = SentenceTransformerEncoder(minilm_dir, max_seq_length=16).encode([long_text, "word " * 14])
    # 14 words + [CLS] + [SEP] = 16 tokens: the long text cut to 16 tokens is the same text
    np.testing.assert_array_equal(short[0], short[1])
