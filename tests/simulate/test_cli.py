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
