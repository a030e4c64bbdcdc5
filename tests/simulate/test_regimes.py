"""Regimes: what each one trains on, and that filtering regimes never see the labels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.simulate.regimes import REGIMES, make_regime


@pytest.fixture()
def candidates() -> pl.DataFrame:
    return pl.DataFrame({
        "id": ["c1", "c2", "c3"],
        "text": ["machine one", "human one", "machine two"],
        "generation": [1, 1, 1],
        "is_synthetic": [True, False, True],
    })


@pytest.fixture()
def gold() -> pl.DataFrame:
    return pl.DataFrame({"id": ["g1", "g2"], "text": ["gold one", "gold two"]})


def test_replace_keeps_only_synthetic(candidates, gold):
    chosen = make_regime("replace").select(candidates, gold, np.random.default_rng(0))
    assert chosen["id"].to_list() == ["c1", "c3"]


def test_naive_mix_keeps_every_candidate_and_no_gold(candidates, gold):
    chosen = make_regime("naive_mix").select(candidates.drop("is_synthetic"), gold, np.random.default_rng(0))
    assert chosen["id"].to_list() == ["c1", "c2", "c3"]


def test_gold_mix_adds_gold(candidates, gold):
    chosen = make_regime("gold_mix").select(candidates.drop("is_synthetic"), gold, np.random.default_rng(0))
    assert chosen["id"].to_list() == ["g1", "g2", "c1", "c2", "c3"]


def test_accumulate_grows(candidates, gold):
    regime = make_regime("accumulate")
    rng = np.random.default_rng(0)
    first = regime.select(candidates.drop("is_synthetic"), gold, rng)
    later = candidates.drop("is_synthetic").with_columns(pl.col("id").str.replace("c", "d"))
    second = regime.select(later, gold, rng)
    assert first.height == 5 and second.height == 8
    assert set(first["id"]) < set(second["id"])


def test_label_flags():
    assert {name for name, factory in REGIMES.items() if factory().uses_labels} == {"replace", "oracle"}


def test_synthfilter_refuses_labels(candidates, gold):
    with pytest.raises(ConfigError, match="true labels"):
        make_regime("synthfilter").select(candidates, gold, np.random.default_rng(0))


def test_unknown_regime():
    with pytest.raises(ConfigError, match="unknown text regime"):
        make_regime("magic")


def test_second_copy_under_another_name():
    regime = make_regime("synthfilter", detector="shipped", name="synthfilter_shipped")
    assert regime.name == "synthfilter_shipped" and regime.detector == "shipped" and not regime.uses_labels
