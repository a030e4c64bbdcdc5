"""Surface "tells": features that could give away how a text was made, not who wrote it.

A corpus where the first character's case, the last character, the length,
markup or whitespace separate the classes teaches a detector those artefacts.
:func:`tell_auroc` measures how well a small logistic regression on these
features alone separates two sets of texts (0.5 = not at all).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["TELL_NAMES", "tell_auroc", "tell_features"]

_LAST = (".", "?", "!", '"', ")", ":")
_MARKUP = set("<>*#_`[]{}|~")
_SPACE_BEFORE_PUNCT = re.compile(r"\w +[.,;:!?](?=\s|$)")

#: Names of the columns of :func:`tell_features`.
TELL_NAMES: tuple[str, ...] = (
    "first_upper",
    "first_lower",
    "first_digit",
    "first_quote_or_bracket",
    *(f"last_{c}" for c in _LAST),
    "last_alnum",
    "length_chars",
    "length_sq",
    "markup_chars",
    "double_spaces",
    "space_before_punct",
    "line_breaks",
    "edge_whitespace",
)


def tell_features(texts: Sequence[str]) -> np.ndarray:
    """Surface features of each text (see :data:`TELL_NAMES`).

    Parameters
    ----------
    texts : sequence of str
        Non-empty texts.

    Returns
    -------
    numpy.ndarray of float64, shape (n, len(TELL_NAMES))
    """
    rows = []
    for text in texts:
        core = text.strip() or " "
        first, last = core[0], core[-1]
        length = len(text) / 600.0
        rows.append(
            [
                first.isupper(),
                first.islower(),
                first.isdigit(),
                first in "\"'([",
                *(last == c for c in _LAST),
                last.isalnum(),
                length,
                length**2,
                sum(ch in _MARKUP for ch in text),
                text.count("  "),
                len(_SPACE_BEFORE_PUNCT.findall(text)),
                text.count("\n"),
                text != text.strip(),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


def tell_auroc(texts: Sequence[str], labels: Sequence[int], seed: int = 0, n_splits: int = 5) -> float:
    """Cross-validated AUROC of a logistic regression on :func:`tell_features` alone.

    Parameters
    ----------
    texts : sequence of str
        Texts of both classes.
    labels : sequence of int
        0/1 class of each text.
    seed : int, default 0
        Seed of the fold assignment.
    n_splits : int, default 5
        Stratified folds.

    Returns
    -------
    float
        AUROC of out-of-fold predictions; near 0.5 means the tells carry no signal.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = tell_features(texts)
    y = np.asarray(labels)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))
