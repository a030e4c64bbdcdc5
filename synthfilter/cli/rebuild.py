"""``synthfilter rebuild``: a training set that caps the synthetic share and keeps gold and rare data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click
import polars as pl
from rich.table import Table

from synthfilter.cli.common import (
    console,
    duplicate_options,
    encoder_options,
    engine_options,
    manifest_path_for,
    model_options,
    parse_model,
    parse_text_dup_threshold,
    seed_option,
    share_correction_option,
    text_options,
)
from synthfilter.errors import ConfigError, InputError, SchemaError, SynthfilterWarning
from synthfilter.io import DEFAULT_MAX_TEXT_CHARS, read_corpus, read_table, validate_corpus
from synthfilter.provenance import file_sha256
from synthfilter.shards import is_sharded, read_sharded
from synthfilter.rebuild import (
    RebuildPolicy,
    RebuildResult,
    check_output_paths,
    rebuild,
    write_rebuild,
)
from synthfilter.rebuild.selection import REASON_KEYS
from synthfilter.stages.share import check_share_correction


def _keep_rare(value: str) -> float | None:
    if value.strip().lower() in ("off", "none", "no"):
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--keep-rare must be a number between 0 and 1 or 'off', not {value!r}") from None


def _scores_manifest(path: Path) -> dict | None:
    """The manifest ``synthfilter score`` wrote beside a scores file, if any."""
    candidate = manifest_path_for(path)
    if not candidate.is_file():
        return None
    try:
        return json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _scores_encoder(candidates: tuple[Path, ...]) -> str:
    """The encoder the candidate scores were made with (their manifests), so that gold joins them in the
    same embedding space; ``minilm`` when they name none or disagree."""
    named = {((_scores_manifest(p) or {}).get("parameters") or {}).get("encoder") for p in candidates
             if not is_sharded(p)}
    named.discard(None)
    return named.pop() if len(named) == 1 else "minilm"


def _scored_corpus(scores: Path, manifest: dict | None, given: Path | None) -> tuple[Path, dict]:
    """The corpus a scores file was made from: ``given``, else the one its manifest names (hash-checked)."""
    params = (manifest or {}).get("parameters") or {}
    if given is not None:
        return given, params
    inputs = (manifest or {}).get("inputs") or []
    if not inputs:
        raise SchemaError(f"{scores}: no text column, and no manifest naming the corpus it scored; score with "
                          "--keep text, or give the corpus with --corpus")
    named = Path(inputs[0]["path"])
    path = named if named.is_absolute() or named.exists() else scores.parent / named
    if not path.is_file():
        raise InputError(f"{scores}: its manifest names the corpus {named}, which is not there; give it with --corpus")
    if file_sha256(path) != inputs[0].get("sha256"):
        raise InputError(f"{scores}: the corpus {path} changed since it was scored (sha256 differs from the "
                         "manifest's); re-score it, or give the scored version with --corpus")
    return path, params


def _read_candidate(path: Path, corpus: Path | None, read: dict) -> object:
    """A candidate file; a scores file without texts gets them from its corpus (matched by id)."""
    table = read_table(path)
    if read["text_column"] in table.columns:
        return read_corpus(path, **read)
    source, params = _scored_corpus(path, _scores_manifest(path), corpus)
    texts = read_corpus(source, text_column=params.get("text_column", read["text_column"]),
                        id_column=params.get("id_column"), max_text_chars=read["max_text_chars"])
    if "id" not in table.columns or table.height != texts.height or \
            table.get_column("id").cast(pl.String).to_list() != texts.get_column("id").to_list():
        raise InputError(f"{path}: its ids are not those of the corpus {source}; give the corpus it was scored "
                         "from with --corpus")
    joined = table.with_columns(texts.get_column("text").alias("text")).select(
        "id", "text", *[c for c in table.columns if c not in ("id", "text")])
    return validate_corpus(joined, source=str(path), text_column="text", max_text_chars=read["max_text_chars"])


def _check_scoring_model(paths: list[Path], frames: list, model_id: str | None) -> None:
    """Refuse scores made by another detector than the one whose calibration is used."""
    if model_id is None:
        return
    for path, frame in zip(paths, frames):
        if "p_synthetic" not in frame.columns:
            continue
        manifest = _scores_manifest(path)
        scored_with = ((manifest or {}).get("origin") or {}).get("model")
        if manifest is None:
            warnings.warn(
                f"{path}: no manifest beside it ({manifest_path_for(path).name}), so which detector scored it "
                f"cannot be checked; the share correction uses {model_id}: pass the scoring model with --model",
                SynthfilterWarning, stacklevel=2,
            )
        if scored_with and scored_with != model_id:
            raise ConfigError(
                f"{path}: scored with model {scored_with}, but the share correction would use {model_id}; "
                f"pass the scoring model with --model, or re-score the file"
            )


def _rebuild_sharded(candidates: tuple[Path, ...], gold: tuple[Path, ...], output: Path | None,
                     policy: RebuildPolicy, *, dry_run: bool, model: str, trusted_model: bool, text_column: str,
                     id_column: str | None, group_column: str | None, max_text_chars: int,
                     ray_address: str | None, quiet: bool, encoder: str | None = None, k: int = 10,
                     dup_threshold: float = 0.95, text_dup_threshold: str | float | None = 0.8,
                     share_correction: str = "auto") -> None:
    """``rebuild --engine ray``: one folder of scored shards in, one folder out."""
    from synthfilter.engine import require_ray
    from synthfilter.rebuild.distributed import rebuild_sharded

    require_ray()
    if len(candidates) != 1:
        raise ConfigError("--engine ray takes one folder or glob of scored shards; put the shards in one folder")
    if output is None or dry_run:
        raise click.UsageError("--engine ray needs -o/--output (a folder) and no --dry-run")
    params = {"model": model, "text_column": text_column, "id_column": id_column, "group_column": group_column,
              "max_text_chars": max_text_chars, "engine": "ray", "ray_address": ray_address,
              "share_correction": share_correction}
    gold_frames, scorer = [], None
    if gold:
        # Gold is small and read here, as --engine local reads it; its texts are embedded on the workers.
        if len({p.resolve() for p in [*candidates, *gold]}) != len(candidates) + len(gold):
            raise InputError("the same file is given twice among the candidates and --gold; give each file once")
        gold_sha256 = {}
        for path in gold:
            if not path.is_file():
                raise InputError(f"{path}: no such file; check the --gold path")
            gold_sha256[str(path)] = file_sha256(path)
        gold_frames = [read_corpus(p, text_column=text_column, max_text_chars=max_text_chars) for p in gold]
        model_arg = parse_model(model)
        if model_arg is not None:
            from synthfilter.origin import load_model

            scorer = load_model(None if model_arg == "default" else model_arg, trusted=trusted_model)
            for path, frame in zip(gold, gold_frames):
                _check_gold_looks_human(path, frame, scorer)
        encoder = encoder or _scores_encoder(candidates)
        params.update({"encoder": encoder, "k": k, "dup_threshold": dup_threshold,
                       "text_dup_threshold": text_dup_threshold, "gold_sha256": gold_sha256})
    result = rebuild_sharded(
        candidates[0], output, policy, model=scorer if scorer is not None else parse_model(model),
        trusted=trusted_model, text_column=text_column,
        id_column=id_column, group_column=group_column, max_text_chars=max_text_chars, ray_address=ray_address,
        parameters=params, gold=gold_frames or None, gold_names=[str(p) for p in gold],
        encoder=encoder or "minilm", k=k, dup_threshold=dup_threshold,
        text_dup_threshold=parse_text_dup_threshold(text_dup_threshold), share_correction=share_correction,
    )
    if not quiet:
        kept = int(result.decisions.get_column("kept").sum())
        console.print(f"rebuild --engine ray: kept {kept:,} of {result.decisions.height:,} records; wrote {output}")


def _check_feasible(policy: RebuildPolicy, cand_frames: list, gold_frames: list) -> None:
    """Refuse, before any encoding, a size the inputs cannot give."""
    n_gold = sum(f.height for f in gold_frames)
    n_all = n_gold + sum(f.height for f in cand_frames)
    if policy.target_size is not None:
        if policy.target_size > n_all:
            raise ConfigError(f"--target-size {policy.target_size:,} is more than the {n_all:,} records given "
                              f"(candidates and gold); use --target-size {n_all:,} or less")
        if policy.target_size < n_gold:
            raise ConfigError(f"--target-size {policy.target_size:,} is less than the {n_gold:,} gold records, "
                              f"which are always kept; use --target-size {n_gold:,} or more")
    if policy.min_gold_share > 0 and n_gold == 0:
        raise ConfigError(f"--min-gold-share {policy.min_gold_share:g} needs gold data; give --gold files or set it "
                          "to 0")


#: Estimated machine share of a gold file above which the rebuild warns.
GOLD_WARN_SHARE = 0.5


def _check_gold_looks_human(path: Path, frame, scorer) -> None:
    """Warn when the detector finds a gold file mostly machine-written (gold counts as human in the share)."""
    from synthfilter.cache import CachedDetector

    # Through the detector's score cache, so that re-running a rebuild does not score the gold again.
    raw = CachedDetector(scorer).decision_function(frame.get_column("text").to_list())
    share = scorer.estimate_share(scorer.calibrate(raw))
    if share.share > GOLD_WARN_SHARE:
        warnings.warn(
            f"{path}: the detector estimates {share.share:.0%} of this gold data (95% CI {share.low:.0%}-"
            f"{share.high:.0%}) is machine-written; gold counts as human in the output's synthetic share, "
            "so the true share can be far above the cap: check that the gold files hold human text",
            SynthfilterWarning, stacklevel=2,
        )


def _fmt_share(est) -> str:
    return f"{est.share:.3f} (95% CI {est.low:.3f}–{est.high:.3f})"


def render_summary(result: RebuildResult, policy: RebuildPolicy, written: list[Path] | None) -> Table:
    """Before/after table of a rebuild."""
    sel = result.selection
    c = sel.counts
    n_in, n_out, n_g = c["input"], c["kept"], c["gold"]
    kept_c = n_out - n_g
    table = Table(title="synthfilter rebuild", title_justify="left")
    table.add_column("", style="bold")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_row("records", f"{n_in:,}", f"{n_out:,}")
    table.add_row("gold", f"{n_g:,}", f"{n_g:,} ({n_g / max(n_out, 1):.1%})")
    table.add_row("candidates", f"{c['candidates']:,}", f"{kept_c:,}")
    cand = sel.candidate_share
    table.add_row("synthetic share (est.)", f"{cand.share * c['candidates'] / max(n_in, 1):.3f}",
                  _fmt_share(sel.output_share))
    table.add_row("  of candidates", _fmt_share(cand), "")
    warning = result.info.get("share_check", {}).get("warning")
    if warning:
        table.add_row("  share check", f"[yellow]{warning}[/yellow]", "")
    table.add_row("  cap", "", f"{policy.max_synthetic:g}")
    by = c["by_reason"]
    table.add_row("near-duplicates", f"{by['duplicate']:,}", "0" if policy.dedup else "not removed")
    table.add_row("protected rare", "", f"{by['protected-rare']:,}")
    table.add_section()
    for key in REASON_KEYS:
        if by.get(key):
            table.add_row(f"  {key}", "", f"{by[key]:,}")
    table.add_section()
    table.add_row("fits under the cap", "", f"at most {sel.limits['max_size_under_cap']:,} records")
    table.add_row("model", "", str(result.info.get("model")))
    table.add_row("rarity against", "", str(result.info.get("tails", {}).get("rarity_against", "scores file")))
    table.add_row("wrote", "", "\n".join(str(p) for p in written) if written else "nothing (--dry-run)")
    return table


@click.command("rebuild")
@click.argument("candidates", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--gold", "gold", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Trusted human data (repeatable): always kept, never altered, the reference for rarity; "
                   "with 20 records or more, what human text scores in the share correction.")
@share_correction_option("--gold")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Training set to write (.parquet; with --engine ray a folder of shards); required unless --dry-run.")
@click.option("--decisions", "decisions_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Decisions file [default: <stem>.decisions.parquet beside -o].")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Manifest [default: <stem>.manifest.json beside -o].")
@click.option("--corpus", "corpora", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Corpus the N-th candidate scores file was made from (repeatable, in order), for its texts when "
                   "it was scored without --keep text [default: the corpus its manifest names, hash-checked].")
@click.option("--max-synthetic", default=0.2, show_default=True, type=float,
              help="Cap on the expected synthetic share of the output, gold included.")
@click.option("--min-gold-share", default=0.0, show_default=True, type=float,
              help="Least share of gold records in the output (bounds its size).")
@click.option("--target-size", default=None, type=int, help="Exact output size, gold included.")
@click.option("--keep-rare", default="0.95", show_default=True,
              help="Protect human-looking records at or above this rarity (percentile against gold); 'off' to disable.")
@click.option("--rare-max-p", default=0.5, show_default=True, type=float,
              help="A rare record is protected only if its adjusted p_synthetic is at most this.")
@click.option("--max-p", default=0.9, show_default=True, type=float,
              help="Never select a candidate whose adjusted p_synthetic is above this (the cap is not filled "
                   "with text the detector is sure a model wrote); 1 fills the output up to the cap whatever "
                   "the records look like, 0.5 adds no record that looks synthetic.")
@click.option("--group-column", default=None,
              help="Candidates' column naming each record's document (a URL, a conversation id): the share "
                   "intervals then resample whole documents. Does not change which records are kept.")
@click.option("--dedup/--no-dedup", default=True, show_default=True,
              help="Keep one record per near-duplicate cluster (gold first).")
@seed_option
@model_options
@encoder_options(None, note=" [default: the encoder the scores were made with, from their manifest; "
                          "else minilm]")
@text_options
@duplicate_options
@click.option("--max-text-chars", default=DEFAULT_MAX_TEXT_CHARS, show_default=True, type=click.IntRange(1),
              help="Longest text accepted.")
@click.option("--dry-run", is_flag=True, help="Print the summary; write nothing.")
@engine_options
@click.option("--quiet", is_flag=True, help="No progress bars or summary.")
def command(candidates: tuple[Path, ...], gold: tuple[Path, ...], share_correction: str, corpora: tuple[Path, ...],
            output: Path | None,
            decisions_path: Path | None,
            manifest_path: Path | None, max_synthetic: float, min_gold_share: float, target_size: int | None,
            keep_rare: str, rare_max_p: float, max_p: float, group_column: str | None, dedup: bool, seed: int,
            model: str, trusted_model: bool,
            encoder: str, text_column: str, id_column: str | None, k: int, dup_threshold: float,
            text_dup_threshold: float, max_text_chars: int, dry_run: bool, engine: str, ray_address: str | None,
            quiet: bool) -> None:
    """Build a training set from scored CANDIDATES (and --gold human data).

    Keeps every gold record unaltered, one record per near-duplicate cluster,
    and rare records that look human; then adds the most human-looking
    candidates while the expected synthetic share of the whole output stays
    under --max-synthetic. Candidates the detector is confident a model
    wrote (adjusted p_synthetic above --max-p, 0.9) are never added, even
    under the cap; --max-p 1 fills the cap with whatever is left.
    Writes the training set, a decisions file (one row per input record,
    with its reason) and a manifest. CANDIDATES are scores
    files from `synthfilter score`, or raw corpora (scored here first).

    The cap holds in expectation under the detector's calibrated
    probabilities: it is as good as the detector on this data.

    With --engine ray, CANDIDATES is one folder (or glob) of scored shards
    (`synthfilter score --engine ray --keep text`): the selection runs on the
    driver from a few small columns, the texts stay on the workers, which
    write the training set as shards into the -o folder with the decisions
    and the manifest. With --gold, the gold files are read here, their texts
    and the candidates' embedded on the workers, and the duplicates and
    rarity that involve gold are found shard by shard; part-00000 holds gold.

    \b
    Example:
      synthfilter rebuild corpus.scores.parquet --gold human.parquet \\
          --max-synthetic 0.2 -o train.parquet
      synthfilter rebuild scores/ --engine ray -o train/
    """
    policy = RebuildPolicy(
        max_synthetic=max_synthetic, min_gold_share=min_gold_share, target_size=target_size,
        keep_rare=_keep_rare(keep_rare), rare_max_p=rare_max_p, max_p=max_p, dedup=dedup, seed=seed,
    )
    if parse_model(model) is not None:  # a gold correction without --gold: say so before any work
        check_share_correction(share_correction, -1 if gold else None)
    if engine == "ray":
        _rebuild_sharded(candidates, gold, output, policy, dry_run=dry_run, model=model,
                         share_correction=share_correction,
                         trusted_model=trusted_model, text_column=text_column, id_column=id_column,
                         group_column=group_column, max_text_chars=max_text_chars, ray_address=ray_address,
                         quiet=quiet, encoder=encoder, k=k, dup_threshold=dup_threshold,
                         text_dup_threshold=text_dup_threshold)
        return
    if ray_address is not None:
        raise ConfigError("--ray-address needs --engine ray")
    inputs = [*candidates, *gold]
    if len({p.resolve() for p in inputs}) != len(inputs):
        raise InputError("the same file is given twice among the candidates and --gold; give each file once")
    outputs: tuple[Path, Path, Path] | None = None
    if output is not None:
        outputs = check_output_paths(output, decisions_path, manifest_path, [*inputs, *corpora])
    elif not dry_run:
        raise click.UsageError("give the training set path with -o/--output, or use --dry-run")

    # Gold bytes are hashed before anything reads them.
    gold_sha256 = {}
    for path in gold:
        if not path.is_file():
            raise InputError(f"{path}: no such file; check the --gold path")
        gold_sha256[str(path)] = file_sha256(path)
    read = {"text_column": text_column, "id_column": id_column, "max_text_chars": max_text_chars}
    if len(corpora) > len(candidates):
        raise ConfigError("more --corpus files than candidate files; give one per scores file, in order")
    cand_frames = [read_sharded(p, **read) if is_sharded(p)
                   else _read_candidate(p, corpora[i] if i < len(corpora) else None, read)
                   for i, p in enumerate(candidates)]
    gold_frames = [read_corpus(p, text_column=text_column, max_text_chars=max_text_chars) for p in gold]

    model_arg = parse_model(model)
    scorer = None
    if model_arg is not None:
        from synthfilter.origin import load_model

        scorer = load_model(None if model_arg == "default" else model_arg, trusted=trusted_model)
        _check_scoring_model(list(candidates), cand_frames, scorer.model_id_)

    _check_feasible(policy, cand_frames, gold_frames)
    if scorer is not None:
        for path, frame in zip(gold, gold_frames):
            _check_gold_looks_human(path, frame, scorer)

    encoder = encoder or _scores_encoder(candidates)
    result = rebuild(
        cand_frames, gold_frames or None, policy, model=scorer, encoder=encoder, k=k,
        dup_threshold=dup_threshold, text_dup_threshold=parse_text_dup_threshold(text_dup_threshold),
        group_column=group_column, candidate_names=[str(p) for p in candidates],
        gold_names=[str(p) for p in gold], show_progress=not quiet, share_correction=share_correction,
    )
    written = None
    if not dry_run and outputs is not None:
        params = {"encoder": encoder, "model": model, "k": k, "dup_threshold": dup_threshold,
                  "text_dup_threshold": text_dup_threshold,
                  "text_column": text_column, "id_column": id_column, "group_column": group_column,
                  "max_text_chars": max_text_chars, "share_correction": share_correction}
        write_rebuild(
            result, outputs[0], decisions=outputs[1], manifest=outputs[2], candidate_paths=list(candidates),
            gold_paths=list(gold), gold_sha256=gold_sha256, parameters=params,
        )
        written = list(outputs)
    if not quiet or dry_run:
        console.print(render_summary(result, policy, written))
