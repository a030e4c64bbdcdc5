"""Figures for the HTML report: matplotlib (Agg backend) rendered to inline base64 PNG.

Figures carry no timestamp or version metadata, so the same data gives the
same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np

from synthfilter.report.html import esc

__all__ = ["figure_html", "histogram", "metric_lines", "projection_scatter", "rarity_origin_scatter"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_DPI = 110


def _plain(text: str) -> str:
    """Keep matplotlib from reading ``$...$`` in names as mathtext."""
    return str(text).replace("$", r"\$")


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, color="#e5e7eb", linewidth=0.7)
    ax.set_axisbelow(True)


def figure_html(fig, alt: str, caption: str | None = None) -> str:
    """Render a figure as ``<figure><img src="data:image/png;base64,...">`` and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def histogram(values: np.ndarray, *, title: str, xlabel: str, bins: int = 40,
              value_range: tuple[float, float] | None = None, marker: float | None = None,
              marker_label: str | None = None) -> str:
    """A histogram of one column as an inline figure."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(6.2, 3.0))
    ax.hist(values, bins=bins, range=value_range, color=_PALETTE[0], alpha=0.85, edgecolor="white", linewidth=0.4)
    if marker is not None:
        ax.axvline(marker, color=_PALETTE[1], linestyle="--", linewidth=1.2, label=marker_label)
        if marker_label:
            ax.legend(frameon=False, fontsize=8)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("records", fontsize=9)
    ax.tick_params(labelsize=8)
    _style(ax)
    return figure_html(fig, alt=title, caption=f"{title}: {values.size:,} records")


def rarity_origin_scatter(rarity: np.ndarray, p: np.ndarray, *, rare_at: float = 0.95,
                          machine_at: float = 0.5) -> str:
    """``p_synthetic`` against rarity, one dot per record: the plane a rebuild decides in.

    Rarity is a percentile, so its histogram is flat by construction; this
    shows instead which rare records look human (protected by a rebuild) and
    which look machine-written. Dashed lines mark ``rare_at`` and
    ``machine_at``.
    """
    rarity = np.asarray(rarity, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    keep = np.isfinite(rarity) & np.isfinite(p)
    rarity, p = rarity[keep], p[keep]
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    ax.scatter(rarity, p, s=6, alpha=0.45 if rarity.size > 2000 else 0.7, color=_PALETTE[0], linewidths=0)
    ax.axvline(rare_at, color=_PALETTE[2], linestyle="--", linewidth=1.1, label=f"rarity {rare_at:g}")
    ax.axhline(machine_at, color=_PALETTE[1], linestyle="--", linewidth=1.1, label=f"p_synthetic {machine_at:g}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title("p_synthetic against rarity", fontsize=11)
    ax.set_xlabel("rarity (1 = rarest)", fontsize=9)
    ax.set_ylabel("p_synthetic", fontsize=9)
    ax.tick_params(labelsize=8)
    _style(ax)
    rare_human = int(((rarity >= rare_at) & (p <= machine_at)).sum())
    return figure_html(fig, alt="p_synthetic against rarity",
                       caption=f"p_synthetic against rarity: {rarity.size:,} records, {rare_human:,} rare and "
                               f"human-looking (bottom right, what a rebuild protects)")


def metric_lines(batch_labels: Sequence[str], series: Sequence[Mapping], columns: int = 3) -> str:
    """Small multiples: one line chart per metric across batches, with the null mean and the alarm bound.

    Parameters
    ----------
    batch_labels : sequence of str
        X-axis labels, in batch order.
    series : sequence of mapping
        Each with ``title``, ``values`` (one per batch, ``None`` allowed),
        optional ``null_mean`` and ``bound`` (one per batch), ``alarm``
        (booleans per batch) and ``bad`` ("low"/"high"/"none").
    columns : int, default 3
    """
    if not series:
        return ""
    rows = int(np.ceil(len(series) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.45 * rows), squeeze=False)
    x = np.arange(len(batch_labels))
    short = [_plain(label if len(label) <= 14 else label[:12] + "…") for label in batch_labels]
    for ax, spec in zip(axes.ravel(), series):
        values = np.array([np.nan if v is None else v for v in spec["values"]], dtype=np.float64)
        if spec.get("null_mean") is not None:
            mean = np.array([np.nan if v is None else v for v in spec["null_mean"]], dtype=np.float64)
            ax.plot(x, mean, color="#6b7280", linestyle="--", linewidth=1, label="reference samples")
        bound = None
        if spec.get("bound") is not None:
            bound = np.array([np.nan if v is None else v for v in spec["bound"]], dtype=np.float64)
            ax.plot(x, bound, color=_PALETTE[1], linestyle=":", linewidth=1.2, label="alarm bound")
        ax.plot(x, values, color=_PALETTE[0], marker="o", markersize=4, linewidth=1.6, label="batch")
        alarm = np.array(spec.get("alarm") or [False] * len(x), dtype=bool)
        if alarm.any():
            ax.scatter(x[alarm], values[alarm], color=_PALETTE[1], zorder=5, s=36, label="alarm")
        if bound is not None and spec.get("bad") in ("low", "high") and np.isfinite(bound).all():
            lo, hi = ax.get_ylim()
            edge = lo if spec["bad"] == "low" else hi
            xs = np.r_[x[0] - 0.5, x, x[-1] + 0.5]
            ax.fill_between(xs, np.r_[bound[0], bound, bound[-1]], edge, color=_PALETTE[1], alpha=0.08, linewidth=0)
            ax.set_ylim(lo, hi)
        ax.set_title(_plain(spec["title"]), fontsize=9.5)
        ax.set_xticks(x)
        ax.set_xticklabels(short, rotation=30 if len(x) > 3 else 0, ha="right" if len(x) > 3 else "center",
                           fontsize=7.5)
        ax.tick_params(axis="y", labelsize=7.5)
        ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
        _style(ax)
    for ax in axes.ravel()[len(series):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    for ax in axes.ravel()[1:len(series)]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, fontsize=8.5,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return figure_html(fig, alt="metrics across batches",
                       caption="Each metric across batches (blue), the mean over reference samples of the same "
                               "size (grey dashes) and the alarm bound (red dots; the shaded side is bad).")


def projection_scatter(reference: np.ndarray, batches: Mapping[str, np.ndarray],
                       explained: Sequence[float] | None = None) -> str:
    """2-D PCA scatter of reference records (grey) and each batch (colours)."""
    fig, ax = plt.subplots(figsize=(6.6, 5.0))
    if len(reference):
        ax.scatter(reference[:, 0], reference[:, 1], s=9, color="#9ca3af", alpha=0.55, label="reference",
                   linewidths=0)
    for i, (name, points) in enumerate(batches.items()):
        if len(points):
            label = _plain(name if len(name) <= 30 else "…" + name[-29:])
            ax.scatter(points[:, 0], points[:, 1], s=10, color=_PALETTE[i % len(_PALETTE)], alpha=0.7,
                       label=label, linewidths=0)
    pcs = ["PC1", "PC2"]
    if explained is not None and len(explained) >= 2:
        pcs = [f"PC1 ({explained[0]:.0%} of variance)", f"PC2 ({explained[1]:.0%})"]
    ax.set_xlabel(pcs[0], fontsize=9)
    ax.set_ylabel(pcs[1], fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(frameon=False, fontsize=8, markerscale=1.8, loc="best")
    ax.set_title("Reference vs batches (PCA fitted on the reference)", fontsize=11)
    _style(ax)
    return figure_html(fig, alt="2-D projection of reference and batches",
                       caption="Embeddings projected on the reference's first two principal components; "
                               "up to 600 records per set.")
