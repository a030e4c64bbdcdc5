"""A Ctrl-C that a library swallows still stops the work at the next checkpoint."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from synthfilter.cache import ArrayStore, cached_rows
from synthfilter.interrupts import check_interrupted, remember_interrupts


def _swallowed_ctrl_c() -> None:
    """A Ctrl-C arrives while a library that catches everything is running."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler raises here
    except BaseException:  # noqa: BLE001 - what such a library does
        pass


def test_a_swallowed_interrupt_stops_cached_work_at_the_next_chunk(tmp_path):
    calls = []

    def compute(part):
        calls.append(len(part))
        if len(calls) == 1:
            _swallowed_ctrl_c()
        return np.zeros((len(part), 1), dtype=np.float32)

    with ArrayStore(tmp_path / "rows.sqlite", width=1) as store:
        with remember_interrupts(), pytest.raises(KeyboardInterrupt):
            cached_rows([f"text {i}" for i in range(30)], store, compute, chunk=10)
        assert calls == [10]
        assert len(store) == 10  # what was done is kept; a re-run starts from there


def test_outside_the_block_nothing_is_remembered():
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup / a background job
    with remember_interrupts():
        _swallowed_ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            check_interrupted()
    check_interrupted()  # cleared on leaving
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found is put back
