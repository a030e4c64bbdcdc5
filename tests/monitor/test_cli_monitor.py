"""``synthfilter monitor``: exit codes, outputs and one-line errors."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.conftest import run_cli as run


@pytest.fixture(scope="module")
def files(tmp_path_factory, human, machine, human_split):
    folder = tmp_path_factory.mktemp("monitor-cli")
    reference, fresh = human_split
    paths = {
        "reference": folder / "reference.parquet",
        "fresh": folder / "fresh.csv",
        "machine": folder / "machine.jsonl",
        "whole": folder / "whole.parquet",
    }
    reference.select("id", "text", "source", "group").write_parquet(paths["reference"])
    fresh.select("id", "text").write_csv(paths["fresh"])
    machine.select("id", "text").write_ndjson(paths["machine"])
    human.select("id", "text", "group").write_parquet(paths["whole"])
    return paths


def test_healthy_batch_exits_zero_and_writes_json_and_parquet(files, tmp_path):
    out_json, out_pq = tmp_path / "run.json", tmp_path / "run.parquet"
    result = run("monitor", files["fresh"], "--reference", files["reference"], "--encoder", "static",
                 "--model", "none", "-o", out_json, "-o", out_pq)
    assert result.exit_code == 0, result.output
    assert "all batches healthy" in result.output and "fresh.csv" in result.output
    data = json.loads(out_json.read_text())
    assert data["status"] == "ok" and data["batches"][0]["name"] == str(files["fresh"])
    assert data["parameters"]["seed"] == 0 and data["inputs"][0]["sha256"]
    assert data["reference"]["grouped_splits"] is True  # the 'group' column was used
    frame = pl.read_parquet(out_pq)
    assert frame.height == 1 and frame["status"].to_list() == ["ok"]
    assert (tmp_path / "run.manifest.json").is_file()


def test_alarm_exits_three_with_rows_in_batch_order(files, tmp_path):
    out = tmp_path / "run.parquet"
    result = run("monitor", files["machine"], files["fresh"], "--reference", files["whole"], "--encoder", "static",
                 "--model", "none", "-o", out)
    assert result.exit_code == 3, result.output
    assert "ALARM" in result.output and "narrowing:" in result.output
    frame = pl.read_parquet(out)
    assert frame["batch"].to_list() == [str(files["machine"]), str(files["fresh"])]
    assert frame["status"].to_list() == ["alarm", "ok"] and "narrowing" in frame["alarm_groups"][0]
    assert frame["distinct_2"][0] < frame["distinct_2__bound"][0]


def test_threshold_option_sets_and_silences_alarms(files):
    args = ["monitor", files["fresh"], "--reference", files["reference"], "--encoder", "static", "--model", "none",
            "--quiet"]
    assert run(*args, "--threshold", "vendi_score=1000").exit_code == 3
    assert run(*args, "--threshold", "vendi_score=1000", "--threshold", "vendi_score=off").exit_code == 0


def test_default_encoder_is_minilm(files, tmp_path):
    out = tmp_path / "run.json"
    result = run("monitor", files["fresh"], "--reference", files["reference"], "--model", "none", "--n-null", "10",
                 "-o", out, "--quiet")
    assert result.exit_code in (0, 3), result.output
    data = json.loads(out.read_text())
    assert data["encoder"].startswith("minilm:") and "ALARM" not in result.output  # --quiet
    assert result.exit_code == (3 if data["status"] == "alarm" else 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "vendy=1"], "unknown metric 'vendy'"),
        (["--threshold", "vendi_score"], "write METRIC=VALUE"),
        (["--threshold", "vendi_score=high"], "is not a number"),
        (["--threshold", "length_mean=3"], "informational"),
        (["-o", "out.txt"], "use .json or .parquet"),
        (["--text-column", "body"], "no column 'body'"),
        (["--group-column", "topic"], "no group column 'topic'"),
    ],
)
def test_user_errors_exit_two_in_one_line(files, extra, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("monitor", files["fresh"], "--reference", files["reference"], "--encoder", "static",
                 "--model", "none", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.strip().count("\n") == 0
    assert not list(tmp_path.iterdir())


def test_missing_batch_and_overwriting_input_are_refused(files, tmp_path):
    result = run("monitor", tmp_path / "nope.parquet", "--reference", files["reference"], "--encoder", "static")
    assert result.exit_code == 2 and "no such file" in result.output
    result = run("monitor", files["fresh"], "--reference", files["reference"], "-o", files["reference"])
    assert result.exit_code == 2 and "overwrite an input" in result.output


def test_help_lists_options():
    result = run("monitor", "--help")
    assert result.exit_code == 0
    for option in ("--reference", "--text-column", "--encoder", "--seed", "--threshold", "--sigma", "-o"):
        assert option in result.output
