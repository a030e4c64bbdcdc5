"""The detector's scores, computed in a second process while this one loads and runs the encoder.

The default encoder (MiniLM) is not the detector's own: the detector embeds
the texts with the static encoder and its other blocks read the texts alone,
so its scores do not wait for the corpus embeddings. A cold run spends its
first seconds importing sentence-transformers and torch on one core, while
the other sits idle; :class:`DetectorJob` starts the detector in a second
process before then, and hands its scores back when the origin stage needs
them. Each text's score depends on that text alone, so the scores are the same
as computed in one process.

The child is ``python -m synthfilter.background`` (not a multiprocessing
child, which would import the caller's main script again). It gets the
fitted detector and the texts on its standard input (a pickle made here, by
this process, never read from a file), runs on one thread, and writes its
scores back chunk by chunk on its standard output. If it cannot start or dies,
the scores it did not send are computed here, with one warning.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Texts per chunk the child sends back.
CHUNK = 4096


def _child(stdin: Any, stdout: Any) -> None:
    """The child's work: read the job, write ``(start, scores)`` per chunk, or ``(-1, reason)`` on failure."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # one core is this process's share; the parent keeps the other
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    try:
        scorer, texts, chunk = pickle.load(stdin)  # noqa: S301 - written by the parent process, over its own pipe
        for start in range(0, len(texts), chunk):
            pickle.dump((start, _scores(scorer, texts[start:start + chunk])), stdout,
                        protocol=pickle.HIGHEST_PROTOCOL)
            stdout.flush()
    except BrokenPipeError:  # the parent is gone
        return
    except BaseException as exc:  # noqa: BLE001 - the parent computes what is missing
        pickle.dump((-1, f"{type(exc).__name__}: {exc}"), stdout)
        stdout.flush()


def _scores(scorer: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(scorer.decision_function(texts), dtype=np.float64)


class DetectorJob:
    """Uncalibrated detector scores of a fixed list of texts, computed by a second process.

    Parameters
    ----------
    scorer : OriginScorer
        A fitted detector (anything picklable with ``decision_function(texts)``).
    texts : sequence of str
        The texts, distinct; :meth:`scores` waits for the child only for these.
    chunk : int, default 4096
        Texts per message from the child.

    Attributes
    ----------
    failure : str or None
        Why the child stopped early, if it did (its scores are then computed here).
    """

    def __init__(self, scorer: Any, texts: Sequence[str], chunk: int = CHUNK) -> None:
        self.scorer = scorer
        self.texts = list(texts)
        self.chunk = int(chunk)
        self.position = {text: i for i, text in enumerate(self.texts)}
        self.failure: str | None = None
        self._rows: dict[int, np.ndarray] = {}  # chunk start -> scores
        self._finished = False
        self._changed = threading.Condition()
        here = str(Path(__file__).resolve().parents[1])  # the child imports this same synthfilter
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])]),
               "SYNTHFILTER_THREADS": "1"}
        try:
            self._process: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-m", "synthfilter.background"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            self._process, self.failure, self._finished = None, f"cannot start it ({exc})", True
            return
        self._payload: bytes | None = pickle.dumps((scorer, self.texts, self.chunk), protocol=pickle.HIGHEST_PROTOCOL)
        # Sent and read on a thread, so that neither this process nor the child waits on a full pipe.
        threading.Thread(target=self._talk, name="synthfilter-detector-job", daemon=True).start()

    def _talk(self) -> None:
        assert self._process is not None and self._process.stdin is not None and self._process.stdout is not None
        failure = None
        try:
            payload, self._payload = self._payload, None
            self._process.stdin.write(payload)
            self._process.stdin.close()
            del payload  # the texts' pickle is not kept while the rows come back
            while True:
                start, value = pickle.load(self._process.stdout)  # noqa: S301 - our child's answers
                if start < 0:
                    failure = str(value)
                    break
                with self._changed:
                    self._rows[start] = value
                    self._changed.notify_all()
                if start + self.chunk >= len(self.texts):
                    break
        except (EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
            failure = f"it stopped ({type(exc).__name__}, exit status {self._process.poll()})"
        finally:
            with self._changed:
                self.failure, self._finished = failure, True
                self._changed.notify_all()

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """float64 scores of ``texts``, waiting for the child where needed.

        Scores of texts the job was not given, or that the child did not
        deliver, are computed in this process.
        """
        texts = list(texts)
        index = np.fromiter((self.position.get(t, -1) for t in texts), dtype=np.int64, count=len(texts))
        known = index >= 0
        starts = index // self.chunk * self.chunk
        needed = [int(s) for s in np.unique(starts[known])]
        with self._changed:
            self._changed.wait_for(lambda: self._finished or all(s in self._rows for s in needed))
            have = {s: self._rows[s] for s in needed if s in self._rows}
        if len(have) < len(needed):  # the child stopped early
            from synthfilter.cache import warn_once

            warn_once(f"the detector's second process gave no scores ({self.failure}); computing them in this one",
                      topic="detector-job")
        out = np.empty(len(texts), dtype=np.float64)
        for start in needed:
            if start not in have:
                have[start] = _scores(self.scorer, self.texts[start:start + self.chunk])
                with self._changed:
                    self._rows[start] = have[start]
            mask = starts == start
            out[mask] = have[start][index[mask] - start]
        if not known.all():
            out[~known] = _scores(self.scorer, [texts[i] for i in np.flatnonzero(~known)])
        return out

    def close(self) -> None:
        """Stop the child (if still running) and wait for it."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> DetectorJob:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


if __name__ == "__main__":  # the child
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print cannot corrupt the rows
    _child(sys.stdin.buffer, channel)
