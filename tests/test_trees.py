from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from synthfilter.errors import ModelError
from synthfilter.features import style_statistics
from synthfilter.trees import TreeEnsemble
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def fitted():
    """Boosted trees on the style statistics of real records (human vs machine)."""
    sample = pl.read_parquet(FIXTURES / "origin_sample.parquet")
    x = style_statistics(sample["text"].to_list()).astype(np.float64)
    y = sample["label"].to_numpy()
    model = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, early_stopping=False, random_state=0)
    return model.fit(x[::2], y[::2]), x[1::2]


def test_tree_walk_reproduces_scikit_learn_exactly(fitted):
    model, x = fitted
    trees = TreeEnsemble.from_estimator(model)
    np.testing.assert_array_equal(trees.decision_function(x), model.decision_function(x))
    # Chunking does not change anything.
    np.testing.assert_array_equal(trees.decision_function(x, chunk_rows=7), model.decision_function(x))


def test_missing_values_follow_the_fitted_direction(fitted):
    model, x = fitted
    x = x.copy()
    x[::3, :4] = np.nan
    np.testing.assert_array_equal(TreeEnsemble.from_estimator(model).decision_function(x), model.decision_function(x))


def test_plain_arrays_round_trip_without_pickle(fitted, tmp_path):
    model, x = fitted
    trees = TreeEnsemble.from_estimator(model)
    np.savez(tmp_path / "t.npz", **trees.to_arrays())
    with np.load(tmp_path / "t.npz", allow_pickle=False) as npz:
        loaded = TreeEnsemble.from_arrays({k: npz[k] for k in npz.files})
    np.testing.assert_array_equal(loaded.decision_function(x), model.decision_function(x))


def test_corrupt_arrays_are_refused(fitted):
    model, x = fitted
    arrays = TreeEnsemble.from_estimator(model).to_arrays()
    broken = dict(arrays)
    broken["tree_left"] = arrays["tree_left"].copy()
    inner = np.flatnonzero(arrays["tree_is_leaf"] == 0)[0]
    broken["tree_left"][inner] = arrays["tree_value"].size + 5
    with pytest.raises(ModelError, match="outside the node table"):
        TreeEnsemble.from_arrays(broken)
    cycle = dict(arrays)
    cycle["tree_right"] = arrays["tree_right"].copy()
    cycle["tree_right"][inner] = inner  # a node that is its own child: the walk would never end
    with pytest.raises(ModelError, match="cycle"):
        TreeEnsemble.from_arrays(cycle)
    with pytest.raises(ModelError, match="incomplete"):
        TreeEnsemble.from_arrays({k: v for k, v in arrays.items() if k != "tree_roots"})
    with pytest.raises(ModelError, match="expect"):
        TreeEnsemble.from_arrays(arrays).decision_function(x[:, :3])


def test_multiclass_models_are_refused():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    model = HistGradientBoostingClassifier(max_iter=3).fit(x, np.arange(60) % 3)
    with pytest.raises(ModelError, match="binary"):
        TreeEnsemble.from_estimator(model)
