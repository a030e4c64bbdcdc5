"""Property: whatever the files and options, the CLI never shows a traceback.

Random bytes, random Parquet/JSONL/CSV shapes (columns, nulls, empty and odd
texts) and random option values go to ``synthfilter score`` and
``synthfilter rebuild``, run as real processes (children forked from one warm
driver, see ``_fault_driver.py``). Each run must exit 0, or 2 with one
``Error:`` line as its last line; never a traceback, never another code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

GOOD = st.sampled_from([
    "The cat sat on the mat and watched the birds in the garden.",
    "Stock prices fell sharply on Tuesday after the quarterly report.",
    "A quiet village lies at the foot of the mountain, beside the river.",
    "Certainly! Here is a comprehensive overview of the key insights.",
    "The committee will meet again next week to discuss the budget.",
    "日本語のテキストも少しだけ含まれています。",
])
ODD = st.one_of(st.none(), st.sampled_from(["", " ", "\n", "a", "x" * 300, '{"nested": 1}', "emoji 🙂",
                                            "tab\tand\r\nnewlines"]), st.text(max_size=40))
TEXTS = st.one_of(GOOD, GOOD, GOOD, ODD)
COLUMNS = st.one_of(st.just(["text"]), st.just(["id", "text", "group"]),
                    st.lists(st.sampled_from(["text", "id", "body", "label", "group"]), max_size=4, unique=True))


@st.composite
def corpus_file(draw) -> tuple[str, bytes | pl.DataFrame]:
    """A file name and its content: random bytes, or a random table in a random format."""
    suffix = draw(st.sampled_from([".parquet", ".jsonl", ".csv", ".parquet", ".jsonl", ".csv", ".txt"]))
    if draw(st.integers(0, 4)) == 0:
        return "in" + suffix, draw(st.binary(max_size=200))
    columns = draw(COLUMNS)
    rows = draw(st.one_of(st.integers(3, 8), st.integers(0, 8)))
    data = {}
    for column in columns:
        if column in ("label",):
            data[column] = draw(st.lists(st.sampled_from([0, 1, None]), min_size=rows, max_size=rows))
        elif column == "id":
            data[column] = draw(st.one_of(st.just([f"r{i}" for i in range(rows)]),
                                          st.lists(st.sampled_from(["a", "b", None]), min_size=rows, max_size=rows)))
        else:
            data[column] = draw(st.one_of(st.lists(GOOD, min_size=rows, max_size=rows),
                                          st.lists(TEXTS, min_size=rows, max_size=rows)))
    return "in" + suffix, pl.DataFrame(data, schema={c: (pl.Int64 if c == "label" else pl.String) for c in columns})


@st.composite
def good_file(draw) -> tuple[str, pl.DataFrame]:
    """A well-formed corpus: the random part is its size, format and texts."""
    suffix = draw(st.sampled_from([".parquet", ".jsonl", ".csv"]))
    texts = draw(st.lists(GOOD, min_size=2, max_size=8))
    return "in" + suffix, pl.DataFrame({"text": texts})


FILES = st.one_of(good_file(), corpus_file())


def _write(folder: Path, name: str, content) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif name.endswith(".parquet"):
        content.write_parquet(path)
    elif name.endswith(".jsonl"):
        content.write_ndjson(path)
    else:
        content.write_csv(path)
    return path


def some_of(choices: dict) -> st.SearchStrategy[dict]:
    """Up to two of the options, each with a random value."""
    return st.lists(st.sampled_from(sorted(choices)), max_size=2, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: choices[k] for k in keys}))


SCORE_OPTIONS = some_of({
    "--text-column": st.sampled_from(["text", "body", "nope", ""]),
    "--id-column": st.sampled_from(["id", "nope"]),
    "--max-text-chars": st.integers(-3, 400).map(str),
    "-k": st.integers(-1, 8).map(str),
    "--dup-threshold": st.one_of(st.floats(-1, 2), st.just(float("nan"))).map(str),
    "--text-dup-threshold": st.sampled_from(["0", "0.5", "1", "nan", "-0.1", "x"]),
    "--seed": st.sampled_from(["0", "-1", "7", "1e3"]),
    "--index": st.sampled_from(["auto", "flat", "ivf", "hnsw"]),
    "--keep": st.sampled_from(["text", "body", "label", "nope"]),
    "--group-column": st.sampled_from(["group", "nope"]),
    "--model": st.sampled_from(["none", "nope"]),
    "-o": st.sampled_from(["out.parquet", "out.csv", "in.parquet", "missing/out.parquet", "."]),
})

REBUILD_OPTIONS = some_of({
    "--max-synthetic": st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))).map(str),
    "--target-size": st.integers(-1, 20).map(str),
    "--min-gold-share": st.sampled_from(["0", "0.5", "1", "2"]),
    "--keep-rare": st.sampled_from(["0.95", "off", "2", "x"]),
    "--max-p": st.sampled_from(["0.9", "1", "-1", "nan"]),
    "--text-column": st.sampled_from(["text", "body"]),
    "-k": st.integers(-1, 8).map(str),
})


class _Driver:
    def __init__(self, cwd: Path) -> None:
        env = {**os.environ, "SYNTHFILTER_CACHE": str(cwd / "cache")}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_fault_driver.py"))], cwd=cwd,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, args: list[str], log: Path) -> tuple[int, str]:
        log.unlink(missing_ok=True)
        self.proc.stdin.write(json.dumps({"args": args, "env": {"FAULT_DRIVER_LOG": str(log)}}) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self.proc.stdout.readline())["rc"]
        return rc, log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    folder = tmp_path_factory.mktemp("props")
    d = _Driver(folder)
    yield d, folder
    d.proc.stdin.close()
    d.proc.wait(timeout=60)


def _check(rc: int, output: str, args: list[str]) -> None:
    event(f"exit {rc}" + (": " + output.strip().splitlines()[-1][:70] if rc and output.strip() else ""))
    assert "Traceback" not in output, (args, output[-3000:])
    assert rc in (0, 2), (args, rc, output[-3000:])
    if rc == 2:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error: ")]
        assert errors == lines[-1:], (args, output[-3000:])


def _flatten(options: dict[str, str]) -> list[str]:
    return [part for key, value in options.items() for part in (key, value)]


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(file=FILES, options=SCORE_OPTIONS)
def test_score_never_shows_a_traceback(driver, file, options):
    run, folder = driver
    work = folder / "score"
    work.mkdir(exist_ok=True)
    for stale in work.iterdir():
        if stale.is_file():
            stale.unlink()
    path = _write(work, *file)
    options.setdefault("--model", "none")
    options["-o"] = str(work / options.get("-o", "out.parquet"))
    args = ["score", str(path), "--encoder", "static", "--quiet", *_flatten(options)]
    _check(*run(args, folder / "score.log"), args)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(candidates=FILES, gold=FILES, options=REBUILD_OPTIONS)
def test_rebuild_never_shows_a_traceback(driver, candidates, gold, options):
    run, folder = driver
    work = folder / "rebuild"
    work.mkdir(exist_ok=True)
    for stale in work.iterdir():
        if stale.is_file():
            stale.unlink()
    cand = _write(work, "cand-" + candidates[0], candidates[1])
    gold_path = _write(work, "gold-" + gold[0], gold[1])
    args = ["rebuild", str(cand), "--gold", str(gold_path), "--encoder", "static", "--quiet",
            "-o", str(work / "train.parquet"), *_flatten(options)]
    _check(*run(args, folder / "rebuild.log"), args)
