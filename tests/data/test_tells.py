from __future__ import annotations

import numpy as np

from synthfilter.data.tells import TELL_NAMES, tell_auroc, tell_features


def test_tell_features_shape_and_values():
    x = tell_features(["Hello <b>there</b>.", "what now?"])
    assert x.shape == (2, len(TELL_NAMES))
    row = dict(zip(TELL_NAMES, x[0], strict=True))
    assert row["first_upper"] == 1 and row["last_."] == 1 and row["markup_chars"] == 4
    row = dict(zip(TELL_NAMES, x[1], strict=True))
    assert row["first_lower"] == 1 and row["last_?"] == 1


def test_tell_auroc_finds_a_planted_tell_and_not_a_missing_one(brown_frame):
    texts = brown_frame["text"].head(400).to_list()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, len(texts))
    assert abs(tell_auroc(texts, labels) - 0.5) < 0.12
    planted = [t.rstrip(".") + "!" if y else t for t, y in zip(texts, labels, strict=True)]
    assert tell_auroc(planted, labels) > 0.9
