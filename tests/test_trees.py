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


@pytest.mark.parametrize("compiled", [True, False])
def test_missing_values_follow_the_fitted_direction(fitted, compiled):
    model, x = fitted
    x = x.copy()
    x[::3, :4] = np.nan
    np.testing.assert_array_equal(TreeEnsemble.from_estimator(model).decision_function(x, compiled=compiled),
                                  model.decision_function(x))


def test_compiled_and_numpy_walks_give_the_same_scores(fitted):
    model, x = fitted
    trees = TreeEnsemble.from_estimator(model)
    assert trees._compiled_walk() is not None  # scikit-learn's walk is used with the pinned releases
    np.testing.assert_array_equal(trees.decision_function(x), trees.decision_function(x, compiled=False))


def test_a_compiled_walk_that_disagrees_is_dropped_for_the_numpy_walk(fitted):
    model, x = fitted
    trees = TreeEnsemble.from_estimator(model)
    object.__setattr__(trees, "_compiled", lambda rows: np.zeros(rows.shape[0]))  # a broken walk
    with pytest.warns(RuntimeWarning, match="disagrees"):
        scores = trees.decision_function(x)
    np.testing.assert_array_equal(scores, model.decision_function(x))
    assert trees._compiled_walk() is None


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


def _reference_walk(trees: TreeEnsemble, x: np.ndarray) -> np.ndarray:
    """The original walk over every (row, tree) entry that decision_function replaced."""
    nodes = trees.nodes
    node = np.broadcast_to(trees.roots, (x.shape[0], trees.roots.size)).copy()
    row_index = np.broadcast_to(np.arange(x.shape[0])[:, None], node.shape)
    is_leaf, missing_left = nodes["is_leaf"].astype(bool), nodes["missing_left"].astype(bool)
    active = ~is_leaf[node]
    while active.any():
        at = node[active]
        values = x[row_index[active], nodes["feature"][at]]
        go_left = np.where(np.isnan(values), missing_left[at], values <= nodes["threshold"][at])
        node[active] = np.where(go_left, nodes["left"][at], nodes["right"][at])
        active = ~is_leaf[node]
    raw = np.full(x.shape[0], trees.baseline)
    for tree in range(node.shape[1]):
        raw += nodes["value"][node[:, tree]]
    return raw


def test_walk_with_missing_values_equals_scikit_learn_and_the_reference_walk(fitted):
    model, x = fitted
    rng = np.random.default_rng(0)
    x_train = x.copy()
    x_train[rng.random(x_train.shape) < 0.1] = np.nan  # missing values seen in training: learned directions
    y = (np.nan_to_num(x_train[:, 0]) > np.nanmedian(x_train[:, 0])).astype(int)
    with_nan = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=31, early_stopping=False,
                                              random_state=0).fit(x_train, y)
    trees = TreeEnsemble.from_estimator(with_nan)
    x_test = x[::-1].copy()
    x_test[rng.random(x_test.shape) < 0.2] = np.nan
    for chunk_rows in (1, 5, 512, 10_000):
        got = trees.decision_function(x_test, chunk_rows=chunk_rows)
        assert np.array_equal(got, with_nan.decision_function(x_test))
        assert np.array_equal(got, _reference_walk(trees, x_test))


def test_small_inputs_do_not_import_scikit_learn(fitted, tmp_path):
    """The compiled walk is worth scikit-learn's ~1 s import only on large inputs."""
    import subprocess
    import sys

    model, x = fitted
    np.savez(tmp_path / "t.npz", **TreeEnsemble.from_estimator(model).to_arrays())
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np\n"
        "from synthfilter.trees import TreeEnsemble\n"
        f"npz = np.load({str(tmp_path / 't.npz')!r}, allow_pickle=False)\n"
        "trees = TreeEnsemble.from_arrays({k: npz[k] for k in npz.files})\n"
        f"scores = trees.decision_function(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "print(int('sklearn' in sys.modules), np.isfinite(scores).all())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "True"]


def test_a_used_ensemble_pickles_and_walks_again(fitted):
    import pickle

    model, x = fitted
    trees = TreeEnsemble.from_estimator(model)
    expected = trees.decision_function(x)  # builds the compiled walk
    again = pickle.loads(pickle.dumps(trees))
    np.testing.assert_array_equal(again.decision_function(x), expected)
