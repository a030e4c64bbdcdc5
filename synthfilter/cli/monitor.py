"""``synthfilter monitor``: diversity metrics of batches against a gold reference, with alarms."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from synthfilter.cli.common import (
    encoder_option,
    manifest_path_for,
    model_options,
    parse_model,
    seed_option,
    text_options,
)
from synthfilter.errors import ConfigError, OutputError, SchemaError
from synthfilter.io import (
    DEFAULT_MAX_TEXT_CHARS,
    atomic_write_parquet,
    atomic_write_text,
    check_output_path,
    read_corpus,
)

#: Short column headers for the terminal table.
SHORT_NAMES = {
    "mean_cosine_distance": "disp", "covariance_trace": "cov_tr", "participation_ratio": "PR",
    "effective_rank": "erank", "vendi_score": "vendi", "recall": "recall", "tail_recall": "tail_rec",
    "tail_mass": "tail_mass", "tail_reach": "tail_reach", "precision": "prec", "mmd_rbf": "MMD²", "frechet_distance": "FD",
    "near_duplicate_rate": "dup", "distinct_1": "dist-1", "distinct_2": "dist-2", "type_token_ratio": "TTR",
    "length_cv": "len_cv", "length_mean": "len", "reference_overlap": "overlap", "synthetic_share": "synth",
}


def parse_thresholds(values: tuple[str, ...]) -> dict[str, float | None]:
    """``("near_duplicate_rate=0.05", "tail_recall=off")`` -> ``{"near_duplicate_rate": 0.05, "tail_recall": None}``."""
    from synthfilter.monitor import METRIC_NAMES, get_spec

    out: dict[str, float | None] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not raw:
            raise ConfigError(f"--threshold '{item}': write METRIC=VALUE or METRIC=off, e.g. near_duplicate_rate=0.05")
        if name not in METRIC_NAMES:
            raise ConfigError(f"--threshold '{item}': unknown metric '{name}'; use one of {', '.join(METRIC_NAMES)}")
        if get_spec(name).bad == "none":
            raise ConfigError(f"--threshold '{item}': '{name}' is informational and never alarms")
        if raw.lower() in ("off", "none"):
            out[name] = None
            continue
        try:
            out[name] = float(raw)
        except ValueError:
            raise ConfigError(f"--threshold '{item}': '{raw}' is not a number; give a number or 'off'") from None
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:.1e}"


#: Terminal tables: title -> metrics (every metric appears in one table).
TABLES = (
    ("spread of the batch", ("mean_cosine_distance", "covariance_trace", "participation_ratio", "effective_rank",
                             "vendi_score", "near_duplicate_rate")),
    ("against the reference", ("recall", "tail_recall", "tail_mass", "tail_reach", "precision", "mmd_rbf",
                               "frechet_distance", "reference_overlap")),
    ("text and origin", ("distinct_1", "distinct_2", "type_token_ratio", "length_cv", "length_mean",
                         "synthetic_share")),
)


def print_run(run: Any, console: Console) -> None:
    """Print a monitor run: per table one row per batch (alarmed values in red), then each alarm in words."""
    names = [Path(b.name).name or b.name for b in run.batches]
    console.print(f"[bold]synthfilter monitor[/]: {len(run.batches)} batch(es) against {run.reference['name']} "
                  f"({run.reference['n']:,} records), encoder {run.encoder}")
    for title, metrics in TABLES:
        table = Table(title=title, title_justify="left", title_style="bold")
        table.add_column("batch", overflow="ellipsis", no_wrap=True, min_width=12, max_width=28)
        table.add_column("n", justify="right")
        table.add_column("status")
        for name in metrics:
            table.add_column(SHORT_NAMES[name], justify="right")
        for label, batch in zip(names, run.batches):
            fired = {a.metric for a in batch.alarms}
            status = "[bold red]ALARM[/]" if batch.alarms else "[green]ok[/]"
            cells = [label, f"{batch.n:,}", status]
            for name in metrics:
                text = _fmt(batch.values.get(name))
                cells.append(f"[bold red]{text}[/]" if name in fired else text)
            table.add_row(*cells)
        console.print(table)
    console.print("[dim]" + "  ".join(f"{SHORT_NAMES[n]}={n}" for _, ms in TABLES for n in ms) + "[/]")
    for label, batch in zip(names, run.batches):
        for alarm in batch.alarms:
            console.print(f"[bold red]ALARM[/] {label}: {alarm.message}")
        for note in batch.notes:
            console.print(f"[dim]note {label}: {note}[/]")
    console.print("[bold red]alarm[/]: exit code 3" if run.has_alarm else "[green]all batches healthy[/]")


@click.command("monitor")
@click.argument("batches", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--reference", "-r", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Gold (human) reference corpus: Parquet, JSONL or CSV.")
@text_options
@click.option("--group-column", default=None,
              help="Reference column of groups (document, conversation) kept on one side of each null split "
                   "[default: 'group' if present].")
@encoder_option
@model_options
@click.option("-o", "--output", "outputs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Write the metrics: .json (full run, input of 'synthfilter report') or .parquet "
                   "(one row per batch). Repeatable.")
@click.option("--threshold", "thresholds", multiple=True, metavar="METRIC=VALUE",
              help="Absolute alarm bound for a metric, or METRIC=off to silence it (repeatable).")
@click.option("--sigma", default=4.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Alarm margin: null standard deviations beyond the reference's own mean.")
@click.option("--n-null", default=30, show_default=True, type=click.IntRange(5, 10_000),
              help="Pseudo-batches drawn from the reference for the null distribution.")
@click.option("--n-splits", default=4, show_default=True, type=click.IntRange(1, 1000),
              help="Reference halves each batch is compared with (its value is the mean).")
@click.option("-k", "--neighbours", "k", default=5, show_default=True, type=click.IntRange(1, 100),
              help="Neighbour rank of the k-NN support radii.")
@click.option("--max-text-chars", default=DEFAULT_MAX_TEXT_CHARS, show_default=True, type=click.IntRange(1),
              help="Longest text accepted.")
@seed_option
@click.option("--quiet", is_flag=True, help="Print nothing; rely on the exit code and -o files.")
@click.pass_context
def command(ctx: click.Context, batches: tuple[Path, ...], reference: Path, text_column: str,
            id_column: str | None, group_column: str | None, encoder: str, model: str, trusted_model: bool,
            outputs: tuple[Path, ...], thresholds: tuple[str, ...], sigma: float, n_null: int, n_splits: int, k: int,
            max_text_chars: int, seed: int, quiet: bool) -> None:
    """Measure each BATCH against the gold --reference and raise alarms.

    For every batch, in order: dispersion, effective dimension, Vendi score,
    k-NN precision/recall and tail recall against the reference, MMD and
    Fréchet distance, near-duplicate rate, lexical variety, length spread and
    the estimated synthetic share. A metric alarms when it falls beyond what
    reference samples of the batch's size give (--sigma standard deviations
    in the bad direction), or beyond a --threshold you set.

    Exit code: 0 when every batch is healthy, 3 when any alarm fires, 2 for
    bad input.

    \b
    Example:
      synthfilter monitor week1.parquet week2.parquet --reference human.parquet \\
          -o monitor.json && synthfilter report monitor.json -o monitor.html
    """
    from synthfilter.monitor import ALARM_EXIT_CODE, DiversityMonitor
    from synthfilter.provenance import build_manifest, library_versions, write_manifest

    threshold_map = parse_thresholds(thresholds)
    for out in outputs:
        if out.suffix.lower() not in (".json", ".parquet"):
            raise OutputError(f"{out}: unsupported output type '{out.suffix or '(none)'}'; use .json or .parquet")
        check_output_path(out, [reference, *batches])
        if out.suffix.lower() == ".parquet":
            check_output_path(manifest_path_for(out), [reference, *batches])
    started = time.perf_counter()
    ref_frame = read_corpus(reference, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
    groups = None
    if group_column is not None and group_column not in ref_frame.columns:
        raise SchemaError(
            f"{reference}: no group column '{group_column}' (columns: {', '.join(ref_frame.columns[:12])}); "
            "name it with --group-column or leave the option out"
        )
    column = group_column or ("group" if "group" in ref_frame.columns else None)
    if column is not None:
        # A record without a group is a group of its own.
        values = ref_frame.get_column(column).cast(str).to_list()
        groups = [f"\0row {i}" if g is None else g for i, g in enumerate(values)]
    frames = [read_corpus(path, text_column=text_column, id_column=id_column, max_text_chars=max_text_chars)
              for path in batches]
    monitor = DiversityMonitor(
        encoder=encoder, k=k, n_null=n_null, n_splits=n_splits, sigma=sigma, thresholds=threshold_map,
        origin_model=parse_model(model), trusted_model=trusted_model, seed=seed,
    )
    monitor.fit(ref_frame["text"].to_list(), groups=groups, name=str(reference))
    run = monitor.run([{"texts": f["text"].to_list(), "ids": f["id"].to_list(), "name": str(p)}
                       for p, f in zip(batches, frames)])
    elapsed = round(time.perf_counter() - started, 3)
    manifest = build_manifest(
        "monitor", inputs=[reference, *batches],
        parameters={**run.parameters, "text_column": text_column, "id_column": id_column,
                    "group_column": column, "model": model},
        encoder=run.encoder, timings_s={"total": elapsed},
    )
    run.extra = {"inputs": manifest["inputs"], "versions": library_versions(), "timings_s": {"total": elapsed}}
    for out in outputs:
        if out.suffix.lower() == ".json":
            atomic_write_text(out, run.to_json())
        else:
            atomic_write_parquet(run.to_frame(), out)
            write_manifest(manifest_path_for(out), {**manifest, "outputs": [{"path": str(out)}]})
    if not quiet:
        print_run(run, Console(width=max(Console().width, 100)))
        for out in outputs:
            click.echo(f"wrote {out}")
    ctx.exit(ALARM_EXIT_CODE if run.has_alarm else 0)
