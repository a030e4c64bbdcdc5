"""``synthfilter report``: one self-contained HTML file for a scored corpus or a monitor run."""

from __future__ import annotations

from pathlib import Path

import click

from synthfilter.cli.common import default_output
from synthfilter.io import check_output_path


@click.command("report")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="HTML file [default: SOURCE with .html].")
@click.option("--title", default=None, help="Page title.")
def command(source: Path, output: Path | None, title: str | None) -> None:
    """Write a self-contained HTML report of SOURCE.

    SOURCE is a scores file from 'synthfilter score' (*.scores.parquet:
    histograms of p_synthetic and rarity, duplicate clusters, rarest records)
    or a monitor run from 'synthfilter monitor -o run.json' (alarms in words,
    metrics across batches, a 2-D projection of reference and batches).

    The page needs no network: no scripts, no external fonts or links;
    figures are embedded PNG.

    \b
    Example:
      synthfilter report corpus.scores.parquet -o corpus.html
    """
    from synthfilter.report import report_kind, write_report

    report_kind(source)
    output = output or (source.with_suffix(".html") if source.suffix.lower() == ".json"
                        else default_output(source, ".html"))
    check_output_path(output, [source])
    write_report(source, output, title=title)
    click.echo(f"wrote {output}")
