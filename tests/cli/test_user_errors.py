"""Bad input through the real ``synthfilter`` command: one line, exit 2, found early, nothing written.

Also the warnings a run prints (one line each, the run goes on) where a
result could mislead.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def cli(*args, cwd: Path, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTHFILTER_CACHE": str(cache or cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "synthfilter.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == lines[-1:], proc.stderr  # one line, the last one (after any progress)
    for word in words:
        assert word in errors[0]
    return errors[0]


def files_under(folder: Path) -> list[Path]:
    """Cached work under ``folder`` (embeddings, detector scores); the weight-hash memo does not count."""
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("hashes.sqlite")] \
        if folder.exists() else []


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    sample = pl.read_parquet(FIXTURES / "origin_sample.parquet")
    path = tmp_path / "corpus.parquet"
    sample.filter(pl.col("label") == 0).head(40).select("id", "text", "source").write_parquet(path)
    return path


# Item 3: tracebacks where a one-line error is promised.

def test_negative_max_text_chars_is_one_line(tmp_path: Path, corpus: Path):
    one_line_error(cli("score", corpus, "--max-text-chars", "-1", cwd=tmp_path), "--max-text-chars")
    assert not (tmp_path / "corpus.scores.parquet").exists()


def test_train_on_three_rows_without_lm_features(tmp_path: Path):
    data = tmp_path / "three.parquet"
    pl.DataFrame({"text": ["The cat sat on the mat.", "A model wrote this line.", "Another one by a model."],
                  "label": [0, 1, 1]}).write_parquet(data)
    for classifier in ("linear", "boosted"):
        proc = cli("train", data, "-o", tmp_path / "m", "--lm-orders", "", "--encoder", "static",
                   "--classifier", classifier, cwd=tmp_path)
        # Item 8 too: the message says what is short (not "no text").
        one_line_error(proc, "1 human and 2 machine records", "at least 2 of each")
        assert not (tmp_path / "m").exists()


# Item 4: options are checked before the corpus is encoded.

@pytest.mark.parametrize("option", [("--model", "models/origin-v3-typo"), ("--keep", "txet")])
def test_typos_are_reported_before_encoding(tmp_path: Path, corpus: Path, option):
    cache = tmp_path / "cache"
    one_line_error(cli("score", corpus, "--encoder", "static", *option, cwd=tmp_path, cache=cache), option[1])
    assert files_under(cache) == []  # nothing was encoded
    assert not (tmp_path / "corpus.scores.parquet").exists()


def test_unreachable_target_size_is_reported_before_encoding(tmp_path: Path, corpus: Path):
    cache = tmp_path / "cache"
    proc = cli("rebuild", corpus, "--encoder", "static", "--target-size", "1000", "-o", tmp_path / "train.parquet",
               cwd=tmp_path, cache=cache)
    one_line_error(proc, "--target-size 1,000", "40 records")
    assert files_under(cache) == []
    assert not (tmp_path / "train.parquet").exists()


# Item 7: accepted silently where a warning or an error is due.

def test_csv_output_name_is_refused(tmp_path: Path, corpus: Path):
    one_line_error(cli("score", corpus, "-o", tmp_path / "out.csv", cwd=tmp_path), "out.csv", "Parquet")
    assert not (tmp_path / "out.csv").exists()


def test_jsonl_object_text_is_refused(tmp_path: Path):
    path = tmp_path / "obj.jsonl"
    path.write_text('{"text": "A plain paragraph of text."}\n{"text": {"body": "nested"}}\n', encoding="utf-8")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    one_line_error(cli("score", path, "--encoder", "static", "--model", "none", cwd=tmp_path), "line 2", "'text'")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not (tmp_path / "obj.scores.parquet").exists()


def test_machine_gold_and_unverifiable_scores_are_warned(tmp_path: Path, corpus: Path):
    """Gold the detector finds mostly machine-written, and scores with no manifest, each get a warning."""
    scored = cli("score", corpus, "--encoder", "static", "--keep", "text", "--quiet", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    (tmp_path / "corpus.scores.manifest.json").unlink()
    gold = tmp_path / "gold.parquet"
    sample = pl.read_parquet(FIXTURES / "origin_sample.parquet")
    sample.filter(pl.col("source") == "sharegpt_chatgpt").head(30).select("text").write_parquet(gold)
    proc = cli("rebuild", tmp_path / "corpus.scores.parquet", "--gold", gold, "--encoder", "static", "--quiet",
               "-o", tmp_path / "train.parquet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning: ")]
    assert any("gold.parquet" in w and "machine-written" in w for w in warnings), proc.stderr
    assert any("no manifest" in w and "--model" in w for w in warnings), proc.stderr
    assert "Traceback" not in proc.stderr


# Item 8: messages point to the right place.

def test_jsonl_errors_name_the_line(tmp_path: Path):
    good = [f'{{"text": "record number {i} is fine"}}' for i in range(10)]
    bad_utf8 = tmp_path / "utf8.jsonl"
    bad_utf8.write_bytes(("\n".join(good) + "\n").encode() + b'{"text": "caf\xe9"}\n')
    one_line_error(cli("score", bad_utf8, "--model", "none", cwd=tmp_path), "line 11", "UTF-8")
    malformed = tmp_path / "broken.jsonl"
    malformed.write_text("\n".join(good[:5] + ['{"text": "unclosed"'] + good[5:]) + "\n", encoding="utf-8")
    one_line_error(cli("score", malformed, "--model", "none", cwd=tmp_path), "line 6", "not valid JSON")
