"""Engines that run the scoring stages: ``local`` (this process) and ``ray`` (Ray Data).

See :mod:`synthfilter.engine.base` for the contracts between stages and engines.
"""

from __future__ import annotations

from typing import Any

from synthfilter.engine.base import Engine, GlobalContext, GlobalStage, RecordSet, RecordStage
from synthfilter.engine.local import LocalEngine
from synthfilter.errors import ConfigError, MissingExtraError

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "Engine", "GlobalContext", "GlobalStage", "LocalEngine", "RecordSet", "RecordStage",
           "get_engine", "require_ray"]


def require_ray() -> Any:
    """Import Ray Data, or raise :class:`~synthfilter.errors.MissingExtraError` with the install command."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingExtraError("ray[data]", "ray", "--engine ray") from None
    return ray


def get_engine(name: str = "local", *, ray_address: str | None = None, num_workers: int | None = None,
               batch_rows: int | None = None) -> Engine:
    """The engine called ``name``.

    Parameters
    ----------
    name : {"local", "ray"}
        Engine name.
    ray_address : str, optional
        Ray cluster to join (``"auto"``, ``"ray://host:10001"``); a local
        cluster is started when none is running and no address is given.
    num_workers : int, optional
        Ray only: actors in the per-record pool (default: one per CPU of the cluster).
    batch_rows : int, optional
        Records per batch (Ray default 256; local default: the whole corpus).
    """
    if name == "local":
        if ray_address is not None:
            raise ConfigError("--ray-address needs --engine ray")
        return LocalEngine(batch_rows=batch_rows)
    if name == "ray":
        require_ray()
        from synthfilter.engine.ray import RayEngine

        return RayEngine(address=ray_address, num_workers=num_workers, batch_rows=batch_rows)
    raise ConfigError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")
