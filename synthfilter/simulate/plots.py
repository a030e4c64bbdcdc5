"""Plots of simulation tables (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from synthfilter.io import atomic_path

__all__ = ["PANELS", "plot_simulation"]

#: Panels per simulation kind: (column, title, reference line or None).
PANELS: dict[str, list[tuple[str, str, float | None]]] = {
    "gaussian": [("sigma_median", "median fitted sigma over runs (bands: 10th-90th percentile)", 1.0)],
    "zipf": [
        ("types_kept", "types of generation 0 kept", 1.0),
        ("rare_kept", "rare types (seen <= 5 times) kept", 1.0),
        ("tv_to_gen0", "TV distance to generation 0", 0.0),
    ],
    "text": [
        ("perplexity_ratio", "held-out perplexity / generation 0", 1.0),
        ("rare_kept", "rare gold types kept", 1.0),
        ("types_kept", "gold types kept", 1.0),
        ("distinct_2", "distinct-2 of samples", None),
        ("tv_unigram", "unigram TV distance to gold", 0.0),
        ("synthetic_share", "true synthetic share of training data", None),
        ("monitor_recall", "monitor: k-NN recall of gold by samples", None),
        ("monitor_tail_recall", "monitor: recall of gold's rarest decile", None),
        ("monitor_mmd_rbf", "monitor: MMD² of samples to gold", 0.0),
    ],
}


def plot_simulation(table: pl.DataFrame, kind: str, path: str | Path, title: str | None = None) -> Path:
    """Draw one line per regime and panel, generation on the x axis, and save a PNG.

    Parameters
    ----------
    table : polars.DataFrame
        A simulation table with ``regime`` and ``generation`` columns and the
        columns of :data:`PANELS` ``[kind]``.
    kind : {"gaussian", "zipf", "text"}
        Which panels to draw.
    path : str or Path
        PNG file; written through a temporary file and renamed into place.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS[kind] if p[0] in table.columns]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    size = (7.0, 4.2) if len(panels) == 1 else (4.6 * cols, 3.4 * rows)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    regimes = list(dict.fromkeys(table.get_column("regime").to_list()))
    for ax, (column, label, ref) in zip(axes.ravel(), panels):
        for regime in regimes:
            part = table.filter(pl.col("regime") == regime).sort("generation")
            ax.plot(part.get_column("generation").to_numpy(), part.get_column(column).to_numpy(),
                    label=regime, lw=1.6)
            if kind == "gaussian" and "sigma_p10" in part.columns:
                ax.fill_between(part.get_column("generation").to_numpy(), part.get_column("sigma_p10").to_numpy(),
                                part.get_column("sigma_p90").to_numpy(), alpha=0.06)
        if ref is not None:
            ax.axhline(ref, color="grey", lw=0.8, ls=":")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
