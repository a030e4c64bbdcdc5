"""Detector metrics: AUROC, true-positive rate at fixed false-positive rates,
expected calibration error, per-source (per generator, per human domain) and
per-length breakdowns, and their plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score, roc_curve

from synthfilter.errors import ConfigError

FPR_LEVELS = (0.01, 0.05)
#: Length bins of :func:`length_breakdown`, in words: ``(label, low, high)`` with ``low <= words < high``.
LENGTH_BINS: tuple[tuple[str, int, float], ...] = (("<50", 0, 50), ("50-150", 50, 150), (">150", 150, float("inf")))


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


def word_counts(texts: Sequence[str]) -> np.ndarray:
    """Whitespace-separated words of each text (the unit of :data:`LENGTH_BINS`)."""
    return np.fromiter((len(str(t).split()) for t in texts), dtype=np.int64, count=len(texts))


def _ranking(y: np.ndarray, rank: np.ndarray) -> dict:
    out: dict = {"n": int(y.size), "n_machine": int(y.sum()), "n_human": int((1 - y).sum())}
    if len(np.unique(y)) == 2:
        out["auroc"] = round(float(roc_auc_score(y, rank)), 4)
        out["tpr_at_1pct_fpr"] = round(tpr_at_fpr(y, rank, 0.01), 4)
    else:
        out["auroc"] = out["tpr_at_1pct_fpr"] = None
    return out


def length_breakdown(
    y: Sequence[int],
    p: Sequence[float],
    words: Sequence[int],
    sources: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
) -> pl.DataFrame:
    """AUROC and TPR at 1 % FPR by text length, overall and per source.

    Records are put in the bins of :data:`LENGTH_BINS` (< 50, 50-150, > 150
    words). Within a bin, ``source="all"`` compares its machine and human
    records; a source's row compares its records in the bin with every
    record of the other class in the same bin, so a generator's row reads
    "how well are this generator's short texts told from short human
    texts", and a human domain's row how well its texts are told from
    machine text of that length. Ranking uses ``scores`` (the uncalibrated
    score) when given, else ``p``; a bin without both classes gets nulls.

    Parameters
    ----------
    y : sequence of int
        1 = machine, 0 = human.
    p : sequence of float
        Calibrated probabilities.
    words : sequence of int
        Length of each record in words (:func:`word_counts`).
    sources : sequence of str, optional
        Source (generator or human domain) of each record.
    scores : sequence of float, optional
        Uncalibrated scores, a monotone map of which ``p`` is.

    Returns
    -------
    polars.DataFrame
        ``length``, ``source``, ``class`` (``machine``, ``human`` or null for
        ``all``), ``n``, ``n_machine``, ``n_human``, ``auroc``,
        ``tpr_at_1pct_fpr``, ``mean_p_synthetic``; empty bins are left out.

    Examples
    --------
    >>> y = np.array([0, 1, 0, 1]); s = np.array([0.1, 0.9, 0.2, 0.8]); w = np.array([10, 12, 80, 90])
    >>> length_breakdown(y, s, w)["auroc"].to_list()
    [1.0, 1.0]
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    words = np.asarray(words, dtype=np.int64)
    rank = p if scores is None else np.asarray(scores, dtype=np.float64)
    if not (y.size == p.size == words.size == rank.size) or y.size == 0:
        raise ConfigError("labels, probabilities, lengths and scores must be non-empty and of equal length")
    src = None if sources is None else np.asarray(sources, dtype=object).astype(str)
    if src is not None and src.size != y.size:
        raise ConfigError("sources must name one source per record")
    rows = []
    for label, low, high in LENGTH_BINS:
        in_bin = (words >= low) & (words < high)
        if not in_bin.any():
            continue
        rows.append({"length": label, "source": "all", "class": None, **_ranking(y[in_bin], rank[in_bin]),
                     "mean_p_synthetic": round(float(p[in_bin].mean()), 4)})
        if src is None:
            continue
        for source in sorted(set(src[in_bin].tolist())):
            mine = in_bin & (src == source)
            cls = int(round(y[mine].mean()))
            versus = mine | (in_bin & (y != cls))
            rows.append({"length": label, "source": source, "class": "machine" if cls else "human",
                         **_ranking(y[versus], rank[versus]), "n": int(mine.sum()),
                         "mean_p_synthetic": round(float(p[mine].mean()), 4)})
    schema = {"length": pl.String, "source": pl.String, "class": pl.String, "n": pl.Int64, "n_machine": pl.Int64,
              "n_human": pl.Int64, "auroc": pl.Float64, "tpr_at_1pct_fpr": pl.Float64,
              "mean_p_synthetic": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def breakdown_markdown(per_source: pl.DataFrame, per_length: pl.DataFrame | None = None) -> str:
    """Markdown tables of a per-source report and a :func:`length_breakdown` (for a model card).

    Parameters
    ----------
    per_source : polars.DataFrame
        :attr:`DetectorReport.per_source`.
    per_length : polars.DataFrame, optional
        :func:`length_breakdown`'s table.

    Returns
    -------
    str
        Two tables: by generator / human domain, then by length.
    """

    def fmt(v) -> str:
        return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else (f"{v:.4f}" if isinstance(v, float) else str(v))

    lines = ["| generator / human domain | class | n | AUROC | TPR at 1% FPR | mean p_synthetic |",
             "|---|---|---:|---:|---:|---:|"]
    for r in per_source.iter_rows(named=True):
        lines.append(f"| {r['source']} | {r['class']} | {r['n']:,} | {fmt(r.get('auroc'))} | "
                     f"{fmt(r.get('tpr_at_1pct_fpr'))} | {fmt(r.get('mean_p_synthetic'))} |")
    if per_length is not None and per_length.height:
        lines += ["", "| length (words) | source | class | n | AUROC | TPR at 1% FPR | mean p_synthetic |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for r in per_length.iter_rows(named=True):
            lines.append(f"| {r['length']} | {r['source']} | {r['class'] or 'both'} | {r['n']:,} | {fmt(r['auroc'])} | "
                         f"{fmt(r['tpr_at_1pct_fpr'])} | {fmt(r['mean_p_synthetic'])} |")
    return "\n".join(lines) + "\n"
