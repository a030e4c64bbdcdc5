"""Gradient-boosted trees as plain arrays, with a numpy predictor.

scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
fits the origin detector's second stage, but its fitted object can only be
stored by pickling it (which runs code on load) or through private classes
that change between releases. :class:`TreeEnsemble` keeps what prediction
needs, the node table of every tree, in a handful of numeric arrays that
``numpy.load(..., allow_pickle=False)`` reads, and walks the trees with
numpy. It reproduces the estimator's ``decision_function`` exactly (same
comparisons in float64, same handling of missing values), which the tests
check on real data.

Prediction uses scikit-learn's compiled tree walk when the installed release
offers the one this module was written against (checked field by field and
against the numpy walk on the first rows of every call); otherwise the numpy
walk. Both add the trees' values in the same order, so the scores are equal.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from synthfilter.errors import ModelError

#: Fewest rows for which :meth:`TreeEnsemble.decision_function` imports scikit-learn for its compiled walk.
COMPILED_MIN_ROWS = 32_768

#: Node fields kept per tree node, with their stored dtypes.
NODE_FIELDS: dict[str, type] = {
    "feature": np.int32,
    "threshold": np.float64,
    "missing_left": np.uint8,
    "left": np.int32,
    "right": np.int32,
    "is_leaf": np.uint8,
    "value": np.float64,
}


@dataclass(frozen=True)
class TreeEnsemble:
    """The trees of a fitted binary gradient-boosting classifier.

    Nodes of all trees are concatenated; ``roots[t]`` is the first node of
    tree ``t`` and child indices are global. The raw score (log-odds) of a
    row is ``baseline`` plus the value of the leaf it reaches in each tree.

    Parameters
    ----------
    nodes : dict of str to numpy.ndarray
        One array per field of :data:`NODE_FIELDS`, all of the same length.
    roots : numpy.ndarray
        Index of each tree's root node.
    baseline : float
        The model's initial raw prediction.
    n_features : int
        Number of input columns the trees were fitted on.
    """

    nodes: dict[str, np.ndarray]
    roots: np.ndarray
    baseline: float
    n_features: int

    @classmethod
    def from_estimator(cls, model) -> TreeEnsemble:
        """Read the trees of a fitted binary ``HistGradientBoostingClassifier``.

        Raises
        ------
        ModelError
            For a multi-class model or one with categorical splits.
        """
        predictors = getattr(model, "_predictors", None)
        if predictors is None:
            raise ModelError("the gradient-boosting model is not fitted")
        if any(len(per_iteration) != 1 for per_iteration in predictors):
            raise ModelError("only binary gradient-boosting classifiers can be stored as a TreeEnsemble")
        parts: dict[str, list[np.ndarray]] = {name: [] for name in NODE_FIELDS}
        roots, offset = [], 0
        for (predictor,) in predictors:
            table = predictor.nodes
            if np.any(table["is_categorical"]):
                raise ModelError("categorical splits are not supported in a stored TreeEnsemble")
            roots.append(offset)
            parts["feature"].append(table["feature_idx"])
            parts["threshold"].append(table["num_threshold"])
            parts["missing_left"].append(table["missing_go_to_left"])
            parts["left"].append(table["left"].astype(np.int64) + offset)
            parts["right"].append(table["right"].astype(np.int64) + offset)
            parts["is_leaf"].append(table["is_leaf"])
            parts["value"].append(table["value"])
            offset += table.shape[0]
        nodes = {name: np.concatenate(parts[name]).astype(dtype) for name, dtype in NODE_FIELDS.items()}
        baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        return cls(nodes=nodes, roots=np.asarray(roots, dtype=np.int32), baseline=baseline,
                   n_features=int(model.n_features_in_))

    def to_arrays(self, prefix: str = "tree_") -> dict[str, np.ndarray]:
        """Plain arrays for ``numpy.savez`` (keys start with ``prefix``)."""
        arrays = {f"{prefix}{name}": values for name, values in self.nodes.items()}
        arrays[f"{prefix}roots"] = self.roots
        arrays[f"{prefix}meta"] = np.array([self.baseline, float(self.n_features)])
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "tree_") -> TreeEnsemble:
        """Inverse of :meth:`to_arrays`; checks that the node table is consistent.

        Raises
        ------
        ModelError
            Missing arrays, or child or root indices that point outside the table.
        """
        try:
            nodes = {name: np.asarray(arrays[f"{prefix}{name}"]).astype(dtype, copy=False)
                     for name, dtype in NODE_FIELDS.items()}
            roots = np.asarray(arrays[f"{prefix}roots"]).astype(np.int32, copy=False)
            baseline, n_features = (float(v) for v in arrays[f"{prefix}meta"])
        except (KeyError, ValueError) as exc:
            raise ModelError(f"incomplete tree arrays ({exc})") from None
        size = nodes["value"].size
        if any(values.shape != (size,) for values in nodes.values()):
            raise ModelError("tree arrays differ in length")
        inner = nodes["is_leaf"] == 0
        children = np.concatenate([nodes["left"][inner], nodes["right"][inner], roots])
        if children.size and (children.min() < 0 or children.max() >= size):
            raise ModelError("tree arrays point outside the node table")
        # scikit-learn numbers a node's children after it; anything else could loop forever.
        own = np.flatnonzero(inner)
        if np.any(nodes["left"][inner] <= own) or np.any(nodes["right"][inner] <= own):
            raise ModelError("tree arrays point back to an earlier node (a cycle)")
        if np.any(nodes["feature"][inner] < 0) or np.any(nodes["feature"][inner] >= n_features):
            raise ModelError("tree arrays split on a feature the model does not have")
        return cls(nodes=nodes, roots=roots, baseline=baseline, n_features=int(n_features))

    def decision_function(self, x: np.ndarray, chunk_rows: int = 512, compiled: bool = True) -> np.ndarray:
        """Raw scores (log-odds), shape ``(n,)``.

        Parameters
        ----------
        x : numpy.ndarray
            Shape ``(n, n_features)``; NaN is a missing value.
        chunk_rows : int, default 512
            Rows walked at once by the numpy walk (memory is ``chunk_rows x n_trees``
            indices; small chunks keep the walk in cache).
        compiled : bool, default True
            Use scikit-learn's compiled walk where it is available (same scores,
            about 2.5x faster) for inputs of :data:`COMPILED_MIN_ROWS` rows or
            more, or when scikit-learn is already imported; ``False``: the numpy walk.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ModelError(f"the trees expect {self.n_features} features, got shape {x.shape}")
        # Importing scikit-learn costs about 1.2 s; the compiled walk saves ~35 us per row, so small
        # inputs keep the numpy walk unless scikit-learn is already loaded.
        worth_it = x.shape[0] >= COMPILED_MIN_ROWS or "sklearn.ensemble" in sys.modules
        walk = self._compiled_walk() if compiled and worth_it else None
        if walk is not None and x.shape[0]:
            probe = x[:16]
            if np.array_equal(walk(probe), self._numpy_walk(probe, chunk_rows)):
                return walk(x)
            object.__setattr__(self, "_compiled", False)
            warnings.warn("scikit-learn's compiled tree walk disagrees with the numpy walk; using the numpy walk",
                          RuntimeWarning, stacklevel=2)
        return self._numpy_walk(x, chunk_rows)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_compiled", None)  # a closure over scikit-learn's walk: rebuilt on first use
        return state

    def _compiled_walk(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """scikit-learn's per-tree compiled walk over this ensemble, or ``None`` where it is not available."""
        cached = self.__dict__.get("_compiled")
        if cached is None:
            cached = _sklearn_walk(self) or False
            object.__setattr__(self, "_compiled", cached)
        return cached or None

    def _numpy_walk(self, x: np.ndarray, chunk_rows: int) -> np.ndarray:
        out = np.empty(x.shape[0], dtype=np.float64)
        leaf = self.nodes["is_leaf"].astype(bool)
        # A leaf sends every row to itself (right child, as ``x <= nan`` is false), so
        # all entries take the same steps; entries at a leaf are dropped now and then.
        feature = np.where(leaf, 0, self.nodes["feature"]).astype(np.intp)
        threshold = np.where(leaf, np.nan, self.nodes["threshold"])
        own = np.arange(leaf.size)
        # children[2 * node + went_left]
        children = np.column_stack([np.where(leaf, own, self.nodes["right"]),
                                    np.where(leaf, own, self.nodes["left"])]).astype(np.intp).ravel()
        missing_left = self.nodes["missing_left"].astype(np.intp)
        value = self.nodes["value"]
        n_trees = self.roots.size
        roots = self.roots.astype(np.intp)
        for start in range(0, x.shape[0], chunk_rows):
            rows = np.ascontiguousarray(x[start:start + chunk_rows])
            flat = rows.ravel()
            has_nan = bool(np.isnan(flat).any())
            # One entry per (row, tree), row-major.
            node = np.tile(roots, rows.shape[0])
            pending = np.flatnonzero(~leaf[node])
            at = node[pending]
            base = (pending // n_trees) * rows.shape[1]  # where each entry's row starts in flat
            while pending.size:
                values = flat[base + feature[at]]
                went_left = (values <= threshold[at]).astype(np.intp)
                if has_nan:
                    missing = np.isnan(values) & ~leaf[at]
                    went_left[missing] = missing_left[at[missing]]
                at = children[2 * at + went_left]
                done = leaf[at]
                n_done = np.count_nonzero(done)
                if n_done * 4 >= done.size:  # a quarter arrived: record them and walk on without
                    node[pending[done]] = at[done]
                    walking = ~done
                    pending, at, base = pending[walking], at[walking], base[walking]
            leaves = value[node.reshape(rows.shape[0], n_trees).T]  # (trees, rows)
            raw = np.full(rows.shape[0], self.baseline)
            for tree in range(n_trees):  # tree by tree, as scikit-learn adds them
                raw += leaves[tree]
            out[start:start + chunk_rows] = raw
        return out


#: Fields of scikit-learn's predictor node record this module fills (checked before use).
_SKLEARN_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf",
                   "is_categorical")


def _sklearn_walk(trees: TreeEnsemble) -> Callable[[np.ndarray], np.ndarray] | None:
    """A scorer that walks each tree with scikit-learn's compiled ``_predict_from_raw_data``.

    It is a private function of scikit-learn's gradient boosting, so it is
    used only when its node record has the fields filled here; the caller
    also compares it with the numpy walk. Trees are added one by one in
    order, as scikit-learn does. ``None`` when not available.
    """
    try:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    except ImportError:
        return None
    if any(name not in (PREDICTOR_RECORD_DTYPE.names or ()) for name in _SKLEARN_FIELDS):
        return None
    ends = np.append(trees.roots[1:], trees.nodes["value"].size).astype(np.int64)
    tables = []
    for root, end in zip(trees.roots.astype(np.int64), ends):
        table = np.zeros(end - root, dtype=PREDICTOR_RECORD_DTYPE)
        part = slice(root, end)
        leaf = trees.nodes["is_leaf"][part].astype(bool)
        table["value"] = trees.nodes["value"][part]
        table["feature_idx"] = trees.nodes["feature"][part]
        table["num_threshold"] = trees.nodes["threshold"][part]
        table["missing_go_to_left"] = trees.nodes["missing_left"][part]
        table["left"] = np.where(leaf, 0, trees.nodes["left"][part] - root)
        table["right"] = np.where(leaf, 0, trees.nodes["right"][part] - root)
        table["is_leaf"] = leaf
        tables.append(table)
    no_bitsets = np.zeros((0, 8), dtype=np.uint32)
    no_map = np.zeros(trees.n_features, dtype=np.uint32)

    def walk(x: np.ndarray, chunk_rows: int = 1024) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(x.shape[0], dtype=np.float64)
        for start in range(0, x.shape[0], chunk_rows):  # rows that stay in cache while every tree walks them
            rows = x[start:start + chunk_rows]
            raw = np.full(rows.shape[0], trees.baseline)
            values = np.empty(rows.shape[0], dtype=np.float64)
            for table in tables:  # tree by tree, as scikit-learn adds them
                _predict_from_raw_data(table, rows, no_bitsets, no_bitsets, no_map, 1, values)
                raw += values
            out[start:start + chunk_rows] = raw
        return out

    try:
        walk(np.zeros((1, trees.n_features)))
    except (TypeError, ValueError):  # a signature this module does not know
        return None
    return walk
