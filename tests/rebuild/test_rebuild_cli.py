"""`synthfilter rebuild` end to end: files, hashes, errors, interrupts."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from synthfilter.cli.rebuild import command

BASE = ["--model", "none", "--encoder", "static", "--quiet"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=True)


def outputs_of(folder: Path, stem="train"):
    return [folder / f"{stem}.parquet", folder / f"{stem}.decisions.parquet", folder / f"{stem}.manifest.json"]


def run_cli(args, *, prelude="", cwd=None, env_cache=None):
    """Run the installed entry point in a fresh interpreter (one-line errors, exit codes)."""
    argv = ["rebuild", *[str(a) for a in args]]
    code = textwrap.dedent(prelude) + f"\nfrom synthfilter.cli import run\nimport sys\nsys.argv = ['synthfilter'] + {argv!r}\nrun()\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env_cache:
        env["SYNTHFILTER_CACHE"] = str(env_cache)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False
    )


def test_writes_three_files_and_keeps_gold_bytes(corpus_files, tmp_path):
    cpath, gpath = corpus_files
    before_c, before_g = cpath.read_bytes(), gpath.read_bytes()
    out = tmp_path / "train.parquet"
    res = invoke([cpath, "--gold", gpath, "--max-synthetic", 0.2, "-o", out, *BASE])
    assert res.exit_code == 0, res.output
    train, decisions, manifest = outputs_of(tmp_path)
    assert train.is_file() and decisions.is_file() and manifest.is_file()
    assert gpath.read_bytes() == before_g and cpath.read_bytes() == before_c

    m = json.loads(manifest.read_text())
    d = pl.read_parquet(decisions)
    t = pl.read_parquet(train)
    # Every input record has exactly one decision with a reason; counts add up.
    assert d.height == 123 + 20 == m["counts"]["input"]
    assert d["reason"].null_count() == 0 and (d["reason"].str.len_chars() > 0).all()
    assert sum(m["counts"]["by_reason"].values()) == m["counts"]["input"]
    assert m["counts"]["kept"] == t.height == d["kept"].sum()
    assert m["counts"]["kept"] + m["counts"]["dropped"] == m["counts"]["input"]
    by_reason = d.with_columns(
        pl.when(pl.col("reason").str.starts_with("duplicate-of:")).then(pl.lit("duplicate"))
        .otherwise(pl.col("reason")).alias("r")
    ).group_by("r").len()
    assert dict(by_reason.rows()) == {k: v for k, v in m["counts"]["by_reason"].items() if v}
    # Hashes in the manifest are those of the files.
    hashes = {e["path"]: e["sha256"] for e in m["inputs"] + m["outputs"]}
    for path in (cpath, gpath, train, decisions):
        assert hashes[str(path)] == sha(path)
    assert m["gold_integrity"]["files"] == [{"path": str(gpath), "sha256": sha(gpath)}]
    assert m["policy"]["max_synthetic"] == 0.2 and m["seed"] == 0
    assert m["encoder"]["id"].startswith("static:")
    out_share = m["synthetic_share"]["output"]
    assert out_share["share"] <= 0.2 and out_share["low"] <= out_share["share"] <= out_share["high"]
    # Gold rows come first, unaltered.
    gold = pl.read_parquet(gpath)
    assert t.slice(0, gold.height).select(gold.columns).equals(gold)


def test_same_inputs_and_seed_give_identical_bytes(corpus_files, tmp_path):
    cpath, gpath = corpus_files
    digests = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        res = invoke([cpath, "--gold", gpath, "--seed", 3, "-o", folder / "train.parquet", *BASE])
        assert res.exit_code == 0, res.output
        train, decisions, manifest = outputs_of(folder)
        m = json.loads(manifest.read_text())
        digests.append((sha(train), sha(decisions), m["counts"], m["synthetic_share"], m["limits"]))
    assert digests[0] == digests[1]


def test_impossible_policy_explains_and_writes_nothing(corpus_files, tmp_path):
    cpath, gpath = corpus_files
    out = tmp_path / "train.parquet"
    proc = run_cli([cpath, "--gold", gpath, "--target-size", 140, "-o", out, *BASE], env_cache=tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: at most ")
    assert "records fit under --max-synthetic 0.2 with this pool" in lines[0]
    assert not any(p.exists() for p in outputs_of(tmp_path))
    assert not list(tmp_path.glob(".train*"))


def test_min_gold_share_impossible(corpus_files, tmp_path):
    cpath, _ = corpus_files
    res = invoke([cpath, "--min-gold-share", 0.5, "-o", tmp_path / "train.parquet", *BASE])
    assert res.exit_code != 0 and "needs gold data" in str(res.exception)
    assert not any(p.exists() for p in outputs_of(tmp_path))


def test_refuses_to_write_over_an_input(corpus_files):
    cpath, gpath = corpus_files
    before = gpath.read_bytes()
    res = invoke([cpath, "--gold", gpath, "-o", gpath, *BASE])
    assert res.exit_code != 0 and "refusing to overwrite an input" in str(res.exception)
    assert gpath.read_bytes() == before
    res = invoke([cpath, "--gold", gpath, "-o", gpath.with_name("t.parquet"), "--decisions", cpath, *BASE])
    assert "refusing to overwrite an input" in str(res.exception)


def test_dry_run_writes_nothing_and_prints_summary(corpus_files, tmp_path):
    cpath, gpath = corpus_files
    res = invoke([cpath, "--gold", gpath, "--dry-run", "-o", tmp_path / "train.parquet", "--model", "none",
                  "--encoder", "static"])
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in outputs_of(tmp_path))
    assert "synthfilter rebuild" in res.output and "nothing (--dry-run)" in res.output


def test_needs_output_unless_dry_run(corpus_files):
    cpath, _ = corpus_files
    res = invoke([cpath, *BASE])
    assert res.exit_code == 2 and "-o/--output" in res.output


def test_interrupt_after_temp_file_is_written_leaves_nothing(corpus_files, tmp_path, monkeypatch):
    from synthfilter.rebuild import outputs

    cpath, gpath = corpus_files
    before = (sha(cpath), sha(gpath))
    real = outputs._write_parquet
    calls = []

    def write_then_interrupt(df, path):
        real(df, path)
        calls.append(Path(path))
        assert Path(path).stat().st_size > 0
        if len(calls) == 2:   # training temp written, decisions temp written: now interrupt
            raise KeyboardInterrupt

    monkeypatch.setattr(outputs, "_write_parquet", write_then_interrupt)
    # click turns the KeyboardInterrupt into "Aborted!" and exit code 1.
    res = invoke([cpath, "--gold", gpath, "-o", tmp_path / "train.parquet", *BASE])
    assert res.exit_code == 1 and "Aborted" in res.output
    assert len(calls) == 2 and not any(c.exists() for c in calls)
    assert not any(p.exists() for p in outputs_of(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.scores.parquet", "human.parquet"]
    assert (sha(cpath), sha(gpath)) == before


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_process_killed_mid_write_leaves_no_output(corpus_files, tmp_path, signal_name):
    cpath, gpath = corpus_files
    before = (sha(cpath), sha(gpath))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # The writer really writes the temp file, then the process gets a real signal.
    prelude = f"""
        import os, signal
        import synthfilter.rebuild.outputs as outputs
        real = outputs._write_parquet
        def write_then_signal(df, path):
            real(df, path)
            os.kill(os.getpid(), signal.{signal_name})
        outputs._write_parquet = write_then_signal
    """
    proc = run_cli([cpath, "--gold", gpath, "-o", out_dir / "train.parquet", *BASE], prelude=prelude,
                   env_cache=tmp_path / "cache")
    if signal_name == "SIGKILL":
        assert proc.returncode == -9
    else:
        assert proc.returncode == 130 and "nothing was written" in proc.stderr
        assert list(out_dir.iterdir()) == []          # temp files cleaned up too
    assert not any(p.exists() for p in outputs_of(out_dir))
    assert (sha(cpath), sha(gpath)) == before


def test_gold_changed_during_run_is_caught(corpus_files, tmp_path, monkeypatch):
    from synthfilter.errors import OutputError
    from synthfilter.rebuild import outputs

    cpath, gpath = corpus_files
    real = outputs._write_parquet

    def write_and_touch_gold(df, path):
        real(df, path)
        with open(gpath, "ab") as handle:   # someone else appends to the gold file mid-run
            handle.write(b"x")

    monkeypatch.setattr(outputs, "_write_parquet", write_and_touch_gold)
    res = invoke([cpath, "--gold", gpath, "-o", tmp_path / "train.parquet", *BASE])
    assert isinstance(res.exception, OutputError) and "gold file changed during the run" in str(res.exception)
    assert not any(p.exists() for p in outputs_of(tmp_path))


def test_registered_in_the_group():
    from synthfilter.cli import main

    res = CliRunner().invoke(main, ["rebuild", "--help"])
    assert res.exit_code == 0 and "--max-synthetic" in res.output and "--keep-rare" in res.output


def test_raw_candidates_are_scored_with_the_model(tmp_path, tiny_model_dir):
    from tests.rebuild.conftest import make_machine_texts, make_texts

    human = make_texts(30, seed=31)
    machine = make_machine_texts(30, seed=32)
    raw = tmp_path / "raw.jsonl"
    pl.DataFrame({"text": human + machine, "kind": ["h"] * 30 + ["m"] * 30}).write_ndjson(raw)
    gold = tmp_path / "gold.csv"
    pl.DataFrame({"text": make_texts(15, seed=33)}).write_csv(gold)
    out = tmp_path / "train.parquet"
    res = invoke([raw, "--gold", gold, "--model", tiny_model_dir, "--encoder", "static", "--max-synthetic", 0.1,
                  "-o", out, "--quiet"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "train.manifest.json").read_text())
    assert m["model"]["id"].startswith("tiny@") and m["synthetic_share"]["candidates"]["method"] == "pacc"
    assert 0.3 < m["synthetic_share"]["candidates"]["share"] < 0.7
    t = pl.read_parquet(out)
    kept_kind = t.filter(pl.col("origin") == "candidate")["kind"].to_list()
    # Every human record fits; machine records fill the output only up to the cap.
    assert kept_kind.count("h") == 30
    assert kept_kind.count("m") / t.height <= 0.1 + 0.02
    assert m["synthetic_share"]["output"]["share"] <= 0.1


def test_scores_from_another_model_are_refused(corpus_files, tmp_path, tiny_model_dir):
    cpath, gpath = corpus_files
    (tmp_path / "corpus.scores.manifest.json").write_text(json.dumps({"origin": {"model": "other@123"}}))
    res = invoke([cpath, "--gold", gpath, "--model", tiny_model_dir, "--encoder", "static",
                  "-o", tmp_path / "train.parquet", "--quiet"])
    assert "scored with model other@123" in str(res.exception)
    assert not (tmp_path / "train.parquet").exists()


def test_keep_rare_off_and_no_dedup_keep_duplicates(corpus_files, tmp_path):
    cpath, gpath = corpus_files
    res = invoke([cpath, "--gold", gpath, "--keep-rare", "off", "--no-dedup", "--max-synthetic", 0.4,
                  "-o", tmp_path / "train.parquet", *BASE])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "train.manifest.json").read_text())
    assert m["policy"]["keep_rare"] is None and m["policy"]["dedup"] is False
    assert m["counts"]["by_reason"]["duplicate"] == 0 and m["counts"]["by_reason"]["protected-rare"] == 0
    assert m["tails"]["computed"] == "not-needed"
    res = invoke([cpath, "--keep-rare", "often", "-o", tmp_path / "t2.parquet", *BASE])
    assert "--keep-rare must be a number" in str(res.exception)


def test_group_column_reaches_the_manifest_and_a_missing_one_writes_nothing(corpus_files, tmp_path):
    cpath, gpath = corpus_files
    grouped = tmp_path / "grouped.parquet"
    pl.read_parquet(cpath).with_columns(doc=(pl.int_range(pl.len()) // 10).cast(pl.String)).write_parquet(grouped)
    out = tmp_path / "train.parquet"
    res = invoke([grouped, "--gold", gpath, "--group-column", "doc", "-o", out, *BASE])
    assert res.exit_code == 0, res.output
    m = json.loads(outputs_of(tmp_path)[2].read_text())
    assert m["synthetic_share"]["candidates"]["n_documents"] == 13
    assert m["parameters"]["group_column"] == "doc"
    for p in outputs_of(tmp_path):
        p.unlink()
    res = invoke([grouped, "--gold", gpath, "--group-column", "url", "-o", out, *BASE])
    assert res.exit_code != 0 and "no group column 'url' (columns: id, text, topic, p_synthetic, doc)" in str(res.exception)
    assert not any(p.exists() for p in outputs_of(tmp_path))


def test_rebuild_finds_the_texts_of_scores_written_without_them(tmp_path):
    """Item 9: scores made without --keep text take their texts from the corpus their manifest names."""
    import subprocess
    import sys

    from tests.rebuild.conftest import make_texts

    def cli(*args, cwd):
        return subprocess.run([sys.executable, "-m", "synthfilter.cli", *map(str, args)], cwd=cwd,
                              capture_output=True, text=True, timeout=600, check=False)

    data = tmp_path / "data"
    data.mkdir()
    texts = make_texts(30, seed=11)
    pl.DataFrame({"text": texts}).write_parquet(data / "corpus.parquet")
    pl.DataFrame({"text": make_texts(8, seed=12)}).write_parquet(tmp_path / "gold.parquet")
    scored = cli("score", "corpus.parquet", "--encoder", "static", "--quiet", cwd=data)
    assert scored.returncode == 0, scored.stderr
    assert "text" not in pl.read_parquet(data / "corpus.scores.parquet").columns
    proc = cli("rebuild", "data/corpus.scores.parquet", "--gold", "gold.parquet", "--encoder", "static", "--quiet",
               "-o", "train.parquet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    kept = pl.read_parquet(tmp_path / "train.parquet").filter(pl.col("origin") != "gold")["text"].to_list()
    assert kept and set(kept) <= set(texts)
    # The corpus changed since it was scored: refused in one line, nothing written.
    pl.DataFrame({"text": texts[::-1]}).write_parquet(data / "corpus.parquet")
    proc = cli("rebuild", "data/corpus.scores.parquet", "--gold", "gold.parquet", "--encoder", "static", "--quiet",
               "-o", "train2.parquet", cwd=tmp_path)
    assert proc.returncode == 2 and "changed since it was scored" in proc.stderr
    assert not (tmp_path / "train2.parquet").exists()


def test_gold_joins_scores_in_the_encoder_they_were_made_with(corpus_files, tmp_path):
    """Without --encoder, rebuild embeds gold with the encoder the scores' manifest names, not the default."""
    from synthfilter.cli.score import command as score_command

    cpath, gpath = corpus_files
    scores = tmp_path / "c.scores.parquet"
    res = CliRunner().invoke(score_command, [str(cpath), "--encoder", "static", "--keep", "text",
                                             "--quiet", "-o", str(scores)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "train.parquet"
    res = invoke([scores, "--gold", gpath, "--max-synthetic", 0.2, "-o", out, "--quiet"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "train.manifest.json").read_text())
    assert manifest["parameters"]["encoder"] == "static"
    assert manifest["encoder"]["id"].startswith("static:")
