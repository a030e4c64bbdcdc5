"""The Ray engine: record stages on a Ray cluster with Ray Data.

Shards are read and validated on the workers (one read task per shard); the
record stages run in ``map_batches`` over an actor pool whose actors load the
models once (from the installed package, never downloaded) and take a
fraction of a CPU each, so a pool as large as the cluster's CPU count leaves
room for the read tasks and never deadlocks. The order of records is kept
(shard by shard, row by row). Only the stages' one-dimensional columns
(scores, flags) and the ids come back to the driver; the texts and the wide
columns (embeddings, MinHash band keys) stay in the cluster's object store.
Global stages work on them there through the record set's primitives
(:meth:`RayRecordSet.map_shards`, :meth:`RayRecordSet.map_shard_pairs`,
:meth:`RayRecordSet.map_kept`, :meth:`RayRecordSet.group_by_key`, and the
pair checks), which run as Ray tasks over contiguous groups of the dataset's
blocks. Actors and tasks are retried when a worker dies, so a lost worker
costs time, not a different answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from synthfilter.engine.base import Columns, PairCheck, RecordStage
from synthfilter.errors import SynthfilterError
from synthfilter.shards import ShardSource, check_unique_ids, read_shard, renumber_content_ids

#: Records per batch handed to a stage actor.
DEFAULT_BATCH_ROWS = 256
#: CPUs each stage actor asks for.
ACTOR_CPUS = 0.5
#: Times a dead actor is restarted and its batch retried.
MAX_RETRIES = 3
_RESERVED = ("shard", "row", "_content_ids")


def _unwrap(exc: BaseException) -> BaseException | None:
    """The user error (a SynthfilterError) inside a Ray exception, if there is one."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, SynthfilterError) and type(err).__module__ == "synthfilter.errors":
            return err
        todo.extend([getattr(err, "cause", None), err.__cause__, err.__context__])
    # Ray Data passes a worker's exception on as text (its traceback) only.
    found = _USER_ERROR.findall(str(exc))
    if found:
        from synthfilter import errors

        name, message = found[-1]
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, SynthfilterError):
            err = cls.__new__(cls)
            Exception.__init__(err, message.strip())
            return err
    return None


_USER_ERROR = re.compile(r"synthfilter\.errors\.(\w+): ([^\n]+)")


def _read_shards(batch: pa.Table, *, text_column: str, id_column: str | None, max_text_chars: int,
                 carry: Sequence[str]) -> pa.Table:
    """Read and validate the shards named in ``batch``; add ``shard`` and ``row``."""
    out = []
    for shard, path in zip(batch.column("shard").to_pylist(), batch.column("path").to_pylist()):
        frame, content = read_shard(path, text_column=text_column, id_column=id_column,
                                    max_text_chars=max_text_chars)
        _check_carry(frame, carry, path)
        out.append(frame.select("id", "text", *[c for c in carry if c != "text"]).with_columns(
            shard=pl.lit(shard, dtype=pl.Int64), row=pl.int_range(frame.height, dtype=pl.Int64),
            _content_ids=pl.lit(content)).to_arrow())
    return pa.concat_tables(out)


def _check_carry(frame: pl.DataFrame, carry: Sequence[str], source: str) -> None:
    from synthfilter.errors import ConfigError

    missing = [c for c in carry if c not in frame.columns]
    if missing:
        raise ConfigError(f"{source}: cannot keep missing column(s) {missing}; columns: {', '.join(frame.columns)}")


class _StageRunner:
    """Actor body: the record stages, set up once, applied to each batch."""

    def __init__(self, stages: Sequence[RecordStage]) -> None:
        self.stages = list(stages)
        for stage in self.stages:
            stage.setup()

    def __call__(self, batch: Columns) -> Columns:
        out = dict(batch)
        for stage in self.stages:
            out.update(stage.process(out))
        return out


def _pick(batch: Columns, *, offsets: np.ndarray, wanted: np.ndarray) -> Columns:
    """Rows of ``batch`` whose corpus position is in ``wanted`` (sorted): position and text."""
    pos = offsets[batch["shard"].astype(np.int64)] + batch["row"].astype(np.int64)
    keep = np.isin(pos, wanted)
    return {"pos": pos[keep], "text": np.asarray(batch["text"], dtype=object)[keep]}


def _check_chunk(rows: np.ndarray, cols: np.ndarray, check: PairCheck, *blocks: pa.Table) -> np.ndarray:
    texts: dict[int, str] = {}
    for block in blocks:
        texts.update(zip(block.column("pos").to_pylist(), block.column("text").to_pylist()))
    return np.asarray(check([texts[int(i)] for i in rows], [texts[int(j)] for j in cols]), dtype=bool)


def _assemble(blocks: Sequence[dict], offsets: np.ndarray, columns: Sequence[str]) -> Columns:
    """One shard's rows from its blocks (numpy dicts, in corpus order), with their corpus positions."""
    part: Columns = {}
    for c in columns:
        arrays = [np.asarray(b[c]) for b in blocks]
        part[c] = np.concatenate(arrays) if arrays else np.zeros(0)
    shard = np.concatenate([np.asarray(b["shard"], dtype=np.int64) for b in blocks]) if blocks else np.zeros(0, np.int64)
    row = np.concatenate([np.asarray(b["row"], dtype=np.int64) for b in blocks]) if blocks else np.zeros(0, np.int64)
    part["pos"] = offsets[shard] + row
    return part


def _shard_task(fn: Callable[[Columns], Any], offsets: np.ndarray, columns: Sequence[str], *blocks: dict) -> Any:
    """Ray task body of :meth:`RayRecordSet.map_shards`."""
    return fn(_assemble(blocks, offsets, columns))


def _pair_task(fn: Callable[[Columns, Any], Any], offsets: np.ndarray, columns: Sequence[str], value: Any,
               *blocks: dict) -> Any:
    """Ray task body of :meth:`RayRecordSet.map_shard_pairs`: one shard against one kept value."""
    return fn(_assemble(blocks, offsets, columns), value)


def _combine_task(combine: Callable[[list[Any]], Any], *partials: Any) -> Any:
    return combine(list(partials))


def _kept_task(fn: Callable[[Any], Any], value: Any) -> Any:
    return fn(value)


def _emit_task(emit: Callable[[Columns], tuple[np.ndarray, Columns]], offsets: np.ndarray, columns: Sequence[str],
               buckets: int, *blocks: dict) -> Any:
    """Map side of :meth:`RayRecordSet.group_by_key`: one payload per bucket."""
    keys, payload = emit(_assemble(blocks, offsets, columns))
    which = np.asarray(keys, dtype=np.uint64) % np.uint64(buckets)
    out = tuple({c: np.asarray(v)[which == b] for c, v in payload.items()} for b in range(buckets))
    return out if buckets > 1 else out[0]


def _reduce_task(reduce: Callable[[Columns], Any], *pieces: Columns) -> Any:
    """Reduce side of :meth:`RayRecordSet.group_by_key`: the bucket's pieces, in shard order, concatenated."""
    names = list(pieces[0]) if pieces else []
    return reduce({c: np.concatenate([p[c] for p in pieces]) for c in names})


class RayKept:
    """Per-shard values held in the cluster's object store (one object reference each)."""

    def __init__(self, refs: list[Any]) -> None:
        self.refs = refs

    def __len__(self) -> int:
        return len(self.refs)


class _LazyColumns(dict):
    """Columns on the driver; the wide ones (vectors, sketches) fetched from the cluster only if asked for."""

    def __init__(self, eager: Columns, fetch: Callable[[str], np.ndarray], remote: Sequence[str]) -> None:
        super().__init__(eager)
        self._fetch, self.remote = fetch, tuple(remote)

    def __missing__(self, key: str) -> np.ndarray:
        if key not in self.remote:
            raise KeyError(key)
        value = self._fetch(key)
        self[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.remote


class RayRecordSet:
    """Record-stage columns: the narrow ones on the driver; texts and wide columns in the cluster.

    Attributes
    ----------
    columns : dict of numpy.ndarray
        The stages' columns, in corpus order. One-dimensional columns (scores,
        flags) are on the driver; wide ones (``(n, d)``: embeddings, MinHash
        band keys) stay in the cluster and are gathered only when a caller
        reads them here (the sharded global stages never do).
    frame : polars.DataFrame
        ``id``, the carried columns, ``shard`` and ``row``, in corpus order.
    """

    #: The records are spread over the cluster: global stages should map over shards.
    sharded = True

    def __init__(self, engine: RayEngine, dataset: Any, columns: Columns, frame: pl.DataFrame,
                 remote: Sequence[str] = ()) -> None:
        self._engine, self._dataset = engine, dataset
        self.frame = frame
        self.columns = _LazyColumns(columns, self._gather, remote)
        self._parts_cache: dict[tuple[str, ...], list[list[Any]]] = {}
        shard = frame.get_column("shard").to_numpy()
        counts = np.bincount(shard, minlength=int(shard.max()) + 1) if shard.size else np.zeros(1, np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._n_shards = int(counts.size)

    def __len__(self) -> int:
        return self.frame.height

    def _gather(self, name: str) -> np.ndarray:
        """A wide column brought to the driver (for callers that need it whole)."""
        with self._engine.errors():
            parts = [np.asarray(b[name]) for b in self._dataset.select_columns([name]).iter_batches(
                batch_format="numpy", batch_size=None)]
        return np.concatenate(parts)

    def _parts(self, columns: Sequence[str]) -> list[list[Any]]:
        """Object references to the blocks of ``columns``, grouped into contiguous shards (cached)."""
        key = tuple(sorted(set(columns)))
        if key not in self._parts_cache:
            with self._engine.errors():
                refs = self._dataset.select_columns([*key, "shard", "row"]).to_numpy_refs()
            count = max(1, min(len(refs), self._engine.shards_for(self._n_shards)))
            self._parts_cache[key] = [[refs[i] for i in idx] for idx in np.array_split(np.arange(len(refs)), count)
                                      if idx.size]
        return self._parts_cache[key]

    def map_shards(self, fn: Callable[[Columns], Any], columns: Sequence[str], *, keep: bool = False
                   ) -> list[Any] | RayKept:
        """Apply ``fn`` to each shard as a Ray task, where its blocks are.

        See :meth:`synthfilter.engine.base.RecordSet.map_shards`. The shards
        are contiguous groups of the dataset's blocks (as many as the input
        had shards, at least one per worker).
        """
        import ray

        task = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES)(_shard_task)
        with self._engine.errors():
            refs = [task.remote(fn, self._offsets, list(columns), *group) for group in self._parts(columns)]
            if keep:
                ray.wait(refs, num_returns=len(refs), fetch_local=False)
                return RayKept(refs)
            return ray.get(refs)

    def map_shard_pairs(self, fn: Callable[[Columns, Any], Any], columns: Sequence[str], kept: RayKept,
                        combine: Callable[[list[Any]], Any]) -> list[Any]:
        """One Ray task per (shard, kept value), one combining task per shard; only the combined results come back.

        See :meth:`synthfilter.engine.base.RecordSet.map_shard_pairs`. The
        kept values and the partial results go through the object store;
        a task holds one shard's rows and one kept value.
        """
        import ray

        pair = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES)(_pair_task)
        join = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES)(_combine_task)
        with self._engine.errors():
            refs = [join.remote(combine, *[pair.remote(fn, self._offsets, list(columns), value, *group)
                                           for value in kept.refs])
                    for group in self._parts(columns)]
            return ray.get(refs)

    def map_kept(self, kept: RayKept, fn: Callable[[Any], Any]) -> list[Any]:
        """Apply ``fn`` to each kept value as a Ray task; only the results come back."""
        import ray

        task = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES)(_kept_task)
        with self._engine.errors():
            return ray.get([task.remote(fn, ref) for ref in kept.refs])

    def group_by_key(self, emit: Callable[[Columns], tuple[np.ndarray, Columns]], columns: Sequence[str],
                     reduce: Callable[[Columns], Any], *, buckets: int | None = None) -> list[Any]:
        """A Ray shuffle: one map task per shard splits its rows into buckets, one reduce task per bucket.

        See :meth:`synthfilter.engine.base.RecordSet.group_by_key`; the
        buckets' payloads go from map to reduce tasks through the object
        store, and only the reduce results come back.
        """
        import ray

        parts = self._parts(columns)
        nb = max(1, int(buckets or len(parts)))
        emit_task = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES, num_returns=nb)(_emit_task)
        reduce_task = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES)(_reduce_task)
        with self._engine.errors():
            mapped = [emit_task.remote(emit, self._offsets, list(columns), nb, *group) for group in parts]
            mapped = [m if nb > 1 else [m] for m in mapped]
            return ray.get([reduce_task.remote(reduce, *[m[b] for m in mapped]) for b in range(nb)])

    def check_pairs(self, rows: np.ndarray, cols: np.ndarray, check: PairCheck) -> np.ndarray:
        """Run ``check`` on the pairs' texts as Ray tasks; only the booleans come back."""
        import ray

        if rows.size == 0:
            return np.zeros(0, dtype=bool)
        offsets = self._offsets
        wanted = np.unique(np.concatenate([rows, cols]))
        with self._engine.errors():
            picked = self._dataset.map_batches(
                _pick, fn_kwargs={"offsets": offsets, "wanted": wanted}, batch_format="numpy", num_cpus=0.25,
            ).materialize()
            blocks = picked.to_arrow_refs()
            task = ray.remote(num_cpus=ACTOR_CPUS, max_retries=MAX_RETRIES)(_check_chunk)
            chunks = max(1, min(self._engine.workers(), rows.size // 1000 + 1))
            parts = [task.remote(r, c, check, *blocks)
                     for r, c in zip(np.array_split(rows, chunks), np.array_split(cols, chunks))]
            return np.concatenate(ray.get(parts))


class RayEngine:
    """Runs record stages on a Ray cluster (Ray Data ``map_batches`` with an actor pool).

    Parameters
    ----------
    address : str, optional
        Cluster to join (``"auto"``, ``"ray://host:10001"``); ``None`` joins
        the one this process started, else starts a local one.
    num_workers : int, optional
        Actors in the pool; one per cluster CPU by default.
    batch_rows : int, optional
        Records per batch (default 256).
    actor_cpus : float, default 0.5
        CPUs each actor asks for.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_workers: int | None = None, batch_rows: int | None = None,
                 actor_cpus: float = ACTOR_CPUS) -> None:
        self.address, self.num_workers = address, num_workers
        self.batch_rows = batch_rows or DEFAULT_BATCH_ROWS
        self.actor_cpus = actor_cpus

    # ------------------------------------------------------------------ cluster
    def connect(self) -> None:
        """Join (or start) the cluster and set Ray Data to keep the record order."""
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                from synthfilter.errors import ConfigError

                reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                raise ConfigError(f"cannot join the Ray cluster at {self.address or '(local)'} ({reason}); "
                                  "start one with `ray start --head` or check --ray-address") from None
        # Ray Data logs a worker's exception before raising it; the engine re-raises it (a user
        # error as one line), so the log would only say it twice.
        import logging

        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def shards_for(self, input_shards: int) -> int:
        """Shards the global stages map over: the input's shards, at least one per worker."""
        return max(int(input_shards), self.workers())

    def workers(self) -> int:
        """Actors in the per-record pool."""
        import ray

        if self.num_workers:
            return int(self.num_workers)
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def describe(self) -> dict[str, Any]:
        """Cluster and pool facts, for the manifest."""
        import ray

        return {"ray": ray.__version__, "cluster_cpus": ray.cluster_resources().get("CPU"),
                "nodes": len([n for n in ray.nodes() if n.get("Alive")]), "workers": self.workers(),
                "actor_cpus": self.actor_cpus, "batch_rows": self.batch_rows}

    def errors(self):
        """Context that re-raises a worker's user error as itself (one line, not a Ray traceback)."""
        return _UserErrors()

    # ------------------------------------------------------------------ records
    def _dataset(self, source: ShardSource, carry: Sequence[str]) -> Any:
        import ray

        clash = [c for c in carry if c in _RESERVED]
        if clash:
            from synthfilter.errors import ConfigError

            raise ConfigError(f"columns {clash} are reserved by --engine ray; rename them")
        if source.paths is not None:
            items = [{"shard": i, "path": str(p)} for i, p in enumerate(source.paths)]
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            return ds.map_batches(
                _read_shards, batch_size=1, batch_format="pyarrow", num_cpus=0.25,
                fn_kwargs={"text_column": source.text_column, "id_column": source.id_column,
                           "max_text_chars": source.max_text_chars, "carry": list(carry)},
            )
        frame = source.frame
        _check_carry(frame, carry, source.source)
        frame = frame.select("id", "text", *[c for c in carry if c != "text"]).with_columns(
            shard=pl.lit(0, dtype=pl.Int64), row=pl.int_range(frame.height, dtype=pl.Int64),
            _content_ids=pl.lit(False))
        table = frame.to_arrow()
        step = self.batch_rows
        return ray.data.from_arrow([table.slice(i, step) for i in range(0, table.num_rows, step)])

    def map_records(self, source: ShardSource, stages: Sequence[RecordStage], carry: Sequence[str] = ()
                    ) -> RayRecordSet:
        """Run ``stages`` over every record of ``source`` on the cluster.

        Parameters
        ----------
        source : ShardSource
            Shard files or an in-memory frame.
        stages : list of RecordStage
            Run in order in each actor.
        carry : list of str
            Input columns to bring back beside ``id``.

        Returns
        -------
        RayRecordSet
        """
        import ray

        self.connect()
        carry = [c for c in carry if c != "id"]
        with self.errors():
            ds = self._dataset(source, carry).map_batches(
                _StageRunner, fn_constructor_kwargs={"stages": list(stages)},
                # One batch in flight per actor: an actor that is up first does not queue the batches
                # its peers (still loading their models) would take.
                compute=ray.data.ActorPoolStrategy(size=self.workers(), max_tasks_in_flight_per_actor=1),
                num_cpus=self.actor_cpus,
                batch_size=self.batch_rows, batch_format="numpy", zero_copy_batch=False,
                max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES,
            ).materialize()
            names = [c for stage in stages for c in stage.columns]
            # Wide columns (embeddings, sketches) stay in the cluster, like the texts (unless kept).
            schema = ds.schema()
            wide = [c for c in names if _is_tensor(schema.base_schema.field(c).type)]
            names = [c for c in names if c not in wide]
            parts: dict[str, list[np.ndarray]] = {c: [] for c in names}
            small: list[pa.Table] = []
            dropped = [*wide, *([] if "text" in carry else ["text"])]
            small_ds = ds.drop_columns(dropped) if dropped else ds
            for batch in small_ds.iter_batches(batch_format="numpy", batch_size=None):
                for c in names:
                    parts[c].append(np.asarray(batch[c]))
                small.append(pa.table({c: _arrow(batch[c]) for c in ("id", *carry, "shard", "row", "_content_ids")}))
        columns = {c: np.concatenate(v) for c, v in parts.items()}
        frame = pl.from_arrow(pa.concat_tables(small))
        if frame.get_column("_content_ids").all():
            frame = frame.with_columns(renumber_content_ids(frame.get_column("id")))
        frame = frame.drop("_content_ids")
        if source.paths is not None:
            check_unique_ids(frame.get_column("id"), frame.get_column("shard"), frame.get_column("row"), source.paths)
        return RayRecordSet(self, ds, columns, frame, remote=wide)


def _is_tensor(kind: Any) -> bool:
    """Whether an Arrow column type holds a vector per record (Ray's tensor extension types)."""
    return isinstance(kind, pa.ExtensionType) or pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind)


def _arrow(values: np.ndarray) -> pa.Array:
    if values.dtype == object:
        return pa.array(values.tolist())
    return pa.array(values)


class _UserErrors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, SynthfilterError) and type(exc).__module__ == "synthfilter.errors":
            return False
        user = _unwrap(exc)
        if user is not None:
            raise user.with_traceback(None) from None
        return False
