"""``synthfilter simulate``: show, generation by generation, collapse and its mitigation."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from synthfilter.cli.common import console, seed_option
from synthfilter.errors import ConfigError, OutputError
from synthfilter.io import atomic_path

KINDS = ("gaussian", "zipf", "text")
#: Regimes run when --regime is not given; ``name:share`` sets the real share.
DEFAULT_REGIMES = {
    "gaussian": ("replace", "fixed_real:0.1", "fixed_real:0.2", "fixed_real:0.5", "accumulate", "cap_keep_rare:0.2"),
    "zipf": ("replace", "fixed_real:0.8", "accumulate", "cap_keep_rare:0.8"),
    "text": ("replace", "naive_mix", "gold_mix", "accumulate", "synthfilter", "oracle"),
}
DEFAULT_GENERATIONS = {"gaussian": 200, "zipf": 200, "text": 10}
#: Columns shown in the terminal table per kind, with their headers (the CSV has all of them).
SHOWN = {
    "gaussian": (("sigma_median", "median sigma"), ("sigma_p10", "p10"), ("sigma_p90", "p90")),
    "zipf": (("types_kept", "types kept"), ("rare_kept", "rare kept"), ("tv_to_gen0", "TV to gen 0")),
    "text": (("perplexity", "ppl"), ("perplexity_ratio", "ppl/ppl0"), ("types_kept", "types"),
             ("rare_kept", "rare"), ("distinct_2", "dist-2"), ("tv_unigram", "TV"),
             ("synthetic_share", "synth"), ("n_train", "n")),
}


def _parse_regime(spec: str, kind: str) -> tuple[str, str, float | None]:
    """``"fixed_real:0.2"`` -> (label, name, share)."""
    name, _, share = spec.partition(":")
    if not share:
        return spec, name, None
    if kind == "text":
        raise ConfigError(f"--regime {spec}: text regimes take no ':share'; use --max-synthetic for synthfilter")
    try:
        value = float(share)
    except ValueError:
        raise ConfigError(f"--regime {spec}: '{share}' is not a number; write e.g. fixed_real:0.2") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"--regime {spec}: the real share must be between 0 and 1")
    return f"{name}:{value:g}", name, value


def _reference(kind: str, regimes: list[tuple[str, str, float | None]], generations: int, runs: int | None,
               seed: int, tick) -> pl.DataFrame:
    from synthfilter.simulate.gaussian import simulate_gaussian
    from synthfilter.simulate.unigram import simulate_unigram

    tables = []
    for label, name, share in regimes:
        kwargs: dict[str, Any] = {"generations": generations, "seed": seed, "progress": lambda t: tick()}
        if runs is not None:
            kwargs["n_runs"] = runs
        if share is not None:
            kwargs["real_share"] = share
        simulate = simulate_gaussian if kind == "gaussian" else simulate_unigram
        tables.append(simulate(name, **kwargs).with_columns(regime=pl.lit(label)))
    return pl.concat(tables)


def _print_table(out: Console, table: pl.DataFrame, kind: str, every: int, generations: int) -> None:
    shown = [(c, h) for c, h in SHOWN[kind] if c in table.columns]
    grid = Table(title=f"synthfilter simulate --kind {kind}", show_lines=False)
    grid.add_column("gen", justify="right", no_wrap=True)
    grid.add_column("regime", no_wrap=True)
    for _, header in shown:
        grid.add_column(header, justify="right", no_wrap=True)
    keep = [g for g in range(generations + 1) if g % every == 0 or g == generations]
    for g in keep:
        part = table.filter(pl.col("generation") == g)
        for i, row in enumerate(part.iter_rows(named=True)):
            cells = []
            for column, _ in shown:
                value = row[column]
                cells.append("-" if value is None else f"{value:.0f}" if column in ("n_train", "perplexity")
                             else f"{value:.3f}")
            grid.add_row(str(g) if i == 0 else "", row["regime"], *cells, end_section=i == part.height - 1)
    out.print(grid)


@click.command("simulate")
@click.option("--kind", type=click.Choice(KINDS), default="text", show_default=True,
              help="gaussian: recursive 1-D Gaussian fit; zipf: recursive unigram on a Zipf(1.1) vocabulary; "
                   "text: n-gram language model trained on its own output.")
@click.option("--regime", "regimes", multiple=True,
              help="Regime to run (repeatable). gaussian/zipf: replace, fixed_real[:SHARE], accumulate, "
                   "cap_keep_rare[:SHARE]; text: replace, naive_mix, gold_mix, accumulate, synthfilter, oracle. "
                   "[default: all, with the shares of the reference figures]")
@click.option("-g", "--generations", type=click.IntRange(0, 10_000), default=None,
              help="Generations after generation 0 [default: 200 for gaussian/zipf, 10 for text].")
@click.option("--runs", type=click.IntRange(1, 1_000_000), default=None,
              help="Independent runs of a reference simulation [default: 2000 gaussian, 20 zipf].")
@click.option("--gold", "n_gold", type=click.IntRange(1), default=2000, show_default=True,
              help="text: gold (generation-0 training) paragraphs.")
@click.option("--synthetic", "n_synthetic", type=click.IntRange(1), default=2000, show_default=True,
              help="text: synthetic candidates per generation.")
@click.option("--fresh", "n_fresh", type=click.IntRange(0), default=400, show_default=True,
              help="text: fresh human candidates per generation.")
@click.option("--test", "n_test", type=click.IntRange(1), default=500, show_default=True,
              help="text: held-out human paragraphs for perplexity.")
@click.option("--holdout", "n_holdout", type=click.IntRange(0), default=400, show_default=True,
              help="text: human paragraphs no model trains on, for calibrating the in-loop detector.")
@click.option("--max-synthetic", type=click.FloatRange(0.0, 1.0), default=0.2, show_default=True,
              help="text: synthfilter/oracle cap on the expected synthetic share.")
@click.option("--keep-rare", type=click.FloatRange(0.0, 1.0), default=0.95, show_default=True,
              help="text: rarity from which human-looking candidates are protected.")
@click.option("--max-p", type=click.FloatRange(0.0, 1.0), default=0.9, show_default=True,
              help="text: synthfilter/oracle never select a candidate whose adjusted p_synthetic is above this "
                   "(rebuild's default); 1 fills the training set up to the cap with model samples.")
@click.option("--detector", type=click.Choice(["inloop", "shipped"]), default="inloop", show_default=True,
              help="text: synthfilter's detector: fitted each generation on gold vs fresh samples of the "
                   "previous model, or the shipped model.")
@click.option("--encoder", default="static", show_default=True,
              help="text: encoder of the detector and of rebuild's tail stage (static or minilm).")
@click.option("--monitor", is_flag=True,
              help="text: add the diversity monitor's recall, tail recall and MMD of each generation's samples "
                   "against gold.")
@seed_option
@click.option("-o", "--out-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("simulate-output"),
              show_default=True, help="Folder for simulate-KIND.csv, .png and .manifest.json (created if needed).")
@click.option("--every", type=click.IntRange(1), default=None,
              help="Show every N-th generation in the terminal table [default: about 20 rows].")
@click.option("--quiet", is_flag=True, help="No progress bar or table.")
def command(kind: str, regimes: tuple[str, ...], generations: int | None, runs: int | None, n_gold: int,
            n_synthetic: int, n_fresh: int, n_test: int, n_holdout: int, max_synthetic: float, keep_rare: float,
            max_p: float, detector: str, encoder: str, monitor: bool, seed: int, out_dir: Path, every: int | None,
            quiet: bool) -> None:
    """Simulate model collapse and its mitigation, generation by generation.

    Each generation trains a model on data made from the previous model's
    output under a regime, and measures what was lost. The reference kinds
    reproduce published collapse figures (Shumailov et al. 2024); the text kind runs
    the real synthfilter rebuild (detector in the loop, never the labels)
    against the unfiltered regimes and an oracle.

    Writes simulate-KIND.csv (every generation and regime), simulate-KIND.png
    and simulate-KIND.manifest.json into --out-dir, and prints a table.

    \b
    Examples:
      synthfilter simulate --kind gaussian --generations 200
      synthfilter simulate --kind zipf --regime replace --regime cap_keep_rare:0.8
      synthfilter simulate --kind text --generations 10 -o out/
    """
    from synthfilter.provenance import build_manifest, write_manifest
    from synthfilter.simulate.plots import plot_simulation

    generations = DEFAULT_GENERATIONS[kind] if generations is None else generations
    parsed = [_parse_regime(r, kind) for r in (regimes or DEFAULT_REGIMES[kind])]
    labels = [p[0] for p in parsed]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--regime given twice: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file; give a folder with -o")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the folder ({exc.strerror}); choose another -o") from None
    csv_path = out_dir / f"simulate-{kind}.csv"
    png_path = out_dir / f"simulate-{kind}.png"
    manifest_path = out_dir / f"simulate-{kind}.manifest.json"

    started = time.perf_counter()
    parameters: dict[str, Any] = {"kind": kind, "regimes": labels, "generations": generations, "seed": seed}
    info: dict[str, Any] = {}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet, transient=True)
    with progress:
        task = progress.add_task(f"simulate {kind}", total=len(parsed) * generations)
        if kind in ("gaussian", "zipf"):
            parameters["runs"] = runs
            table = _reference(kind, parsed, generations, runs, seed, lambda: progress.advance(task))
        else:
            from synthfilter.rebuild import RebuildPolicy
            from synthfilter.simulate.text import (
                TextSimulationConfig,
                run_text_simulation,
            )

            config = TextSimulationConfig(generations=generations, n_gold=n_gold, n_test=n_test,
                                          n_holdout=n_holdout, n_fresh=n_fresh,
                                          n_synthetic=n_synthetic, monitor=monitor, seed=seed)
            policy = RebuildPolicy(max_synthetic=max_synthetic, keep_rare=keep_rare, max_p=max_p, seed=seed)
            options = {"synthfilter": {"policy": policy, "detector": detector, "encoder": encoder},
                       "oracle": {"policy": policy, "encoder": encoder}}
            parameters.update(config=asdict(config), policy=policy.to_dict(), detector=detector, encoder=encoder)

            def tick(name: str, t: int) -> None:
                progress.update(task, advance=1, description=f"simulate text: {name} gen {t}")

            result = run_text_simulation([p[1] for p in parsed], config, regime_options=options, progress=tick)
            table, info = result.table, result.info

    with atomic_path(csv_path) as tmp:
        table.write_csv(tmp, float_precision=6)
    plot_simulation(table, kind, png_path, title=f"synthfilter simulate --kind {kind}")
    seconds = round(time.perf_counter() - started, 2)
    write_manifest(manifest_path, build_manifest("simulate", outputs=[csv_path, png_path], parameters=parameters,
                                                 timings_s={"total": seconds}, info=info))
    if not quiet:
        step = every or max(1, generations // 20)
        _print_table(Console(), table, kind, step, generations)
        console.print(f"Wrote {csv_path}, {png_path} and {manifest_path.name} in {seconds:.1f} s.")
