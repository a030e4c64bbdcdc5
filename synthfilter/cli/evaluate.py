"""``synthfilter evaluate``: measure a detector on labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from synthfilter.cli.common import console, model_options, parse_model, text_options
from synthfilter.errors import ConfigError, OutputError
from synthfilter.evaluation import breakdown_markdown, length_breakdown, plot_roc_and_reliability, word_counts
from synthfilter.io import atomic_write_text, document_ids, read_corpus
from synthfilter.origin import load_model
from synthfilter.training import evaluate_on, labels_of


@click.command("evaluate")
@click.argument("data", type=click.Path(path_type=Path, dir_okay=False))
@model_options
@click.option("--label-column", default="label", show_default=True)
@click.option("--source-column", default="source", show_default=True,
              help="Column naming each record's source, for the per-source breakdown.")
@click.option("--group-column", default=None,
              help="Column naming each record's document: the share interval then resamples whole documents "
                   "[default: 'group' if the data has it]. Use '' to resample records.")
@text_options
@click.option("-o", "--out-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for metrics.json, breakdown.md, roc.png and reliability.png "
                   "[default: ./<DATA's name>.eval/].")
def command(data: Path, model: str, trusted_model: bool, label_column: str, source_column: str,
            group_column: str | None, text_column: str, id_column: str | None, out_dir: Path | None) -> None:
    """Evaluate an origin detector on DATA: AUROC, TPR at 1% and 5% FPR, ECE, per source and by length.

    Each machine source is a generator and each human source a domain: a
    source's row compares its records with every record of the other class.
    The length table does the same within < 50, 50-150 and > 150 words.
    AUROC and TPR rank by the detector's uncalibrated score. breakdown.md
    holds both tables in Markdown, for a model card.

    \b
    Example (reproduces the shipped model card):
      synthfilter evaluate models/origin-v4/heldout_test.parquet
    """
    if parse_model(model) is None:
        raise ConfigError("evaluate needs a model; give --model PATH or leave the default")
    frame = read_corpus(data, text_column=text_column, id_column=id_column)
    labels_of(frame, label_column, str(data))
    if group_column is None:
        group_column = "group" if "group" in frame.columns else ""
    groups = document_ids(frame, group_column or None, str(data))
    console.print(f"Loading the model {model} ...")
    scorer = load_model(model, trusted=trusted_model)
    console.print(f"Scoring {frame.height:,} records from {data} with {scorer.model_id_} ...")
    p, report, scores = evaluate_on(scorer, frame, label_column=label_column, source_column=source_column,
                                    return_scores=True)
    # Beside the caller, not beside DATA: DATA's folder may be a model folder or read-only.
    out_dir = out_dir or Path(data.name.split(".")[0] + ".eval")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file; give a folder with -o")
    out_dir.mkdir(parents=True, exist_ok=True)
    y = labels_of(frame, label_column)
    plots = plot_roc_and_reliability(y, p, out_dir, title=scorer.model_id_.split("@")[0], scores=scores)
    share = scorer.estimate_share(p, groups=groups)
    sources = frame[source_column].to_list() if source_column and source_column in frame.columns else None
    per_length = length_breakdown(y, p, word_counts(frame["text"].to_list()), sources, scores=scores)
    result = {"model": scorer.model_id_, "data": str(data), **report.to_dict(),
              "per_length": per_length.to_dicts(),
              "estimated_share": share.to_dict(), "true_share": round(float(y.mean()), 4)}
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out_dir / "breakdown.md", breakdown_markdown(report.per_source, per_length))

    table = Table(title=f"{scorer.model_id_} on {data.name}", title_justify="left")
    for col in ("source", "class", "n", "auroc", "tpr@1%fpr", "tpr@5%fpr", "ece", "mean p"):
        table.add_column(col, justify="right" if col not in ("source", "class") else "left")
    o = report.overall
    table.add_row("all", "", f"{o['n']:,}", f"{o.get('auroc', float('nan')):.4f}",
                  f"{o.get('tpr_at_1pct_fpr', float('nan')):.3f}", f"{o.get('tpr_at_5pct_fpr', float('nan')):.3f}",
                  f"{o['ece']:.4f}", "")
    for row in report.per_source.iter_rows(named=True):
        table.add_row(row["source"], row["class"], f"{row['n']:,}", f"{row['auroc']:.4f}",
                      f"{row['tpr_at_1pct_fpr']:.3f}", f"{row['tpr_at_5pct_fpr']:.3f}", f"{row['ece']:.4f}",
                      f"{row['mean_p_synthetic']:.3f}")
    console.print(table)
    by_length = Table(title="by length (words): each row against the other class of the same length",
                      title_justify="left")
    for col in ("length", "source", "class", "n", "auroc", "tpr@1%fpr", "mean p"):
        by_length.add_column(col, justify="left" if col in ("length", "source", "class") else "right")
    for row in per_length.iter_rows(named=True):
        by_length.add_row(row["length"], row["source"], row["class"] or "both", f"{row['n']:,}",
                          "n/a" if row["auroc"] is None else f"{row['auroc']:.4f}",
                          "n/a" if row["tpr_at_1pct_fpr"] is None else f"{row['tpr_at_1pct_fpr']:.3f}",
                          f"{row['mean_p_synthetic']:.3f}")
    console.print(by_length)
    if "tpr_at_1pct_fpr_on_p" in o:
        console.print(f"AUROC and TPR rank by the detector's score; TPR at 1% FPR read off p_synthetic "
                      f"(calibration steps, ties against the detector): {o['tpr_at_1pct_fpr_on_p']:.3f}")
    console.print(f"synthetic share: estimated {share}, true {y.mean():.3f}")
    console.print(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'breakdown.md'}, " + ", ".join(str(p_) for p_ in plots))
