"""Re-use of the tail stage's k-NN graph across runs, keyed by content.

A *state* is what one run of :func:`synthfilter.stages.knn.knn_tails` found
for one corpus under one set of parameters: the k-NN lists of every record,
the score columns, the manifest info, and (when the corpus is its own
reference) the FAISS index the lists came from. States live in
``default_cache_dir() / "knn"``, one ``.npz`` file each (no pickle: the index
is stored as the bytes ``faiss.serialize_index`` writes, the same format as
``faiss.write_index``), named ``<params key>-<rows key>.npz``:

* the *params key* digests everything the k-NN depends on besides the rows:
  ``k``, ``dup_threshold``, the index kind, ``nlist``, ``nprobe``, the seed,
  the recall target and sample, the HNSW and IVF constants, the FAISS
  version, the embedding width, the reference's digest and
  :data:`FORMAT_VERSION`;
* the *rows key* digests the ordered list of row digests (BLAKE2b, 16 bytes,
  of each embedding row's float32 bytes, :func:`row_digests`).

A file is written to a temporary name beside it and renamed into place
(:func:`synthfilter.atomic.atomic_path`), so a reader sees a whole state or
none, a run killed at any point leaves at most a temporary file (removed by
a later write), and two runs writing at once each rename a whole file. The
folder keeps the :data:`KEEP_STATES` most recently used states within
:data:`KEEP_BYTES` (the newest one always). A state that cannot be read is
reported once on stderr, removed, and the run computes afresh; a cache
folder that cannot be used is reported once, as the other caches do
(:mod:`synthfilter.cache`), and the run goes on without it.

:func:`extend_graph` is the incremental step: given the state of a corpus
and a new corpus holding most of its rows (in any order) plus new ones, it
merges the new rows into the stored lists and repairs the lists that named
a removed row (see its docstring for what is exact and what is
approximate). An index cannot drop vectors cheaply (HNSW cannot at all), so
the vectors of removed records stay in it, filtered out of every search,
until they are more than :data:`MAX_REMOVED_SHARE` of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthfilter.atomic import atomic_path
from synthfilter.cache import default_cache_dir, warn_once
from synthfilter.errors import OutputError
from synthfilter.knn_index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    HNSW_THRESHOLD,
    IVF_THRESHOLD,
    START_EF_SEARCH,
    START_NPROBE,
    TRAIN_PER_CELL,
    add_on_one_thread,
    exact_neighbours,
    exact_top_sims,
    knn_distance,
    merge_neighbours,
    rarity_from_distances,
    recall_at_k,
    search_index,
)

__all__ = [
    "FORMAT_VERSION",
    "KEEP_BYTES",
    "KEEP_STATES",
    "MAX_NEW_SHARE",
    "MAX_REMOVED_SHARE",
    "KnnCache",
    "KnnState",
    "Extension",
    "clusters_from_graph",
    "extend_graph",
    "match_rows",
    "params_key",
    "row_digests",
    "rows_key",
    "scores_from_graph",
]

#: Bumped whenever what a state holds, or how it is computed, changes (2: indexes may hold removed rows).
FORMAT_VERSION = 2
#: States kept in the folder (the most recently used).
KEEP_STATES = 4
#: Bytes of states kept in the folder (the most recently used one is always kept).
KEEP_BYTES = 2 << 30
#: Above this share of new rows a cold build is done instead of an incremental one.
MAX_NEW_SHARE = 0.30
#: Above this share of an index's vectors belonging to removed records, a cold build is done instead.
MAX_REMOVED_SHARE = 0.30

_DIGEST_BYTES = 16


# ---------------------------------------------------------------------------- keys
def row_digests(x: np.ndarray) -> np.ndarray:
    """BLAKE2b digests (16 bytes) of each row's float32 bytes, as an ``(n, 2)`` uint64 array.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, dim)
        Embeddings (converted to C-contiguous float32 first).

    Returns
    -------
    numpy.ndarray of uint64, shape (n, 2)
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    width = x.shape[1] * x.itemsize
    view = memoryview(x.reshape(-1)).cast("B")
    blake = hashlib.blake2b
    joined = b"".join([blake(view[i * width : (i + 1) * width], digest_size=_DIGEST_BYTES).digest()
                       for i in range(x.shape[0])])
    return np.frombuffer(joined, dtype=np.uint64).reshape(x.shape[0], 2).copy()


def params_key(params: dict[str, Any], dim: int, reference: np.ndarray | None = None) -> str:
    """Hex digest of what a k-NN state depends on besides the corpus rows.

    Parameters
    ----------
    params : dict
        The k-NN parameters (JSON-serialisable).
    dim : int
        Embedding width.
    reference : numpy.ndarray, optional
        A gold reference's embeddings (their float32 bytes and shape are digested).

    Returns
    -------
    str
        32 hex characters.
    """
    digest = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    constants = {
        "format": FORMAT_VERSION, "faiss": faiss.__version__, "dim": int(dim), "ivf_threshold": IVF_THRESHOLD,
        "hnsw_threshold": HNSW_THRESHOLD,
        "hnsw_m": HNSW_M, "hnsw_ef_construction": HNSW_EF_CONSTRUCTION, "start_ef_search": START_EF_SEARCH,
        "start_nprobe": START_NPROBE, "train_per_cell": TRAIN_PER_CELL,
    }
    digest.update(json.dumps({"params": params, "constants": constants}, sort_keys=True, default=str).encode())
    if reference is not None:
        ref = np.ascontiguousarray(reference, dtype=np.float32)
        digest.update(repr(ref.shape).encode())
        digest.update(memoryview(ref.reshape(-1)).cast("B"))
    else:
        digest.update(b"corpus")
    return digest.hexdigest()


def rows_key(digests: np.ndarray) -> str:
    """Hex digest of an ordered list of row digests (32 hex characters)."""
    return hashlib.blake2b(np.ascontiguousarray(digests, dtype=np.uint64).tobytes(),
                           digest_size=_DIGEST_BYTES).hexdigest()


def match_rows(old: np.ndarray, new: np.ndarray, *, allow_missing: bool = False) -> np.ndarray | None:
    """Where each old row is among the new rows, matching equal digests.

    The j-th old row with a digest is matched with the j-th new row with the
    same digest (rows with equal digests have equal embeddings, so which one
    is which does not change a neighbour's similarity).

    Parameters
    ----------
    old, new : numpy.ndarray of uint64, shape (n_old, 2) and (n_new, 2)
        Row digests (:func:`row_digests`).
    allow_missing : bool, default False
        Give -1 for an old row that is not among the new ones, instead of ``None``.

    Returns
    -------
    numpy.ndarray of int64, shape (n_old,), or None
        The new row of each old row; ``None`` when some old row is not among
        the new ones (a record was removed) and ``allow_missing`` is off.
    """
    n_old = old.shape[0]
    both = np.concatenate([old, new]).astype(np.uint64, copy=False)
    source = np.r_[np.zeros(n_old, np.int8), np.ones(new.shape[0], np.int8)]
    order = np.lexsort((source, both[:, 1], both[:, 0]))  # stable: old before new, then by position
    ordered = both[order]
    starts = np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)] if order.size else np.zeros(0, bool)
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    is_old = order < n_old
    olds = np.bincount(group, weights=is_old, minlength=first.size).astype(np.int64)
    sizes = np.diff(np.r_[first, order.size])
    if not allow_missing and np.any(sizes - olds < olds):
        return None
    at = np.flatnonzero(is_old)
    rank = at - first[group[at]]  # j: the j-th old row of its digest
    matched = rank < (sizes - olds)[group[at]]  # as many as there are new rows of that digest
    where = np.full(n_old, -1, dtype=np.int64)
    where[order[at[matched]]] = order[first[group[at[matched]]] + olds[group[at[matched]]] + rank[matched]] - n_old
    return where


# ---------------------------------------------------------------------------- scores from a graph
def clusters_from_graph(sims: np.ndarray, ids: np.ndarray, threshold: float) -> np.ndarray:
    """Embedding near-duplicate clusters from self-excluded k-NN lists.

    As :meth:`synthfilter.tails.TailScorer.duplicate_clusters` without texts:
    connected components of the edges with similarity at least
    ``threshold``, numbered in order of each cluster's first row.
    """
    n = sims.shape[0]
    mask = (sims >= threshold) & (ids >= 0)
    rows = np.repeat(np.arange(n), mask.sum(axis=1))
    cols = ids[mask]
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_pos, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_pos))
    return order[inverse.ravel()].astype(np.int64)


def scores_from_graph(sims: np.ndarray, ids: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """``knn_distance``, ``rarity`` (against the corpus) and clusters from the corpus's k-NN lists.

    The same arithmetic as :class:`~synthfilter.tails.TailScorer` fitted on,
    and scoring, the corpus itself.

    Returns
    -------
    knn_distance, rarity : numpy.ndarray of float64
    clusters : numpy.ndarray of int64
    """
    distance = knn_distance(sims)
    rarity = rarity_from_distances(np.sort(knn_distance(sims, clip=False)), distance)
    return (distance.astype(np.float64), rarity.astype(np.float64),
            clusters_from_graph(sims, ids, threshold))


# ---------------------------------------------------------------------------- states
@dataclass
class KnnState:
    """One run's k-NN result for one corpus, as stored.

    Attributes
    ----------
    knn_distance, rarity, clusters : numpy.ndarray
        The score columns, in row order.
    info : dict
        The manifest info of the run that computed them.
    id_digests : numpy.ndarray of uint64, shape (m, 2) or (0, 2)
        Digests of the indexed vectors in index order (empty for a state kept
        for exact re-use only); ``m >= n``: ids no row points to belong to
        removed records.
    sims, ids : numpy.ndarray, shape (m, k)
        Each indexed row's self-excluded neighbours (ids in index order;
        meaningless for removed ids).
    row_ids : numpy.ndarray of int64, shape (n,)
        The index id of each corpus row.
    index_bytes : numpy.ndarray of uint8 or None
        The serialised FAISS index holding the rows (in id order).
    """

    knn_distance: np.ndarray
    rarity: np.ndarray
    clusters: np.ndarray
    info: dict[str, Any]
    id_digests: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint64))
    sims: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    ids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    row_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    index_bytes: np.ndarray | None = None

    @property
    def extendable(self) -> bool:
        """Whether it holds the lists and index an incremental run needs."""
        return self.index_bytes is not None and self.id_digests.shape[0] > 0

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays written to the state file."""
        out = {
            "knn_distance": self.knn_distance, "rarity": self.rarity, "clusters": self.clusters,
            "info": np.frombuffer(json.dumps(self.info).encode("utf-8"), dtype=np.uint8),
        }
        if self.extendable:
            out.update(id_digests=self.id_digests, sims=self.sims, ids=self.ids, row_ids=self.row_ids,
                       index=self.index_bytes)
        return out


class StateError(ValueError):
    """A state file that is not what this version writes."""


def _check_state(state: KnnState) -> KnnState:
    n = state.knn_distance.shape[0]
    if state.rarity.shape != (n,) or state.clusters.shape != (n,) or state.knn_distance.ndim != 1:
        raise StateError("score columns of different lengths")
    if state.extendable:
        m = state.id_digests.shape[0]
        if (state.id_digests.ndim != 2 or state.id_digests.shape[1] != 2 or state.sims.shape[0] != m
                or state.ids.shape != state.sims.shape or state.row_ids.shape != (n,) or m < n):
            raise StateError("k-NN lists of the wrong shape")
        if n and (state.row_ids.min() < 0 or state.row_ids.max() >= m or np.unique(state.row_ids).size != n):
            raise StateError("rows point outside the index, or two rows at one vector")
    return state


class KnnCache:
    """The folder of k-NN states.

    Parameters
    ----------
    folder : str or Path, optional
        Where the state files are; ``default_cache_dir() / "knn"`` by default.
    keep : int, default :data:`KEEP_STATES`
        States kept (the most recently used).
    keep_bytes : int, default :data:`KEEP_BYTES`
        Bytes of states kept (the most recently used one always).

    Attributes
    ----------
    usable : bool
        ``False`` once the folder proved unusable (a warning line said so).
    """

    def __init__(self, folder: str | Path | None = None, *, keep: int = KEEP_STATES,
                 keep_bytes: int = KEEP_BYTES) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir() / "knn"
        self.keep, self.keep_bytes = int(keep), int(keep_bytes)
        self.usable = True

    # ------------------------------------------------------------------ folder
    def _disable(self, exc: BaseException) -> None:
        self.usable = False
        root = default_cache_dir()
        if root == self.folder or root in self.folder.parents:
            warn_once(f"cache folder {root} is unusable ({type(exc).__name__}: {exc}); continuing without a cache",
                      topic=f"root:{root}")
        else:
            warn_once(f"cache {self.folder} is unusable ({type(exc).__name__}: {exc}); continuing without it")

    def _ready(self) -> bool:
        if not self.usable:
            return False
        try:
            if self.folder.exists() and not self.folder.is_dir():
                raise NotADirectoryError(f"{self.folder} is a file, not a folder")
            self.folder.mkdir(parents=True, exist_ok=True)
            if not os.access(self.folder, os.W_OK | os.X_OK):
                raise PermissionError(f"{self.folder} is not writable")
        except OSError as exc:
            self._disable(exc)
            return False
        return True

    def path(self, pkey: str, rkey: str) -> Path:
        """The state file of a params key and rows key."""
        return self.folder / f"{pkey}-{rkey}.npz"

    def _states(self, pkey: str | None = None) -> list[Path]:
        """State files (of ``pkey`` when given), most recently used first."""
        pattern = "*.npz" if pkey is None else f"{pkey}-*.npz"
        found = []
        for path in self.folder.glob(pattern):
            with contextlib.suppress(OSError):
                found.append((path.stat().st_mtime_ns, path))
        return [p for _, p in sorted(found, key=lambda t: (-t[0], t[1].name))]

    # ------------------------------------------------------------------ read
    def _broken(self, path: Path, exc: BaseException) -> None:
        warn_once(f"k-NN cache state {path} is unreadable ({type(exc).__name__}: {exc}); computing afresh")
        with contextlib.suppress(OSError):
            path.unlink()

    def read(self, path: Path, *, lists: bool = True) -> KnnState | None:
        """The state in ``path`` (``None``, after one warning, when it is unreadable).

        Parameters
        ----------
        path : Path
            A state file.
        lists : bool, default True
            Also read the k-NN lists and the index (else only the score columns and info).
        """
        try:
            with np.load(path, allow_pickle=False) as npz:
                state = KnnState(
                    knn_distance=np.asarray(npz["knn_distance"], dtype=np.float64),
                    rarity=np.asarray(npz["rarity"], dtype=np.float64),
                    clusters=np.asarray(npz["clusters"], dtype=np.int64),
                    info=json.loads(npz["info"].tobytes().decode("utf-8")),
                )
                if lists and "index" in npz.files:
                    state.id_digests = np.asarray(npz["id_digests"], dtype=np.uint64)
                    state.sims = np.asarray(npz["sims"], dtype=np.float32)
                    state.ids = np.asarray(npz["ids"], dtype=np.int64)
                    state.row_ids = np.asarray(npz["row_ids"], dtype=np.int64)
                    state.index_bytes = np.asarray(npz["index"], dtype=np.uint8)
            if not isinstance(state.info, dict):
                raise StateError("info is not a mapping")
            return _check_state(state)
        except FileNotFoundError:
            return None  # pruned by another run meanwhile
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            self._broken(path, exc)
            return None

    def exact(self, pkey: str, rkey: str) -> KnnState | None:
        """The score columns and info stored for exactly these rows, if any (marks the state as used)."""
        if not self._ready():
            return None
        path = self.path(pkey, rkey)
        if not path.exists():
            return None
        state = self.read(path, lists=False)
        if state is not None:
            self._touch(path)
        return state

    def candidates(self, pkey: str, digests: np.ndarray) -> tuple[KnnState, np.ndarray] | None:
        """The most recently used extendable state whose index vectors are mostly among ``digests``.

        A state qualifies when at most :data:`MAX_REMOVED_SHARE` of its
        index's vectors are not among ``digests`` (removed records, now or
        before).

        Returns
        -------
        (KnnState, numpy.ndarray) or None
            The state and, for each of its index ids, the row of ``digests``
            holding it, -1 for none (:func:`match_rows`).
        """
        if not self._ready():
            return None
        for path in self._states(pkey):
            stored = self._digests(path)
            if stored is None or stored.shape[0] == 0:
                continue
            where = match_rows(stored, digests, allow_missing=True)
            if np.count_nonzero(where < 0) > MAX_REMOVED_SHARE * where.size:
                continue
            state = self.read(path)
            if state is not None and state.extendable and np.array_equal(state.id_digests, stored):
                self._touch(path)
                return state, where
        return None

    def _digests(self, path: Path) -> np.ndarray | None:
        """The index-ordered row digests of a state (empty when it has none), reading nothing else."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                if "id_digests" not in npz.files:
                    return np.zeros((0, 2), np.uint64)
                digests = np.asarray(npz["id_digests"], dtype=np.uint64)
            if digests.ndim != 2 or digests.shape[1] != 2:
                raise StateError("row digests of the wrong shape")
            return digests
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            self._broken(path, exc)
            return None

    def index(self, state: KnnState, path_hint: str = "") -> faiss.Index | None:
        """The state's FAISS index (``None``, after one warning, when it cannot be read)."""
        try:
            index = faiss.deserialize_index(state.index_bytes)
        except RuntimeError as exc:
            warn_once(f"k-NN cache index {path_hint} is unreadable ({exc}); computing afresh")
            return None
        if index.ntotal != state.id_digests.shape[0]:
            warn_once(f"k-NN cache index {path_hint} holds {index.ntotal} vectors, not "
                      f"{state.id_digests.shape[0]}; computing afresh")
            return None
        return index

    # ------------------------------------------------------------------ write
    def write(self, pkey: str, rkey: str, state: KnnState) -> Path | None:
        """Store ``state`` under its keys (atomically), then prune the folder; ``None`` when not stored."""
        if not self._ready():
            return None
        path = self.path(pkey, rkey)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **state.arrays())
        except (OSError, OutputError) as exc:
            self._disable(exc)
            return None
        self.prune(keep_path=path)
        return path

    def prune(self, keep_path: Path | None = None) -> list[Path]:
        """Remove all but the :attr:`keep` most recently used states within :attr:`keep_bytes`."""
        removed, total = [], 0
        for rank, path in enumerate(self._states()):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            total += size
            if path != keep_path and rank > 0 and (rank >= self.keep or total > self.keep_bytes):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
        return removed

    @staticmethod
    def _touch(path: Path) -> None:
        with contextlib.suppress(OSError):
            now = time.time_ns()
            os.utime(path, ns=(now, now))


# ---------------------------------------------------------------------------- incremental
@dataclass
class Extension:
    """What :func:`extend_graph` computed for the new corpus.

    Attributes
    ----------
    sims, ids : numpy.ndarray, shape (n, k)
        Each row's self-excluded neighbours (ids are rows of the new corpus).
    index : faiss.Index
        The stored index with the new rows added (ids: old ids, then the new rows in order).
    id_of_row : numpy.ndarray of int64
        Each row's id in ``index``.
    new_rows : numpy.ndarray of int64
        The rows that were not in the state.
    recall, recall_new : float
        Recall@k of the merged lists against exact search on a seeded sample
        of all rows and of the new rows.
    recall_sample, recall_sample_new : int
        Sizes of those samples.
    repaired : int
        Old rows searched again because their list named a removed row.
    removed : int
        Index vectors without a row in the new corpus (filtered out of searches).
    """

    sims: np.ndarray
    ids: np.ndarray
    index: faiss.Index
    id_of_row: np.ndarray
    new_rows: np.ndarray
    recall: float
    recall_new: float
    recall_sample: int
    recall_sample_new: int
    repaired: int = 0
    removed: int = 0


def _single_thread_add(index: faiss.Index, x: np.ndarray, ids: np.ndarray) -> None:
    """Add rows as :func:`~synthfilter.knn_index.build_hnsw` builds (one thread: a deterministic graph); IVF takes ids."""
    if isinstance(index, faiss.IndexIVF):
        index.add_with_ids(x, ids)
        return
    add_on_one_thread(index, x)


def _candidates_into(old_sims: np.ndarray, old_ids: np.ndarray, rows: np.ndarray, cand_rows: np.ndarray,
                     cand_sims: np.ndarray, k: int) -> None:
    """Merge candidate ``(row, neighbour, sim)`` triples into the lists of ``rows``, in place.

    ``rows[i]`` gains neighbour ``cand_rows[i]`` at similarity ``cand_sims[i]``
    when it beats that row's k-th; each row's list stays sorted, most similar first.
    """
    better = cand_sims > old_sims[rows, -1]
    rows, cand_rows, cand_sims = rows[better], cand_rows[better], cand_sims[better]
    if rows.size == 0:
        return
    order = np.lexsort((-cand_sims, rows))
    rows, cand_rows, cand_sims = rows[order], cand_rows[order], cand_sims[order]
    affected, first, counts = np.unique(rows, return_index=True, return_counts=True)
    width = min(int(counts.max()), k)
    pad_sims = np.full((affected.size, width), -np.inf, dtype=np.float32)
    pad_ids = np.full((affected.size, width), -1, dtype=np.int64)
    rank = np.arange(rows.size) - np.repeat(first, counts)
    keep = rank < width
    slot = np.repeat(np.arange(affected.size), counts)[keep]
    pad_sims[slot, rank[keep]] = cand_sims[keep]
    pad_ids[slot, rank[keep]] = cand_rows[keep]
    sims, ids = merge_neighbours([(old_sims[affected], old_ids[affected]), (pad_sims, pad_ids)], k)
    old_sims[affected], old_ids[affected] = sims, ids


def _recalls(x: np.ndarray, sims: np.ndarray, samples: list[np.ndarray], k: int) -> list[float]:
    """Recall@k of the lists of each sample of rows against exact self-excluded search over ``x`` (one search).

    A list's ``k``-th similarity is a real row's, so it bounds the exact ``k``-th from below
    (:func:`~synthfilter.knn_index.exact_top_sims`).
    """
    rows = np.concatenate(samples)
    if rows.size == 0:
        return [1.0 for _ in samples]
    kk = min(k, x.shape[0] - 1)
    exact = exact_top_sims(x[rows], x, sims[rows, kk - 1] if kk > 0 else np.full(rows.size, -np.inf), kk,
                           query_ids=rows)
    out, start = [], 0
    for sample in samples:
        part = slice(start, start + sample.size)
        out.append(recall_at_k(sims[sample, : exact.shape[1]], exact[part]) if sample.size else 1.0)
        start += sample.size
    return out


def extend_graph(x: np.ndarray, state: KnnState, index: faiss.Index, where: np.ndarray, k: int, *,
                 recall_sample: int = 500, seed: int = 0) -> Extension:
    """The k-NN lists of a corpus from a state holding some of its rows.

    1. The old rows keep their stored lists (renumbered to the new rows),
       unless a list names a removed row: those rows are searched again in
       the stored index, with the removed rows filtered out. Removing rows
       only moves others up, so a list without a removed row is still the
       top-k of the old rows. A record removed in an earlier run and now
       back is a new row.
    2. Each new row is searched among the old rows in the stored index (as
       the cold build searches: exact for a flat index, at the stored
       ``efSearch`` or ``nprobe`` otherwise; removed rows filtered out), and
       exactly among the other new rows; its list is the merged top-k.
    3. Every old row is compared exactly with every new row (one brute-force
       ``faiss.knn`` of the old rows against the new ones, ``n_old x m``
       inner products), and its list takes in the new rows closer than its
       k-th neighbour. Reverse-neighbour candidates (old rows found near a
       new row) were measured first and rejected: on 100,000 real static
       embeddings they held 16 % (27 % at depth 40, 69 % with second-hand
       candidates) of the new rows that enter an old row's list.
    4. The new rows are added to the index (on one thread, so the graph is
       deterministic) for the next run; removed rows stay in it, filtered.

    So with an exact index the result is the exact k-NN graph (as the cold
    build, up to ties and float32 rounding); with HNSW or IVF every list is
    as good as the stored one or the index's search, and the recall
    reported measures it.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, dim)
        The new corpus's normalised embeddings.
    state : KnnState
        An extendable state.
    index : faiss.Index
        The state's index (modified: the new rows are added).
    where : numpy.ndarray of int64
        The row of ``x`` holding each of the state's index ids, -1 for none
        (:func:`match_rows`).
    k : int
        Neighbours per row.
    recall_sample : int, default 500
        Rows (and, separately, new rows) whose lists are checked against exact search.
    seed : int, default 0
        Seed of those samples.

    Returns
    -------
    Extension
    """
    n, n_ids = x.shape[0], where.shape[0]
    # A record removed before and now back is a new row (a new vector in the index): the other lists
    # were kept without it, so it must be offered to them as the new rows are.
    was_live = np.zeros(n_ids, dtype=bool)
    was_live[state.row_ids] = True
    where = np.where(was_live, where, -1)
    live = where >= 0
    live_ids = np.flatnonzero(live)
    gone = np.flatnonzero(~live)  # index ids without a row: filtered out of every search
    old_rows = where[live_ids]
    is_old = np.zeros(n, dtype=bool)
    is_old[old_rows] = True
    new_rows = np.flatnonzero(~is_old)
    id_of_row = np.empty(n, dtype=np.int64)
    id_of_row[old_rows] = live_ids
    id_of_row[new_rows] = n_ids + np.arange(new_rows.size)
    sims = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    stored = state.ids[live_ids]
    sims[old_rows] = state.sims[live_ids]
    ids[old_rows] = np.where(stored >= 0, where[np.maximum(stored, 0)], -1)
    broken = np.any((stored >= 0) & ~live[np.maximum(stored, 0)], axis=1)
    repaired = int(np.count_nonzero(broken))
    if repaired:
        queries = old_rows[broken]
        if isinstance(index, faiss.IndexFlat):
            # Exact index: one BLAS search among the kept rows (FAISS's filtered flat search is far slower).
            s_re, r_re = exact_neighbours(x[queries], x[old_rows], k, query_ids=queries, vector_ids=old_rows)
        else:
            s_re, i_re = search_index(index, x[queries], k, query_ids=live_ids[broken], skip_ids=gone)
            r_re = np.where(i_re >= 0, where[np.maximum(i_re, 0)], -1)
        filled = np.full((repaired, k), -np.inf, dtype=np.float32), np.full((repaired, k), -1, dtype=np.int64)
        filled[0][:, :s_re.shape[1]], filled[1][:, :r_re.shape[1]] = s_re, r_re
        sims[queries], ids[queries] = filled
    if new_rows.size:
        xa = np.ascontiguousarray(x[new_rows])
        if gone.size and isinstance(index, faiss.IndexFlat):
            s_ao, i_ao = exact_neighbours(xa, x[old_rows], k, vector_ids=old_rows)
        else:
            s_ao, i_ao = search_index(index, xa, k, skip_ids=gone)
            i_ao = np.where(i_ao >= 0, where[np.maximum(i_ao, 0)], -1)
        local = np.arange(new_rows.size, dtype=np.int64)
        s_aa, i_aa = exact_neighbours(xa, xa, k, query_ids=local) if new_rows.size > 1 else (
            np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64))
        i_aa = np.where(i_aa >= 0, new_rows[np.maximum(i_aa, 0)], -1)
        sims[new_rows], ids[new_rows] = merge_neighbours([(s_ao[:, :k], i_ao[:, :k]), (s_aa, i_aa)], k)
        s_oa, i_oa = exact_neighbours(x[old_rows], xa, k)
        found = i_oa.ravel() >= 0
        _candidates_into(sims, ids, np.repeat(old_rows, s_oa.shape[1])[found], new_rows[i_oa.ravel()[found]],
                         s_oa.ravel()[found], k)
        # The graph grows on its own thread (one core, deterministic) while the recall is measured.
        adding = ThreadPoolExecutor(1, thread_name_prefix="synthfilter-knn-add")
        added = adding.submit(_single_thread_add, index, xa, n_ids + local)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(recall_sample, n), replace=False))
    sample_new = np.sort(rng.choice(new_rows, size=min(recall_sample, new_rows.size), replace=False))
    try:
        recall, recall_new = _recalls(x, sims, [sample, sample_new], k)
    finally:
        if new_rows.size:
            adding.shutdown(wait=True)
    if new_rows.size:
        added.result()  # raises what the addition raised
    return Extension(sims=sims, ids=ids, index=index, id_of_row=id_of_row, new_rows=new_rows,
                     recall=recall, recall_new=recall_new, recall_sample=int(sample.size),
                     recall_sample_new=int(sample_new.size), repaired=repaired, removed=int(gone.size))
