"""``synthfilter train``: fit an origin detector on labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from synthfilter.cli.common import console, encoder_option, seed_option, text_options
from synthfilter.errors import ConfigError, OutputError
from synthfilter.io import DEFAULT_MAX_TEXT_CHARS, read_corpus
from synthfilter.provenance import build_manifest, write_manifest
from synthfilter.training import fit_origin_scorer, labels_of


@click.command("train")
@click.argument("data", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Model folder to write (model.json + weights.npz).")
@click.option("--label-column", default="label", show_default=True,
              help="Column with 1/machine for machine-written and 0/human for human-written records.")
@click.option("--calib", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Held-out labelled file for calibration [default: hold out 25% of DATA].")
@click.option("--source-column", default="source", show_default=True,
              help="Column naming each record's source; if present, every source gets the same total weight "
                   "within its class. Use '' to turn off.")
@click.option("--group-column", default="group", show_default=True,
              help="Column naming each record's document; if present, the language-model features and the "
                   "boosted classifier's cross-fitted n-gram score keep a document in one fold, and the share "
                   "interval resamples whole documents.")
@click.option("--lm-orders", default="1,2", show_default=True,
              help="Orders of the n-gram language-model features, comma-separated; '' turns them off.")
@text_options
@encoder_option
@click.option("--classifier", type=click.Choice(["boosted", "linear"]), default="boosted", show_default=True,
              help="boosted: gradient-boosted trees over the dense features and a cross-fitted n-gram score; "
                   "linear: one logistic regression on every feature (faster to train).")
@click.option("--n-trees", default=500, show_default=True, type=click.IntRange(1, 10_000),
              help="Boosting iterations of the boosted classifier.")
@click.option("--calibration", type=click.Choice(["isotonic", "sigmoid"]), default="isotonic", show_default=True)
@click.option("--C", "c", default=4.0, show_default=True, type=float, help="Inverse regularisation strength.")
@click.option("--name", default=None, help="Model name [default: the output folder's name].")
@click.option("--force", is_flag=True, help="Replace an existing model folder.")
@seed_option
def command(data: Path, output: Path, label_column: str, calib: Path | None, source_column: str,
            group_column: str, lm_orders: str, text_column: str, id_column: str | None, encoder: str,
            classifier: str, n_trees: int, calibration: str, c: float, name: str | None, force: bool,
            seed: int) -> None:
    """Train an origin detector on DATA (Parquet, JSONL or CSV with texts and labels).

    \b
    Example:
      synthfilter train labelled.parquet --label-column is_ai -o models/my-detector
      synthfilter score corpus.parquet --model models/my-detector
    """
    if (output / "model.json").exists() and not force:
        raise OutputError(f"{output}: a model is already there; pass --force to replace it")
    frame = read_corpus(data, text_column=text_column, id_column=id_column, max_text_chars=DEFAULT_MAX_TEXT_CHARS)
    labels_of(frame, label_column, str(data))
    calib_frame = read_corpus(calib, text_column=text_column) if calib else None
    if calib_frame is not None:
        labels_of(calib_frame, label_column, str(calib))
    try:
        orders = tuple(int(o) for o in lm_orders.split(",") if o.strip())
    except ValueError:
        raise ConfigError(f"--lm-orders must be comma-separated whole numbers like 1,2; got {lm_orders!r}") from None
    console.print(f"Training on {frame.height:,} records from {data} ...")
    scorer = fit_origin_scorer(frame, calib_frame, label_column=label_column, source_column=source_column or None,
                               group_column=group_column or None, show_progress=True, encoder=encoder,
                               classifier=classifier, n_trees=n_trees, calibration=calibration, C=c,
                               lm_orders=orders, seed=seed)
    output.mkdir(parents=True, exist_ok=True)
    metadata = {"training_data": {"file": str(data), "records": frame.height, "label_column": label_column,
                                  "calibration_file": str(calib) if calib else None}}
    scorer.save(output, name=name or output.name, metadata=metadata)
    manifest = build_manifest("train", inputs=[data] + ([calib] if calib else []),
                              outputs=[output / "model.json", output / "weights.npz"],
                              parameters={**scorer.get_params(), "label_column": label_column},
                              model=scorer.model_id_, encoder=getattr(scorer, "encoder_id_", None))
    write_manifest(output / "manifest.json", manifest)
    cal = scorer.share_calibration_
    console.print(f"Saved {scorer.model_id_} to {output} "
                  f"(held-out mean p: machine {cal.mean_machine:.3f}, human {cal.mean_human:.3f})")
    click.echo(json.dumps({"model": scorer.model_id_, "path": str(output)}))
