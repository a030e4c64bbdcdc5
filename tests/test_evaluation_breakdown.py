"""Per-generator, per-domain and per-length detector metrics (``length_breakdown``, ``evaluate``)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.evaluation import LENGTH_BINS, breakdown_markdown, evaluate_detector, length_breakdown, word_counts
from tests.conftest import run_cli as run


def test_word_counts_and_bins():
    assert word_counts(["a b  c", "", "one\ntwo"]).tolist() == [3, 0, 2]
    assert [b[0] for b in LENGTH_BINS] == ["<50", "50-150", ">150"]


def test_each_length_bin_is_measured_on_its_own_records():
    rng = np.random.default_rng(0)
    n = 400
    y = np.tile([0, 1], n // 2)
    words = np.r_[np.full(n // 2, 20), np.full(n // 4, 100), np.full(n // 4, 300)]
    # Short texts are told apart perfectly, medium ones not at all, long ones partly.
    scores = np.where(words < 50, y * 2.0 - 1, rng.normal(size=n))
    scores = np.where(words >= 150, y + rng.normal(scale=0.8, size=n), scores)
    p = 1 / (1 + np.exp(-scores))
    sources = np.where(y == 1, np.where(np.arange(n) % 4 == 1, "gen_a", "gen_b"), "human_x")
    table = length_breakdown(y, p, words, sources, scores=scores)
    overall = {r["length"]: r for r in table.filter(pl.col("source") == "all").iter_rows(named=True)}
    assert overall["<50"]["auroc"] == 1.0 and overall["<50"]["tpr_at_1pct_fpr"] == 1.0
    assert abs(overall["50-150"]["auroc"] - 0.5) < 0.15
    assert 0.6 < overall[">150"]["auroc"] < 0.95
    assert overall["<50"]["n"] == n // 2 and overall[">150"]["n"] == n // 4
    gen_a = table.filter((pl.col("source") == "gen_a") & (pl.col("length") == "<50")).row(0, named=True)
    assert gen_a["class"] == "machine" and gen_a["n"] == int(((sources == "gen_a") & (words < 50)).sum())
    assert gen_a["n_human"] == int(((y == 0) & (words < 50)).sum())  # against the same bin's humans only


def test_length_breakdown_ranks_by_the_uncalibrated_score():
    # Calibrated p ties 5 % of humans with the machines at the top step; the score does not.
    y = np.r_[np.zeros(200, int), np.ones(100, int)]
    scores = np.r_[np.linspace(-3, 0.9, 200), np.linspace(1, 3, 100)]
    p = np.where(scores > 0.5, 0.9, 0.1)
    words = np.full(300, 60)
    by_score = length_breakdown(y, p, words, scores=scores).row(0, named=True)
    by_p = length_breakdown(y, p, words).row(0, named=True)
    assert by_score["tpr_at_1pct_fpr"] == 1.0 and by_p["tpr_at_1pct_fpr"] == 0.0


def test_a_bin_with_one_class_has_no_ranking_metrics_and_bad_input_is_refused():
    table = length_breakdown([0, 0, 1], [0.1, 0.2, 0.9], [10, 10, 80])
    assert table["auroc"].to_list() == [None, None]
    with pytest.raises(ConfigError):
        length_breakdown([0, 1], [0.1, 0.9], [10])


def test_breakdown_markdown_lists_every_row():
    y, p, w = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), np.array([10, 12, 80, 90])
    src = ["h", "m", "h", "m"]
    md = breakdown_markdown(evaluate_detector(y, p, src).per_source, length_breakdown(y, p, w, src))
    assert md.count("\n| <50 |") == 3 and "| m | machine |" in md


def test_evaluate_cli_reports_by_generator_domain_and_length(tmp_path):
    from tests.conftest import FIXTURES

    data = tmp_path / "labelled.parquet"
    pl.read_parquet(FIXTURES / "origin_sample.parquet").write_parquet(data)
    out = tmp_path / "eval"
    result = run("evaluate", data, "-o", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["per_length"]
    assert {r["length"] for r in rows} <= {"<50", "50-150", ">150"}
    all_rows = [r for r in rows if r["source"] == "all"]
    assert sum(r["n"] for r in all_rows) == metrics["overall"]["n"]
    sources = {r["source"] for r in metrics["per_source"]}
    assert sources <= {r["source"] for r in rows} | {"all"}
    assert "| generator / human domain |" in (out / "breakdown.md").read_text()
    assert "by length" in result.output
