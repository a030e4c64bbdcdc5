"""Run the ``synthfilter`` CLI many times, cheaply, in forked child processes.

The fault-injection tests kill a run at each of its write steps; loading the
libraries and the encoder once in this driver and forking a child per run
makes each run cost only its own work. Protocol: one JSON request per line
on stdin, ``{"args": [...], "env": {...}}``; one JSON reply per line on
stdout, ``{"rc": N}``, where ``-9`` means the child was killed by SIGKILL.
The children's own output goes to the file named by ``FAULT_DRIVER_LOG`` (in
the driver's environment, or per request in ``env``).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # no OpenMP thread pool to lose across fork

from synthfilter.cli import run as run_cli  # noqa: E402
from synthfilter.encoders import get_encoder  # noqa: E402


def _child(args: list[str], env: dict[str, str]) -> int:
    for key in ("SYNTHFILTER_FAULT_AT", "SYNTHFILTER_FAULT_LOG"):
        os.environ.pop(key, None)
    os.environ.update(env)
    log = os.open(os.environ.get("FAULT_DRIVER_LOG", os.devnull), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.argv = ["synthfilter", *args]
    try:
        run_cli()  # the console script's entry point
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report, do not hang
        import traceback

        traceback.print_exc()
        return 1
    return 0


def run(args: list[str], env: dict[str, str]) -> int:
    """Run the CLI in a forked child; return its exit code, or minus the signal that killed it."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(args, env)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


if __name__ == "__main__":
    get_encoder("static")  # loaded once, shared by every child
    import synthfilter.cli.rebuild  # noqa: F401
    import synthfilter.cli.score  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps({"rc": run(request["args"], request.get("env", {}))}), flush=True)
