"""The HTML report of a scored corpus (``*.scores.parquet`` from ``synthfilter score``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from synthfilter.errors import SchemaError
from synthfilter.report import html as h
from synthfilter.report import plots

__all__ = ["FINDING_THRESHOLDS", "SCORE_COLUMNS", "check_scores", "scores_report_html"]

#: Columns a scores file must have, with the dtype family expected.
SCORE_COLUMNS = {"id": "text", "rarity": "number", "knn_distance": "number", "dup_cluster": "integer",
                 "is_near_duplicate": "boolean"}

#: When a summary number is called out in the findings (documented in the report).
FINDING_THRESHOLDS = {
    "near_duplicate_share": 0.05,   # more than 5 % redundant records
    "machine_like_share": 0.20,     # more than 20 % of records with p_synthetic >= 0.5
    "synthetic_share_low": 0.10,    # the share's 95 % interval lies above 10 %
}
_TOP = 10
_SNIPPET = 300


def _family(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "number"
    if dtype in (pl.String, pl.Categorical):
        return "text"
    return str(dtype)


def check_scores(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Check a scores table's columns and value ranges.

    Raises
    ------
    SchemaError
        For a missing column, a wrong dtype, or p_synthetic / rarity outside [0, 1].
    """
    if frame.height == 0:
        raise SchemaError(f"{source}: the scores file has no records; score a non-empty corpus first")
    for column, family in SCORE_COLUMNS.items():
        if column not in frame.columns:
            raise SchemaError(
                f"{source}: no column '{column}' (columns: {', '.join(frame.columns[:12])}); "
                "give a scores file written by 'synthfilter score' or a monitor run .json"
            )
        found = _family(frame.schema[column])
        ok = found == family or (family == "number" and found == "integer") or (family == "text" and found != "boolean")
        if not ok:
            raise SchemaError(f"{source}: column '{column}' holds {frame.schema[column]}, expected {family}")
    for column in ("rarity", "p_synthetic"):
        if column in frame.columns:
            if _family(frame.schema[column]) not in ("number", "integer"):
                raise SchemaError(f"{source}: column '{column}' holds {frame.schema[column]}, expected a number")
            values = frame[column].cast(pl.Float64)
            bad = ((values < 0) | (values > 1) | values.is_nan()).fill_null(True).arg_true().to_list()
            if bad:
                from synthfilter.errors import describe_rows

                raise SchemaError(f"{source}: column '{column}' is outside [0, 1] or missing at {describe_rows(bad)}; "
                                  "re-score the corpus")
    return frame


def _snippet(text: Any) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


def scores_report_html(frame: pl.DataFrame, *, source: str, sha256: str | None = None,
                       manifest: Mapping[str, Any] | None = None, title: str | None = None) -> str:
    """Render a scored corpus as one self-contained HTML page.

    Parameters
    ----------
    frame : polars.DataFrame
        Columns ``id``, ``rarity``, ``knn_distance``, ``dup_cluster``,
        ``is_near_duplicate``; optional ``p_synthetic`` and ``text``.
    source : str
        Where it was read from.
    sha256 : str, optional
        Hash of the input file.
    manifest : mapping, optional
        The scores manifest (for the synthetic-share estimate and provenance).
    title : str, optional

    Returns
    -------
    str
        The HTML document.
    """
    frame = check_scores(frame, source)
    n = frame.height
    has_p = "p_synthetic" in frame.columns
    has_text = "text" in frame.columns
    manifest = manifest or {}
    rarity = frame["rarity"].cast(pl.Float64).to_numpy()
    dup_count = int(frame["is_near_duplicate"].sum())
    cluster_sizes = frame.group_by("dup_cluster").len().filter(pl.col("len") > 1).sort(
        ["len", "dup_cluster"], descending=[True, False])
    share = ((manifest.get("origin") or {}).get("synthetic_share")) if isinstance(manifest.get("origin"), Mapping) else None

    title = title or "synthfilter corpus report"
    subtitle = f"{n:,} scored records from {source}"
    body: list[str] = []

    items = [("records", f"{n:,}"),
             ("near-duplicates", f"{dup_count:,} ({dup_count / n:.1%})"),
             ("duplicate clusters", f"{cluster_sizes.height:,}"),
             ("median rarity", f"{np.median(rarity):.2f}"),
             ("records with rarity ≥ 0.95", f"{int((rarity >= 0.95).sum()):,}")]
    p = None
    if has_p:
        p = frame["p_synthetic"].cast(pl.Float64).to_numpy()
        items += [("mean p_synthetic", f"{p.mean():.3f}"), ("p_synthetic ≥ 0.5", f"{(p >= 0.5).mean():.1%}")]
    if isinstance(share, Mapping) and share.get("share") is not None:
        items.append(("estimated synthetic share",
                      f"{share['share']:.3f} ({share.get('low', float('nan')):.3f}–{share.get('high', float('nan')):.3f})"))
    body.append(h.section("Summary", h.cards(items)))

    findings: list[str] = []
    if dup_count / n > FINDING_THRESHOLDS["near_duplicate_share"]:
        findings.append(f"{dup_count / n:.1%} of records are near-duplicates of another record "
                        f"(over {FINDING_THRESHOLDS['near_duplicate_share']:.0%}); the largest cluster has "
                        f"{int(cluster_sizes['len'][0]) if cluster_sizes.height else 0} records.")
    if p is not None and (p >= 0.5).mean() > FINDING_THRESHOLDS["machine_like_share"]:
        findings.append(f"{(p >= 0.5).mean():.1%} of records look machine-written (p_synthetic ≥ 0.5; over "
                        f"{FINDING_THRESHOLDS['machine_like_share']:.0%}).")
    if isinstance(share, Mapping) and (share.get("low") or 0) > FINDING_THRESHOLDS["synthetic_share_low"]:
        findings.append(f"The estimated synthetic share is {share['share']:.1%}; its 95% interval starts at "
                        f"{share['low']:.1%}, above {FINDING_THRESHOLDS['synthetic_share_low']:.0%}.")
    if findings:
        findings_html = h.callout("bad", "Needs attention", findings)
    else:
        findings_html = h.callout("ok", "Nothing stands out", [
            f"near-duplicates at most {FINDING_THRESHOLDS['near_duplicate_share']:.0%}"
            + (f"; machine-like records at most {FINDING_THRESHOLDS['machine_like_share']:.0%}" if has_p else "")])
    if not has_p:
        findings_html += h.callout("warn", "No p_synthetic column: the corpus was scored without an origin model.")
    body.append(h.section("Findings", findings_html))

    figures = []
    if p is not None:
        figures.append(plots.histogram(p, title="p_synthetic", xlabel="calibrated probability of machine origin",
                                       value_range=(0.0, 1.0), marker=0.5, marker_label="0.5"))
    # Rarity is a percentile (flat by construction): show it against p_synthetic, the plane a rebuild
    # decides in, or else the k-NN distances it is the percentile of.
    if p is not None:
        figures.append(plots.rarity_origin_scatter(rarity, p))
    else:
        figures.append(plots.histogram(frame["knn_distance"].cast(pl.Float64).to_numpy(), title="k-NN distance",
                                       xlabel="mean cosine distance to the k nearest neighbours"))
    body.append(h.section("Distributions", *figures))

    # Most duplicated clusters
    dup_rows = []
    for cluster, size in cluster_sizes.head(_TOP).iter_rows():
        members = frame.filter(pl.col("dup_cluster") == cluster)
        ids = members["id"].cast(pl.String).head(5).to_list()
        row = [cluster, size, ", ".join(ids) + (" …" if size > 5 else "")]
        if has_text:
            row.append(_snippet(members["text"][0]))
        dup_rows.append(row)
    dup_html = (h.table(["cluster", "size", "ids", *(["example text"] if has_text else [])], dup_rows,
                        numeric=[True, True, False, False], text_columns=[3]) if dup_rows
                else "<p>No near-duplicate clusters.</p>")
    body.append(h.section("Most duplicated clusters", dup_html))

    rare = frame.sort(["rarity", "knn_distance", "id"], descending=[True, True, False]).head(_TOP)
    rare_rows = []
    for row in rare.iter_rows(named=True):
        cells = [row["id"], float(row["rarity"]), float(row["knn_distance"])]
        if has_p:
            cells.append(float(row["p_synthetic"]))
        if has_text:
            cells.append(_snippet(row["text"]))
        rare_rows.append(cells)
    headers = ["id", "rarity", "k-NN distance", *(["p_synthetic"] if has_p else []), *(["text"] if has_text else [])]
    body.append(h.section("Rarest records", h.table(
        headers, rare_rows, numeric=[False, True, True] + ([True] if has_p else []) + [False],
        text_columns=[len(headers) - 1] if has_text else [])))

    items = [("input", source)] + ([("sha256", sha256)] if sha256 else [])
    for key in ("encoder", "command", "created_utc"):
        if manifest.get(key):
            items.append((key, manifest[key]))
    for key, value in (manifest.get("parameters") or {}).items():
        items.append((f"parameter {key}", value))
    body.append(h.section("Provenance", h.definition_list(items)))
    return h.page(title, subtitle, body, footer="synthfilter corpus report")
