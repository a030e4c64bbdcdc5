"""The console entry point leaves without tearing the interpreter down, but as ``sys.exit`` would."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import synthfilter.cli as cli
pool = ThreadPoolExecutor(1)  # never shut down: its idle worker must not hold the exit
done = []
worker = threading.Thread(target=lambda: (time.sleep(0.3), done.append(1)))  # non-daemon, still working
worker.start()
atexit.register(lambda: print("atexit ran, worker done:", bool(done), flush=True))
sys.argv = ["synthfilter", *sys.argv[1:]]
cli.run()
"""


@pytest.mark.parametrize(("args", "status"), [(["--version"], 0), (["score", "--bogus"], 2), ([], 0)])
def test_exit_status_atexit_functions_and_threads_are_kept(args, status):
    out = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == status, out.stderr
    assert out.stdout.rstrip().endswith("atexit ran, worker done: True")
    if args == ["--version"]:
        assert "synthfilter, version" in out.stdout
    if status == 2:
        assert "No such option" in out.stderr
