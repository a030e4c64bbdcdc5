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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthfilter.errors import ModelError

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

    def decision_function(self, x: np.ndarray, chunk_rows: int = 512) -> np.ndarray:
        """Raw scores (log-odds), shape ``(n,)``.

        Parameters
        ----------
        x : numpy.ndarray
            Shape ``(n, n_features)``; NaN is a missing value.
        chunk_rows : int, default 512
            Rows walked at once (memory is ``chunk_rows x n_trees`` indices; small
            chunks keep the walk in cache).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ModelError(f"the trees expect {self.n_features} features, got shape {x.shape}")
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
