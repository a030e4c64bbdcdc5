"""On-disk caches that make re-runs cheap.

One generic store, :class:`ArrayStore`, keeps fixed-width numeric rows in a
SQLite file (WAL mode) keyed by bytes. It serves three caches:

* the embedding cache (:class:`synthfilter.encoders.CachedEncoder`): text
  SHA-256 -> embedding, one file per encoder id;
* the detector's result cache (:class:`CachedDetector`): text SHA-256 ->
  uncalibrated score, one file per model id;
* remembered file hashes (:func:`remembered_digest`): a file's (absolute
  path, size, mtime) -> its SHA-256, so that start-up does not re-hash model
  weights that have not changed since the last run.

The store never makes a run fail. Rows are written in short transactions, so
two runs can share a file and a run killed mid-way keeps every chunk it
committed; an entry of the wrong width or with non-finite values is ignored
(recomputed and overwritten); a cache folder that cannot be used
(``$SYNTHFILTER_CACHE`` naming a file, an unwritable folder, a corrupt
database) gives one warning line on stderr and the run continues uncached.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from synthfilter.interrupts import check_interrupted

#: Texts per chunk: encoded or scored, then committed, before the next.
CHUNK = 2048
#: SQLite's default limit on ``?`` parameters per statement is 999.
_LOOKUP_BATCH = 900
#: A lookup reads the whole table, instead of key by key, when it holds at most this many rows per key asked.
_SCAN_FACTOR = 2

_WARNED: set[str] = set()
_VERIFY = False


def default_cache_dir() -> Path:
    """Folder for synthfilter caches: ``$SYNTHFILTER_CACHE`` or ``~/.cache/synthfilter``."""
    return Path(os.environ.get("SYNTHFILTER_CACHE") or Path.home() / ".cache" / "synthfilter")


def set_verify(verify: bool) -> None:
    """Make every later :func:`remembered_digest` re-hash its file (the CLI's ``--verify``).

    Parameters
    ----------
    verify : bool
        ``True`` to ignore remembered hashes for the rest of the process.
    """
    global _VERIFY
    _VERIFY = bool(verify)


def warn_once(message: str, topic: str | None = None) -> None:
    """Write ``synthfilter: warning: <message>`` on stderr, once per process per ``topic`` (the message by default)."""
    topic = message if topic is None else topic
    if topic not in _WARNED:
        _WARNED.add(topic)
        sys.stderr.write(f"synthfilter: warning: {message}\n")
        sys.stderr.flush()


def _when_unlocked(statement: Callable[[], Any], patience_s: float = 30.0) -> Any:
    """Run ``statement``, again after short sleeps while SQLite says the database is locked or busy."""
    deadline = time.monotonic() + patience_s
    pause = 0.01
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def text_key(text: str) -> bytes:
    """The cache key of a text: the SHA-256 digest of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).digest()


#: Keys already computed in the current :func:`remembered_text_keys` block (``None`` outside one).
_KEY_MEMO: dict[str, bytes] | None = None


@contextmanager
def remembered_text_keys() -> Iterator[None]:
    """Within the block, :func:`text_keys` hashes each distinct text once.

    A scoring run looks its texts up in several caches (embeddings, detector
    scores, sketches, the run cache); each would otherwise hash every text
    again (about 0.1 s per 100,000 texts per cache). The memory is released
    when the outermost block ends.
    """
    global _KEY_MEMO
    outermost = _KEY_MEMO is None
    if outermost:
        _KEY_MEMO = {}
    try:
        yield
    finally:
        if outermost:
            _KEY_MEMO = None


def text_keys(texts: Iterable[str]) -> list[bytes]:
    """:func:`text_key` of each text, remembered inside :func:`remembered_text_keys`."""
    memo = _KEY_MEMO
    if memo is None:
        return [text_key(t) for t in texts]
    keys = []
    for text in texts:
        key = memo.get(text)
        if key is None:
            key = memo[text] = text_key(text)
        keys.append(key)
    return keys


def slug(name: str) -> str:
    """A file-name-safe form of an encoder or model id."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


class ArrayStore:
    """Fixed-width numeric rows keyed by bytes, in one SQLite file.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its folder on first use).
    width : int
        Values per row.
    dtype : numpy dtype, default float32
        Type of the stored values.

    Attributes
    ----------
    usable : bool
        ``False`` once the file proved unusable: lookups then find nothing and
        stores do nothing (a warning line says so once).
    """

    def __init__(self, path: str | Path, width: int, dtype: Any = np.float32) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.path = Path(path)
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.usable = True
        self._con: sqlite3.Connection | None = None

    # ------------------------------------------------------------------ connection
    def _disable(self, exc: BaseException) -> None:
        self.usable = False
        self.close()
        root = default_cache_dir()
        if isinstance(exc, OSError) and (root == self.path or root in self.path.parents):
            # The cache folder itself is unusable: say it once for all the caches under it.
            warn_once(f"cache folder {root} is unusable ({type(exc).__name__}: {exc}); continuing without a cache",
                      topic=f"root:{root}")
        else:
            warn_once(f"cache {self.path} is unusable ({type(exc).__name__}: {exc}); continuing without it")

    def _connect(self) -> sqlite3.Connection | None:
        if not self.usable:
            return None
        if self._con is None:
            try:
                if self.path.parent.exists() and not self.path.parent.is_dir():
                    raise NotADirectoryError(f"{self.path.parent} is a file, not a folder")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not os.access(self.path.parent, os.W_OK | os.X_OK):
                    raise PermissionError(f"{self.path.parent} is not writable")
                con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                con.execute("PRAGMA busy_timeout = 60000")
                # Two runs creating the same new file race for the switch to WAL, and SQLite answers
                # "database is locked" there at once, without waiting: try again for a while.
                _when_unlocked(lambda: con.execute("PRAGMA journal_mode = WAL"))
                con.execute("PRAGMA synchronous = NORMAL")
                _when_unlocked(lambda: con.execute(
                    "CREATE TABLE IF NOT EXISTS rows (key BLOB PRIMARY KEY, value BLOB NOT NULL)"))
                self._con = con
            except (sqlite3.Error, OSError) as exc:
                self._disable(exc)
                return None
        return self._con

    def close(self) -> None:
        """Close the connection (a later call reopens it)."""
        if self._con is not None:
            try:
                self._con.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken handle
                pass
            self._con = None

    # ------------------------------------------------------------------ rows
    def lookup(self, keys: Iterable[bytes]) -> dict[bytes, np.ndarray]:
        """Rows stored under ``keys``; missing, wrong-width and non-finite entries are left out.

        Parameters
        ----------
        keys : iterable of bytes

        Returns
        -------
        dict
            key -> row of ``width`` values (read-only views).
        """
        found: dict[bytes, np.ndarray] = {}
        con = self._connect()
        if con is None:
            return found
        unique = list(dict.fromkeys(keys))
        size = self.width * self.dtype.itemsize
        got_keys: list[bytes] = []
        blobs: list[bytes] = []
        try:
            stored = con.execute("SELECT max(rowid) FROM rows").fetchone()[0] or 0  # rows at most
            if stored <= _SCAN_FACTOR * len(unique):
                # Most of the file is wanted (a re-run of a corpus): one pass over the table beats a
                # B-tree descent per key (about 1.3 against 2.8 us a row on 100,000 rows).
                wanted = set(unique)
                for key, blob in con.execute("SELECT key, value FROM rows"):
                    if key in wanted and isinstance(blob, (bytes, memoryview)) and len(blob) == size:
                        got_keys.append(bytes(key))
                        blobs.append(blob)
            else:
                for start in range(0, len(unique), _LOOKUP_BATCH):
                    chunk = unique[start : start + _LOOKUP_BATCH]
                    marks = ",".join("?" * len(chunk))
                    for key, blob in con.execute(f"SELECT key, value FROM rows WHERE key IN ({marks})", chunk):
                        if isinstance(blob, (bytes, memoryview)) and len(blob) == size:
                            got_keys.append(bytes(key))
                            blobs.append(blob)
        except sqlite3.Error as exc:
            self._disable(exc)
            return {}
        if not blobs:
            return found
        # One array for all rows (decoding row by row costs more than the query).
        rows = np.frombuffer(b"".join(blobs), dtype=self.dtype).reshape(len(blobs), self.width)
        ok = np.isfinite(rows).all(axis=1) if rows.dtype.kind == "f" else np.ones(len(blobs), dtype=bool)
        for key, row, good in zip(got_keys, rows, ok.tolist()):
            if good:
                found[key] = row
        return found

    def store(self, keys: Sequence[bytes], values: np.ndarray | Sequence[Sequence[float]]) -> None:
        """Write rows (replacing entries under the same keys) in one transaction.

        Parameters
        ----------
        keys : sequence of bytes
        values : array-like, shape ``(len(keys), width)``
        """
        values = np.asarray(values, dtype=self.dtype).reshape(len(keys), -1)
        if values.shape[1] != self.width:
            raise ValueError(f"rows have {values.shape[1]} values, the store holds {self.width}")
        con = self._connect()
        if con is None or not len(keys):
            return
        rows = [(bytes(k), np.ascontiguousarray(v).tobytes()) for k, v in zip(keys, values)]
        try:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT OR REPLACE INTO rows (key, value) VALUES (?, ?)", rows)
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._disable(exc)

    def __len__(self) -> int:
        con = self._connect()
        if con is None:
            return 0
        try:
            return int(con.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
        except sqlite3.Error as exc:
            self._disable(exc)
            return 0

    def __enter__(self) -> ArrayStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def cached_rows(
    texts: Sequence[str],
    store: ArrayStore,
    compute: Callable[[list[str]], np.ndarray],
    *,
    show_progress: bool = False,
    description: str = "",
    chunk: int = CHUNK,
    found: dict[bytes, np.ndarray] | None = None,
) -> tuple[np.ndarray, int, int]:
    """Rows for ``texts`` from ``store``, computing and committing the missing ones chunk by chunk.

    Each distinct missing text is computed once; after each chunk of
    ``chunk`` texts its rows are committed, so a run stopped part-way keeps
    what it did. One progress bar covers the whole corpus.

    Parameters
    ----------
    texts : sequence of str
    store : ArrayStore
    compute : callable
        ``compute(list_of_texts) -> array (n, store.width)``.
    show_progress : bool, default False
    description : str
        Progress bar label.
    chunk : int, default 2048
    found : dict, optional
        ``store.lookup`` of these texts' keys, made just before (it is not
        made again); updated in place.

    Returns
    -------
    rows : numpy.ndarray, shape ``(len(texts), store.width)``
    hits : int
        How many texts were found in the store.
    misses : int
        How many distinct texts were computed.
    """
    keys = text_keys(texts)
    if found is None:
        found = store.lookup(keys)
    first: dict[bytes, int] = {}
    hits = 0
    for i, key in enumerate(keys):
        if key in found:
            hits += 1
        else:
            first.setdefault(key, i)
    todo = list(first.items())
    if todo:
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), initial=len(texts) - len(todo), desc=description, unit="text")
        try:
            for start in range(0, len(todo), chunk):
                check_interrupted()
                part = todo[start : start + chunk]
                values = np.asarray(compute([texts[i] for _, i in part]), dtype=store.dtype).reshape(len(part), -1)
                if values.shape[1] != store.width:
                    raise ValueError(f"computed rows have {values.shape[1]} values, expected {store.width}")
                part_keys = [k for k, _ in part]
                store.store(part_keys, values)
                found.update(zip(part_keys, values))
                if bar is not None:
                    bar.update(len(part))
        finally:
            if bar is not None:
                bar.close()
    out = np.empty((len(texts), store.width), dtype=store.dtype)
    for i, key in enumerate(keys):
        out[i] = found[key]
    return out, hits, len(todo)


# ---------------------------------------------------------------------------- remembered hashes
def file_sha256(path: str | Path) -> str:
    """Full SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def file_key(*paths: str | Path, kind: str = "sha256") -> bytes:
    """Key of the current state of ``paths``: absolute path, size and mtime (ns) of each, and ``kind``."""
    parts = [kind]
    for path in paths:
        path = Path(path).resolve()
        st = path.stat()
        parts.append(f"{path}\0{st.st_size}\0{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).digest()


def _hash_store() -> ArrayStore:
    return ArrayStore(default_cache_dir() / "hashes.sqlite", width=32, dtype=np.uint8)


def remembered_digest(
    paths: str | Path | Sequence[str | Path],
    compute: Callable[[], str],
    *,
    kind: str = "sha256",
    verify: bool | None = None,
) -> str:
    """A digest of some files, computed once per state of the files and then remembered.

    The key is each file's absolute path, size and modification time (ns):
    editing a file changes it, so the digest is computed again. A change
    that keeps size and mtime (disk corruption, a deliberate ``touch``) is
    only seen with ``verify=True`` (``--verify``), which always recomputes.

    Parameters
    ----------
    paths : path or sequence of paths
        The files the digest depends on.
    compute : callable
        Returns the digest as a hex string of 64 characters (SHA-256).
    kind : str, default "sha256"
        What is hashed, so that two digests of the same files stay apart.
    verify : bool, optional
        Recompute whatever is remembered; defaults to :func:`set_verify`'s setting.

    Returns
    -------
    str
        The 64-hex-character digest.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    verify = _VERIFY if verify is None else verify
    try:
        key = file_key(*paths, kind=kind)
    except OSError:
        return compute()  # the caller's own read reports a missing file
    with _hash_store() as store:
        if not verify:
            row = store.lookup([key]).get(key)
            if row is not None:
                return row.tobytes().hex()
        digest = compute()
        store.store([key], np.frombuffer(bytes.fromhex(digest), dtype=np.uint8)[None, :])
    return digest


# ---------------------------------------------------------------------------- detector results
class CachedDetector:
    """A detector whose uncalibrated scores are cached by (text SHA-256, model id).

    Re-scoring an unchanged corpus then runs the detector on no text, and a
    corpus with a few new records only on those. Scores are identical to the
    detector's own (stored as float64).

    Parameters
    ----------
    scorer : object
        A fitted detector with ``model_id_`` and
        ``decision_function(texts, show_progress=False)`` (an
        :class:`~synthfilter.origin.OriginScorer`).
    cache_dir : str or Path, optional
        Folder of the cache files; :func:`default_cache_dir` ``/ "scores"`` by default.

    Attributes
    ----------
    hits, misses : int
        Texts found in the cache and distinct texts scored, in the last call.
    path : Path or None
        The cache file (one per model id); ``None`` for a detector without
        ``model_id_``, whose scores are then computed every time.
    """

    def __init__(self, scorer: Any, cache_dir: str | Path | None = None) -> None:
        self.scorer = scorer
        self.model_id = getattr(scorer, "model_id_", None)
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "scores"
        self.path = None if self.model_id is None else folder / f"{slug(self.model_id)}.sqlite"
        self.hits = 0
        self.misses = 0
        self._lookup: tuple[list[bytes], dict[bytes, np.ndarray]] | None = None

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts not in the cache, in order of first appearance.

        The lookup is kept for the next :meth:`decision_function` call on the
        same texts, which then does not read the cache again.
        """
        texts = list(texts)
        if self.path is None:
            return list(dict.fromkeys(texts))
        keys = text_keys(texts)
        with ArrayStore(self.path, width=1, dtype=np.float64) as store:
            found = store.lookup(keys)
        self._lookup = (keys, found)
        first: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in found:
                first.setdefault(key, text)
        return list(first.values())

    def decision_function(self, texts: Sequence[str], show_progress: bool = False,
                          embeddings: np.ndarray | None = None, job: Any = None) -> np.ndarray:
        """The detector's uncalibrated scores, computing only the texts not in the cache.

        Parameters
        ----------
        texts : sequence of str
        show_progress : bool, default False
            One progress bar over the texts to score.
        embeddings : numpy.ndarray, optional
            The texts' embeddings under the detector's own encoder, row for
            row; the texts not in the cache are scored with their rows
            instead of being encoded again.
        job : DetectorJob, optional
            Where the scores of the texts to score come from
            (:class:`~synthfilter.background.DetectorJob`, started on the texts
            :meth:`missing` named); ``embeddings`` are then not used.

        Returns
        -------
        numpy.ndarray
            float64 scores, one per text.
        """
        texts = list(texts)
        if embeddings is not None and len(embeddings) != len(texts):
            raise ValueError(f"{len(embeddings)} embeddings for {len(texts)} texts")
        if self.path is None:  # a detector without an id cannot be cached
            self.hits, self.misses = 0, len(set(texts))
            if job is not None:
                return job.scores(texts)
            kwargs = {} if embeddings is None else {"embeddings": embeddings}
            return np.asarray(self.scorer.decision_function(texts, show_progress=show_progress, **kwargs),
                              dtype=np.float64)
        row_of: dict[str, int] = {}
        if embeddings is not None:
            for i, text in enumerate(texts):
                row_of.setdefault(text, i)

        def compute(part: list[str]) -> np.ndarray:
            if job is not None:
                return job.scores(part)[:, None]
            kwargs = {} if embeddings is None else {"embeddings": embeddings[[row_of[t] for t in part]]}
            return np.asarray(self.scorer.decision_function(part, **kwargs), dtype=np.float64)[:, None]

        found = None
        if self._lookup is not None and self._lookup[0] == text_keys(texts):
            found = self._lookup[1]
        self._lookup = None
        with ArrayStore(self.path, width=1, dtype=np.float64) as store:
            rows, self.hits, self.misses = cached_rows(
                texts, store, compute, show_progress=show_progress, description="detector", found=found,
            )
        return rows[:, 0].copy()
