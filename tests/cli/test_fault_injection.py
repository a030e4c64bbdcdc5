"""Kill real ``score`` and ``rebuild`` runs at every write and rename of their outputs.

The runs are real processes: children forked from one warm driver process
(``_fault_driver.py``), so that loading the libraries is paid once. Each kill
is a ``SIGKILL`` from the ``SYNTHFILTER_FAULT_AT`` testing hook of
:mod:`synthfilter.atomic`. After each: the inputs and gold are byte-identical;
the folder holds the complete previous output set or the complete new one
(once a commit that passed its commit point is completed by
:func:`synthfilter.atomic.recover`, which the next run does itself), never a
mix; a re-run gives byte-identical outputs and leaves no temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.atomic import recover

pytestmark = pytest.mark.slow

# Which earlier run a re-run reused is provenance, like the times, not a difference in the outputs.
_VOLATILE = {"created_utc", "timings_s", "reused_run"}
_WORDS = ("river stone market window garden letter morning winter station engine harbour village teacher "
          "doctor paper kitchen county mountain railway orchard bridge candle violin pocket ladder summer").split()


def make_texts(n: int, seed: int) -> list[str]:
    """Distinct sentences of real words."""
    rng = np.random.default_rng(seed)
    return [" ".join(_WORDS[i] for i in rng.choice(len(_WORDS), size=30)).capitalize() + "." for _ in range(n)]


class _Driver:
    """The CLI run in forked children of one warm process (see ``_fault_driver.py``)."""

    def __init__(self, cwd: Path, cache: Path) -> None:
        env = {**os.environ, "SYNTHFILTER_CACHE": str(cache), "FAULT_DRIVER_LOG": str(cwd / "driver.log")}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_fault_driver.py"))],
                                     cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, args: list[str], **env: str) -> int:
        self.proc.stdin.write(json.dumps({"args": args, "env": env}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["rc"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _snapshot(folder: Path) -> dict[str, object]:
    """Visible files of the output folder: parquet bytes' hash, manifests without times."""
    out: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix == ".json":
            out[path.name] = _strip(json.loads(path.read_text(encoding="utf-8")))
        else:
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _hashes(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    pl.DataFrame({"text": make_texts(30, 2) + make_texts(20, 3)}).write_parquet(root / "corpus.parquet")
    pl.DataFrame({"text": make_texts(12, 1)}).write_parquet(root / "gold.parquet")
    (root / "out").mkdir()
    return root


@pytest.fixture(scope="module")
def cli(workdir: Path):
    driver = _Driver(workdir, workdir / "cache")
    yield driver
    driver.close()


def _sweep(cli: _Driver, workdir: Path, old_args: list[str], new_args: list[str], outputs: list[str],
           inputs: list[Path]) -> None:
    out = workdir / "out"
    before = _hashes(inputs)
    for path in out.iterdir():
        path.unlink()
    assert cli(new_args) == 0
    new = _snapshot(out)
    for path in out.iterdir():
        path.unlink()
    log = workdir / "steps.log"
    log.unlink(missing_ok=True)
    assert cli(old_args, SYNTHFILTER_FAULT_LOG=str(log)) == 0
    old = _snapshot(out)
    assert old != new and sorted(old) == sorted(outputs)
    saved = {p.name: p.read_bytes() for p in out.iterdir()}
    steps = [s for s in dict.fromkeys(log.read_text().split())
             if s in ("journal", "done") or s.split(":", 1)[-1] in outputs]
    primary = outputs[0]
    assert steps == [*(f"write:{n}" for n in outputs), "journal", f"remove-old:{primary}",
                     *(f"rename:{n}" for n in outputs[1:]), f"rename:{primary}", "done"]

    for number, step in enumerate(steps):
        for path in out.iterdir():
            path.unlink()
        for name, data in saved.items():
            (out / name).write_bytes(data)
        assert cli(new_args, SYNTHFILTER_FAULT_AT=step) == -signal.SIGKILL, step
        assert _hashes(inputs) == before, step
        state = _snapshot(out)
        journal = any(n.startswith(".synthfilter-commit") for n in _hidden(out))
        # Never a primary file beside a manifest that is not its own.
        assert state in (old, new) or (journal and primary not in state), step
        if journal and number % 2 == 0:  # past the commit point: recover() completes it ...
            recover(out)
            state = _snapshot(out)
            assert state == new, step
            assert _hidden(out) == [], step
        elif not journal:
            assert state in (old, new), step
        # ... and so does the next run, which then gives byte-identical outputs and leaves nothing behind.
        leftovers = _hidden(out)
        assert cli(new_args) == 0, step
        assert _snapshot(out) == new, step
        assert _hidden(out) == [], (step, leftovers)
        assert _hashes(inputs) == before, step
    assert not (workdir / "driver.log").exists() or "Traceback" not in (workdir / "driver.log").read_text()


def test_score_killed_at_every_step(cli: _Driver, workdir: Path):
    base = ["score", "corpus.parquet", "--encoder", "static", "--model", "none", "--keep", "text", "--quiet",
            "-o", "out/corpus.scores.parquet"]
    _sweep(cli, workdir, base + ["-k", "3"], base + ["-k", "5"],
           ["corpus.scores.parquet", "corpus.scores.manifest.json"], [workdir / "corpus.parquet"])


def test_rebuild_killed_at_every_step(cli: _Driver, workdir: Path):
    assert cli(["score", "corpus.parquet", "--encoder", "static", "--keep", "text", "--quiet"]) == 0
    base = ["rebuild", "corpus.scores.parquet", "--gold", "gold.parquet", "--encoder", "static", "--quiet",
            "-o", "out/train.parquet"]
    inputs = [workdir / "corpus.parquet", workdir / "corpus.scores.parquet", workdir / "gold.parquet"]
    _sweep(cli, workdir, base + ["--max-synthetic", "0.5"], base + ["--max-synthetic", "0.1"],
           ["train.parquet", "train.decisions.parquet", "train.manifest.json"], inputs)
    shutil.rmtree(workdir / "out")
