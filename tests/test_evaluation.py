"""Detector metrics: ranking on the score, calibration on p."""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.evaluation import (
    evaluate_detector,
    expected_calibration_error,
    tpr_at_fpr,
)


def test_tpr_at_fpr_counts_ties_against_the_detector():
    y = np.array([0] * 100 + [1] * 100)
    p = np.concatenate([np.linspace(0, 0.5, 98), [1.0, 1.0], np.full(100, 1.0)])  # 2 humans tied at the top
    assert tpr_at_fpr(y, p, 0.01) == 0.0  # 1 % allows one flagged human: the threshold must sit above the tie
    assert tpr_at_fpr(y, p, 0.02) == 1.0  # 2 % allows both tied humans


def test_ranking_metrics_use_scores_when_given():
    rng = np.random.default_rng(0)
    y = np.array([0] * 500 + [1] * 500)
    scores = np.concatenate([rng.normal(0, 1, 500), rng.normal(3, 1, 500)])
    p = np.minimum(np.floor(np.clip(scores, 0, None) * 2) / 4, 1.0)  # a coarse step map with a big top step
    on_p = evaluate_detector(y, p).overall
    both = evaluate_detector(y, p, scores=scores).overall
    assert both["auroc"] > on_p["auroc"]
    assert both["tpr_at_1pct_fpr"] > 0.5 > on_p["tpr_at_1pct_fpr"]
    assert both["tpr_at_1pct_fpr_on_p"] == on_p["tpr_at_1pct_fpr"]
    assert both["ece"] == on_p["ece"] == pytest.approx(expected_calibration_error(y, p), abs=1e-4)
    with pytest.raises(ConfigError):
        evaluate_detector(y, p, scores=scores[:10])
