"""Whole-run reuse: an unchanged corpus is not scored again, anything that changes the output is."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from synthfilter.runcache import RunCache, run_key
from synthfilter.stages import tails as tails_module
from tests.conftest import run_cli

SPLIT = Path(__file__).resolve().parents[1] / "models" / "origin-v3" / "heldout_test.parquet"


@pytest.fixture()
def corpus(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "corpus.parquet"
    pl.read_parquet(SPLIT).select("id", "text").head(150).write_parquet(path)
    return path


def _score(corpus: Path, out: str, *extra: str) -> tuple[bytes, dict]:
    result = run_cli("score", corpus, "--encoder", "static", "--quiet", "-o", corpus.parent / out, *extra)
    assert result.exit_code == 0, result.output
    manifest = json.loads((corpus.parent / out.replace(".parquet", ".manifest.json")).read_text())
    return (corpus.parent / out).read_bytes(), manifest


def _count_knn(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = tails_module.knn_tails
    monkeypatch.setattr(tails_module, "knn_tails", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def test_an_unchanged_rerun_reuses_the_scores(corpus, monkeypatch):
    first, m1 = _score(corpus, "a.scores.parquet")
    calls = _count_knn(monkeypatch)
    again, m2 = _score(corpus, "b.scores.parquet")
    assert calls == []  # nothing computed
    assert again == first
    assert "reused_run" not in m1 and len(m2["reused_run"]) == 64
    strip = {"created_utc", "timings_s", "reused_run", "outputs", "parameters"}
    assert {k: v for k, v in m1.items() if k not in strip} == {k: v for k, v in m2.items() if k not in strip}
    assert m2["origin"]["model"].startswith("origin-") and m2["encoder"].startswith("static:")


@pytest.mark.parametrize("change", [["-k", "5"], ["--seed", "1"], ["--text-dup-threshold", "0.9"], ["--recompute"]])
def test_a_changed_option_or_recompute_scores_again(corpus, monkeypatch, change):
    first, _ = _score(corpus, "a.scores.parquet")
    calls = _count_knn(monkeypatch)
    _, manifest = _score(corpus, "b.scores.parquet", *change)
    assert calls == [1] and "reused_run" not in manifest
    if change == ["--recompute"]:
        assert (corpus.parent / "b.scores.parquet").read_bytes() == first


def test_a_changed_text_scores_again(corpus, monkeypatch):
    _score(corpus, "a.scores.parquet")
    frame = pl.read_parquet(corpus)
    frame.with_columns(pl.when(pl.col("id") == frame["id"][3]).then(pl.lit("An edited paragraph, new here."))
                       .otherwise(pl.col("text")).alias("text")).write_parquet(corpus)
    calls = _count_knn(monkeypatch)
    _, manifest = _score(corpus, "b.scores.parquet")
    assert calls == [1] and "reused_run" not in manifest


def test_a_damaged_entry_is_ignored_with_a_warning(corpus, monkeypatch):
    first, _ = _score(corpus, "a.scores.parquet")
    (entry,) = (corpus.parent / "cache" / "runs").iterdir()
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    calls = _count_knn(monkeypatch)
    result = run_cli("score", corpus, "--encoder", "static", "--quiet", "-o", corpus.parent / "b.scores.parquet")
    assert result.exit_code == 0, result.output
    assert calls == [1] and (corpus.parent / "b.scores.parquet").read_bytes() == first
    assert "warning: ignoring an unreadable cached run" in result.output


def test_the_key_covers_texts_order_groups_reference_and_settings():
    base = run_key(["a", "b"], {"k": 10})
    assert run_key(["a", "b"], {"k": 10}) == base
    others = [run_key(["b", "a"], {"k": 10}), run_key(["a", "b"], {"k": 5}), run_key(["a", "b", ""], {"k": 10}),
              run_key(["a", "b"], {"k": 10}, groups=["d1", "d1"]), run_key(["a", "b"], {"k": 10}, reference=[]),
              run_key(["ab"], {"k": 10})]
    assert len({base, *others}) == 1 + len(others)


def test_the_cache_keeps_only_the_newest_entries(tmp_path):
    cache = RunCache(tmp_path, keep=3)
    for i in range(5):
        cache.save(f"{i:064x}", pl.DataFrame({"x": [i, i]}), {"n": i})
    kept = sorted(p.stem for p in tmp_path.iterdir())
    assert len(kept) == 3
    assert cache.load(f"{4:064x}", rows=2)[1] == {"n": 4}
    assert cache.load(f"{4:064x}", rows=3) is None  # another length: not this run's


def test_a_run_with_a_replaced_stage_is_never_reused(corpus, monkeypatch):
    import numpy as np

    from synthfilter import scoring

    class Constant:
        name, columns = "origin", ("p_synthetic",)

        def setup(self):
            pass

        def process(self, batch):
            return {"p_synthetic": np.full(len(batch["text"]), 0.5)}

    monkeypatch.setitem(scoring._STAGES, "origin", lambda **kw: Constant())
    frame = pl.read_parquet(corpus)
    first = scoring.score_with_report(frame, encoder="static", reuse=True)
    again = scoring.score_with_report(frame, encoder="static", reuse=True)
    assert "reused_run" not in again.info and first.table.equals(again.table)
    assert not (corpus.parent / "cache" / "runs").exists()
