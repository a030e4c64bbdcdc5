"""The text simulation on real Brown paragraphs."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.simulate.text import (
    TEXT_COLUMNS,
    TextSimulationConfig,
    run_text_simulation,
)

TINY = TextSimulationConfig(generations=2, n_gold=60, n_test=30, n_holdout=20, n_fresh=10, n_synthetic=60, n_eval_samples=20)


def _at(table, regime, t, column):
    return table.filter((pl.col("regime") == regime) & (pl.col("generation") == t))[column].item()


@pytest.fixture(scope="module")
def three_generations(brown_paragraphs):
    """The acceptance comparison, shrunk to 3 generations (30 s on 2 cores)."""
    from synthfilter.rebuild import RebuildPolicy
    from synthfilter.simulate import make_regime

    config = TextSimulationConfig(generations=3, n_gold=400, n_test=200, n_holdout=100, n_fresh=100,
                                  n_synthetic=400, n_eval_samples=200, seed=0)
    fill = RebuildPolicy(max_synthetic=0.2, max_p=1.0)
    regimes = ["replace", "synthfilter", make_regime("synthfilter", policy=fill, n_detector_samples=300,
                                                     name="synthfilter_fill"),
               "oracle", make_regime("oracle", policy=fill, name="oracle_fill")]
    return run_text_simulation(regimes, config, paragraphs=brown_paragraphs,
                               regime_options={"synthfilter": {"n_detector_samples": 300}})


def test_replace_collapses(three_generations):
    table = three_generations.table
    # Measured (seed 0): rare types kept 0.73 / 0.57 / 0.46, perplexity x1.37 / 1.57 / 1.75.
    rare = [_at(table, "replace", t, "rare_kept") for t in range(4)]
    ppl = [_at(table, "replace", t, "perplexity_ratio") for t in range(4)]
    assert rare[0] == 1.0 and all(a > b for a, b in itertools.pairwise(rare))
    assert rare[3] < 0.65
    assert all(a < b for a, b in itertools.pairwise(ppl))
    assert ppl[3] > 1.3
    assert _at(table, "replace", 3, "synthetic_share") == 1.0


def test_synthfilter_holds_the_tail_and_perplexity_with_a_real_detector(three_generations):
    table = three_generations.table
    for t in range(1, 4):
        assert _at(table, "synthfilter", t, "rare_kept") == 1.0  # gold is always kept
        assert _at(table, "synthfilter", t, "detector_auroc") > 0.9
        # Default policy: samples the detector is sure of (adjusted p > 0.9) are not added.
        assert _at(table, "synthfilter", t, "synthetic_share") < 0.05  # measured 0.012-0.025
        assert _at(table, "synthfilter", t, "perplexity_ratio") < 1.05  # measured 0.93-0.95
        assert _at(table, "synthfilter", t, "perplexity_ratio") < _at(table, "replace", t, "perplexity_ratio")


def test_filling_the_cap_holds_it_on_the_realised_share(three_generations):
    table = three_generations.table
    for t in range(1, 4):
        # The in-loop detector fills up to the cap and the realised share stays there.
        assert 0.15 <= _at(table, "synthfilter_fill", t, "synthetic_share") <= 0.2 + 0.02  # measured 0.186-0.2
        assert _at(table, "synthfilter_fill", t, "rare_kept") == 1.0
        assert 0.19 <= _at(table, "oracle_fill", t, "synthetic_share") <= 0.2 + 1e-9
        # True labels put every machine record at p = 1 > max_p = 0.9: none is added.
        assert _at(table, "oracle", t, "synthetic_share") == 0.0
        # Filling costs perplexity against not filling, with labels or with the detector.
        assert _at(table, "oracle_fill", t, "perplexity_ratio") > _at(table, "oracle", t, "perplexity_ratio")
    info = three_generations.info["regimes"]["oracle"]["rebuild"][0]
    assert info["by_reason"]["gold"] == 400 and info["by_reason"]["looks-synthetic"] == 400


def test_table_shape_and_generation_zero_is_shared(three_generations):
    table = three_generations.table
    assert table.columns == list(TEXT_COLUMNS)
    assert table.height == 5 * 4
    zero = table.filter(pl.col("generation") == 0).drop("regime")
    assert zero.n_unique() == 1


class _Spy:
    """A custom regime: records what it was shown, trains on gold plus fresh human candidates it can't tell apart."""

    def __init__(self, name: str, uses_labels: bool) -> None:
        self.name, self.uses_labels, self.seen = name, uses_labels, []

    def select(self, candidates, gold, rng, context=None):
        self.seen.append((list(candidates.columns), context.generation))
        assert len(context.sample_previous(3, rng)) == 3
        return pl.concat([gold.select("id", "text"), candidates.select("id", "text").head(5)])


def test_custom_regimes_and_label_hiding(brown_paragraphs):
    blind, sighted = _Spy("blind", False), _Spy("sighted", True)
    ticks = []
    result = run_text_simulation([blind, sighted, "gold_mix"], TINY, paragraphs=brown_paragraphs[:300],
                                 progress=lambda name, t: ticks.append((name, t)))
    assert [gen for _, gen in blind.seen] == [1, 2]
    assert all("is_synthetic" not in cols for cols, _ in blind.seen)
    assert all("is_synthetic" in cols for cols, _ in sighted.seen)
    assert ticks == [("blind", 1), ("blind", 2), ("sighted", 1), ("sighted", 2), ("gold_mix", 1), ("gold_mix", 2)]
    assert _at(result.table, "gold_mix", 2, "n_train") == 60 + 70


def test_same_seed_same_table(brown_paragraphs):
    a = run_text_simulation(["replace", "accumulate"], TINY, paragraphs=brown_paragraphs[:300]).table
    b = run_text_simulation(["replace", "accumulate"], TINY, paragraphs=brown_paragraphs[:300]).table
    assert a.equals(b)
    assert _at(a, "accumulate", 2, "n_train") == 60 + 2 * 70


class _Foreign:
    name, uses_labels = "foreign", False

    def select(self, candidates, gold, rng, context=None):
        return pl.DataFrame({"id": ["made-up"], "text": ["a text nobody offered"]})


def test_bad_inputs_raise_config_error(brown_paragraphs):
    with pytest.raises(ConfigError, match="only 50 human paragraphs"):
        run_text_simulation(["replace"], TINY, paragraphs=brown_paragraphs[:50])
    with pytest.raises(ConfigError, match="neither candidates nor gold"):
        run_text_simulation([_Foreign()], TINY, paragraphs=brown_paragraphs[:300])
    with pytest.raises(ConfigError, match="unknown text regime"):
        run_text_simulation(["nope"], TINY, paragraphs=brown_paragraphs[:300])


def test_monitor_columns_when_asked(brown_paragraphs):
    from dataclasses import replace

    from synthfilter.simulate.text import MONITOR_COLUMNS

    table = run_text_simulation(["replace"], replace(TINY, generations=1, monitor=True),
                                paragraphs=brown_paragraphs[:300]).table
    assert table.columns == list(TEXT_COLUMNS) + list(MONITOR_COLUMNS)
    assert table["monitor_recall"].is_between(0.0, 1.0).all()
