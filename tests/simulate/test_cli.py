"""``synthfilter simulate`` through the real CLI group."""

from __future__ import annotations

import json

import polars as pl
from click.testing import CliRunner

from synthfilter.cli import main


def test_help_lists_kinds_and_regimes():
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for word in ("--kind", "gaussian", "zipf", "text", "--regime", "--out-dir", "--seed", "--generations"):
        assert word in result.output


def test_gaussian_run_writes_csv_png_manifest(tmp_path):
    out = tmp_path / "sim"
    result = CliRunner().invoke(main, ["simulate", "--kind", "gaussian", "-g", "5", "--runs", "50", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out / "simulate-gaussian.csv")
    assert table.height == 6 * 6  # six default regimes, generations 0..5
    assert set(table["regime"]) == {"replace", "fixed_real:0.1", "fixed_real:0.2", "fixed_real:0.5",
                                    "accumulate", "cap_keep_rare:0.2"}
    assert (out / "simulate-gaussian.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "simulate-gaussian.manifest.json").read_text())
    assert manifest["command"] == "simulate" and manifest["parameters"]["seed"] == 0
    assert "median sigma" in result.output
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_zipf_regime_selection_and_seed_reproducible(tmp_path):
    args = ["simulate", "--kind", "zipf", "-g", "3", "--runs", "2", "--regime", "replace",
            "--regime", "cap_keep_rare:0.8", "--seed", "4", "--quiet"]
    a = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a")])
    b = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "b")])
    assert a.exit_code == 0 and b.exit_code == 0
    assert (tmp_path / "a" / "simulate-zipf.csv").read_bytes() == (tmp_path / "b" / "simulate-zipf.csv").read_bytes()
    assert a.output == ""


def test_bad_regime_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--kind", "gaussian", "--regime", "fixed_real:abc",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "fixed_real:abc" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = CliRunner().invoke(main, ["simulate", "--kind", "gaussian", "-g", "1", "--runs", "5", "-o", str(target)])
    assert result.exit_code != 0
    assert target.read_text() == "x"


def _cli_without_npm(args: list[str], tmp_path, sources: str, npm: str | None = None):
    """Run the CLI in a subprocess whose PATH has the interpreter's folder (and an optional fake npm) only."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if npm is not None:
        (bin_dir / "npm").write_text(npm)
        (bin_dir / "npm").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}", "SYNTHFILTER_SOURCES": sources,
           "SYNTHFILTER_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "synthfilter.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_text_simulation_runs_with_no_npm_on_path(tmp_path, brown_paragraphs):
    """After set-up (the Brown package installed), the text kind needs no npm and fetches nothing."""
    import os

    from synthfilter.data.fetch import sources_dir

    out = tmp_path / "sim"
    proc = _cli_without_npm(["simulate", "--kind", "text", "-g", "1", "--gold", "60", "--synthetic", "40",
                             "--fresh", "10", "--test", "20", "--holdout", "20", "--regime", "replace",
                             "--quiet", "-o", str(out)], tmp_path, os.environ.get("SYNTHFILTER_SOURCES",
                                                                                   str(sources_dir())))
    assert proc.returncode == 0, proc.stderr
    assert pl.read_csv(out / "simulate-text.csv").height == 2


def test_text_simulation_never_runs_npm(tmp_path):
    """Without the installed package: a one-line error naming the set-up step, exit 2, npm never run."""
    called = tmp_path / "npm-was-run"
    proc = _cli_without_npm(["simulate", "--kind", "text", "-g", "1", "-o", str(tmp_path / "sim")], tmp_path,
                            str(tmp_path / "no-sources"), npm=f"#!/bin/sh\ntouch {called}\nexit 1\n")
    assert proc.returncode == 2
    assert "make setup" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not called.exists()
