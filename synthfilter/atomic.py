"""Writing outputs so that a kill at any instant leaves a consistent folder.

Two tools:

- :func:`atomic_path` writes one file: to a temporary file beside the target,
  renamed into place when the block ends without error.
- :class:`OutputSet` commits several files as one (a table and its manifest,
  a training set with its decisions and manifest). Every file is first
  written to a temporary file beside its target. A *journal* naming the
  renames is then written atomically: that is the commit point. The old
  primary file (the table a reader looks for) is removed, the other files
  are renamed into place, and the primary last, so a reader never finds a
  primary file beside a manifest that is not its own. A run killed after the
  commit point leaves its journal; the next write into that folder (or
  :func:`recover`) completes the renames. A run killed before it leaves the
  previous set as it was.

Temporary files and journals carry the writer's process id
(``.NAME.sf-PID-RANDOM.tmp``, ``.synthfilter-commit.sf-PID-RANDOM.json``);
those of processes that no longer run are cleaned up (or, for a journal,
completed) by later writes into the same folder. Files of running
processes are never touched, so concurrent runs do not disturb each other.

Testing hook: when the environment variable ``SYNTHFILTER_FAULT_AT`` names a
step (see :func:`fault_point`), the process kills itself with ``SIGKILL`` on
reaching it; ``SYNTHFILTER_FAULT_LOG`` names a file to which every step
reached is appended. The fault-injection tests use both to kill real runs at
every write and rename.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from synthfilter.errors import OutputError

__all__ = ["OutputSet", "atomic_path", "fault_point", "recover"]

_TMP_RE = re.compile(r"^\..+\.sf-(\d+)-[A-Za-z0-9_]+\.tmp$")
_JOURNAL_RE = re.compile(r"^\.synthfilter-commit\.sf-(\d+)-[A-Za-z0-9_]+\.json$")


def fault_point(step: str) -> None:
    """A named step of a write; the testing hook may kill the process here.

    Parameters
    ----------
    step : str
        E.g. ``"write:train.parquet"``, ``"journal"``, ``"rename:train.parquet"``.
        With ``SYNTHFILTER_FAULT_LOG`` set, the step is appended to that file;
        with ``SYNTHFILTER_FAULT_AT`` equal to ``step``, the process sends
        itself ``SIGKILL``. Neither variable is meant for normal use.
    """
    log = os.environ.get("SYNTHFILTER_FAULT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(step + "\n")
    if os.environ.get("SYNTHFILTER_FAULT_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path, suffix: str = ".tmp", prefix: str | None = None) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=prefix or f".{path.name}.sf-{os.getpid()}-", suffix=suffix, dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({exc.strerror}); choose another path") from None
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    return tmp


def replace_folder(staged: Path, target: Path) -> None:
    """Put the finished folder ``staged`` at ``target`` with one rename, replacing any older ``target``.

    A reader sees the old folder or the new one, never a mix: the old one is
    first moved aside into a hidden temporary folder beside it (removed
    afterwards), then ``staged`` is renamed into place.
    """
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.rename(target, old / "x")
    os.rename(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover(folder: str | Path) -> list[Path]:
    """Complete the commits of killed runs in ``folder`` and remove their temporary files.

    A journal left by a process that no longer runs is rolled forward (its
    remaining renames are done, the primary file last); temporary files of
    such processes that no journal names are removed. Files of running
    processes are left alone.

    Parameters
    ----------
    folder : str or Path
        The output folder.

    Returns
    -------
    list of Path
        The files put into place by completed commits.
    """
    folder = Path(folder)
    placed: list[Path] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return placed
    for name in names:
        match = _JOURNAL_RE.match(name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        journal = folder / name
        try:
            renames = json.loads(journal.read_text(encoding="utf-8"))["renames"]
        except (OSError, ValueError, KeyError, TypeError):
            journal.unlink(missing_ok=True)  # torn journal: its commit never happened
            continue
        for staged, target in renames:
            if Path(staged).exists():
                os.replace(staged, target)
                placed.append(Path(target))
        journal.unlink(missing_ok=True)
    for name in names:
        match = _TMP_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
    return placed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception, including ``KeyboardInterrupt``, the temporary file is
    removed and ``path`` is left as it was. Stale temporary files of killed
    runs in the same folder are removed first (see :func:`recover`).

    Parameters
    ----------
    path : str or Path
        The file to write.
    """
    path = Path(path)
    recover(path.parent if str(path.parent) else ".")
    tmp = _temp_beside(path)
    try:
        yield tmp
        fault_point(f"write:{path.name}")
        os.replace(tmp, path)
        fault_point(f"rename:{path.name}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class OutputSet:
    """Several output files committed as one.

    Parameters
    ----------
    targets : sequence of path
        The files to write. The first is the *primary* file: the one a reader
        looks for (a training set, a scores table). It is renamed last, and
        the old one is removed before any other file is replaced.

    Examples
    --------
    >>> with OutputSet([table_path, manifest_path]) as staged:      # doctest: +SKIP
    ...     frame.write_parquet(staged[table_path])
    ...     staged[manifest_path].write_text("{}")
    """

    def __init__(self, targets: Sequence[str | Path]) -> None:
        self.targets = [Path(t) for t in targets]
        if len({t.resolve() for t in self.targets}) != len(self.targets):
            raise OutputError("the output files must be different paths")
        self._staged: dict[Path, Path] = {}

    def __getitem__(self, target: str | Path) -> Path:
        return self._staged[Path(target)]

    def __enter__(self) -> OutputSet:
        for folder in {t.parent if str(t.parent) else Path(".") for t in self.targets}:
            recover(folder)
        try:
            for target in self.targets:
                self._staged[target] = _temp_beside(target)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self._commit()
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        for staged in self._staged.values():
            staged.unlink(missing_ok=True)

    def _commit(self) -> None:
        primary = self.targets[0]
        for target in self.targets:
            _fsync_file(self._staged[target])
            fault_point(f"write:{target.name}")
        order = [*self.targets[1:], primary]
        renames = [[str(self._staged[t].resolve()), str(t.resolve())] for t in order]
        journal = _temp_beside(primary, suffix=".json", prefix=f".synthfilter-commit.sf-{os.getpid()}-")
        journal.write_text(json.dumps({"renames": renames}) + "\n", encoding="utf-8")
        _fsync_file(journal)
        fault_point("journal")
        # Commit point passed: from here a killed run is completed by the next one.
        primary.unlink(missing_ok=True)
        fault_point(f"remove-old:{primary.name}")
        for target in order:
            os.replace(self._staged[target], target)
            fault_point(f"rename:{target.name}")
        journal.unlink(missing_ok=True)
        fault_point("done")
