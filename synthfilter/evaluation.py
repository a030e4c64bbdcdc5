"""Detector metrics: AUROC, true-positive rate at fixed false-positive rates,
expected calibration error, per-source breakdowns and their plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score, roc_curve

from synthfilter.errors import ConfigError

FPR_LEVELS = (0.01, 0.05)


def tpr_at_fpr(y: np.ndarray, p: np.ndarray, fpr: float) -> float:
    """True-positive rate at the threshold whose false-positive rate is at most ``fpr``.

    The threshold is the smallest score such that at most ``fpr`` of the
    human (label 0) records score at or above it (ties count against the
    detector).
    """
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    neg = np.sort(p[y == 0])[::-1]
    if neg.size == 0 or (y == 1).sum() == 0:
        return float("nan")
    allowed = int(np.floor(fpr * neg.size))
    # Scores strictly above the (allowed+1)-th highest negative are positives.
    threshold = neg[allowed] if allowed < neg.size else -np.inf
    return float((p[y == 1] > threshold).mean())


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error with equal-width bins (Guo et al., 2017)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(ece)


def reliability_curve(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pl.DataFrame:
    """Mean predicted probability, observed machine rate and count per bin."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = [(b, p[bins == b].mean(), y[bins == b].mean(), int((bins == b).sum()))
            for b in range(n_bins) if (bins == b).any()]
    return pl.DataFrame(rows, schema=["bin", "mean_predicted", "observed", "n"], orient="row")


@dataclass
class DetectorReport:
    """Metrics of a detector on labelled data.

    Attributes
    ----------
    overall : dict
        ``n``, ``auroc``, ``tpr_at_1pct_fpr``, ``tpr_at_5pct_fpr``, ``ece``.
    per_source : polars.DataFrame
        One row per source: its records against all records of the other class.
    """

    overall: dict
    per_source: pl.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"overall": self.overall, "per_source": self.per_source.to_dicts()}


def _metrics(y: np.ndarray, p: np.ndarray, scores: np.ndarray | None = None) -> dict:
    out = {"n": int(y.size), "n_machine": int(y.sum()), "n_human": int((1 - y).sum())}
    if len(np.unique(y)) == 2:
        rank = p if scores is None else scores
        out["auroc"] = float(roc_auc_score(y, rank))
        for level in FPR_LEVELS:
            out[f"tpr_at_{int(level * 100)}pct_fpr"] = tpr_at_fpr(y, rank, level)
        if scores is not None:
            out["tpr_at_1pct_fpr_on_p"] = tpr_at_fpr(y, p, 0.01)
    out["ece"] = expected_calibration_error(y, p)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def evaluate_detector(
    y: Sequence[int],
    p: Sequence[float],
    sources: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
) -> DetectorReport:
    """Compute the detector metrics, overall and per source.

    Parameters
    ----------
    y : sequence of int
        1 = machine, 0 = human.
    p : sequence of float
        Calibrated machine probabilities.
    sources : sequence of str, optional
        Source of each record. A source's AUROC and TPRs compare its records
        with every record of the other class, so each source gets a
        two-class figure.
    scores : sequence of float, optional
        The detector's uncalibrated scores, of which ``p`` is a monotone map.
        When given, the ranking metrics (AUROC, TPR at a false-positive rate)
        use them: isotonic calibration is a step function whose top step can
        hold more than 1 % of the human records, and ties there count against
        the detector, so TPR at 1 % FPR read off ``p`` can fall to near 0
        while the score ranks the records well. ``tpr_at_1pct_fpr_on_p``
        then reports the figure read off ``p`` as well.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    sc = None if scores is None else np.asarray(scores, dtype=np.float64)
    if y.size != p.size or y.size == 0 or (sc is not None and sc.size != y.size):
        raise ConfigError("labels, probabilities and scores must be non-empty and of equal length")
    overall = _metrics(y, p, sc)
    rows = []
    if sources is not None:
        sources = np.asarray(sources)
        for source in sorted(set(sources.tolist())):
            mask = sources == source
            cls = int(round(y[mask].mean()))
            versus = mask | (y != cls)
            row = {"source": source, "class": "machine" if cls else "human",
                   **_metrics(y[versus], p[versus], None if sc is None else sc[versus])}
            row["ece"] = round(expected_calibration_error(y[mask], p[mask]), 4)
            row["mean_p_synthetic"] = round(float(p[mask].mean()), 4)
            row["n"] = int(mask.sum())
            rows.append(row)
    return DetectorReport(overall=overall, per_source=pl.DataFrame(rows))


def plot_roc_and_reliability(
    y: np.ndarray, p: np.ndarray, out_dir: str | Path, title: str = "", scores: np.ndarray | None = None
) -> list[Path]:
    """Write ``roc.png`` (log-scaled FPR; from ``scores`` when given) and ``reliability.png``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthfilter.io import atomic_path

    out_dir = Path(out_dir)
    fpr, tpr, _ = roc_curve(y, p if scores is None else scores)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    ax.plot(np.maximum(fpr, 1e-4), tpr, lw=2)
    ax.set_xscale("log")
    ax.axvline(0.01, color="grey", ls=":", lw=1)
    ax.set(xlabel="false-positive rate (human flagged)", ylabel="true-positive rate", title=f"ROC {title}".strip(),
           xlim=(1e-4, 1), ylim=(0, 1.01))
    fig.tight_layout()
    with atomic_path(out_dir / "roc.png") as tmp:
        fig.savefig(tmp, format="png")
    paths.append(out_dir / "roc.png")
    plt.close(fig)

    curve = reliability_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
    ax.plot(curve["mean_predicted"], curve["observed"], marker="o")
    ax.set(xlabel="predicted p_synthetic", ylabel="observed machine share",
           title=f"Reliability (ECE {expected_calibration_error(y, p):.3f}) {title}".strip(), xlim=(0, 1), ylim=(0, 1))
    fig.tight_layout()
    with atomic_path(out_dir / "reliability.png") as tmp:
        fig.savefig(tmp, format="png")
    paths.append(out_dir / "reliability.png")
    plt.close(fig)
    return paths
