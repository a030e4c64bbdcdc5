"""A Ctrl-C that a library swallows still stops the command.

Some libraries catch every exception around their own imports, so a Ctrl-C
pressed while sentence-transformers and torch are imported (the first
seconds of a default run) was lost, and the run went on to the end.
:func:`remember_interrupts` installs a SIGINT handler that notes the
interrupt before raising :class:`KeyboardInterrupt`; :func:`check_interrupted`
raises it again at the next checkpoint (each chunk of cached work, each
record stage), so the command stops there instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_INTERRUPTED = threading.Event()


@contextmanager
def remember_interrupts() -> Iterator[None]:
    """Within the block, a SIGINT is remembered as well as raised (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _INTERRUPTED.clear()


def check_interrupted() -> None:
    """Raise :class:`KeyboardInterrupt` if a remembered interrupt was swallowed since."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt
