"""Content hashes, manifests and version records.

Every output of synthfilter sits beside a JSON manifest that names the input
hashes, the model and encoder that made it, the parameters, the seed, the
library versions, counts and timings.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from synthfilter.io import atomic_write_text

MANIFEST_SCHEMA = "synthfilter.manifest/1"

_TRACKED_PACKAGES = (
    "synthfilter",
    "polars",
    "numpy",
    "faiss-cpu",
    "scikit-learn",
    "sentence-transformers",
    "torch",
    "model2vec",
)


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes.

    Parameters
    ----------
    path : str or Path
        File to hash.
    chunk_size : int, default 1 MiB
        Read size.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    """Return the hex SHA-256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def library_versions(packages: Iterable[str] = _TRACKED_PACKAGES) -> dict[str, str]:
    """Versions of the libraries that influence outputs (absent ones omitted)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_inputs(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Describe input files by path, size and SHA-256."""
    return [
        {"path": str(Path(p)), "bytes": Path(p).stat().st_size, "sha256": file_sha256(p)}
        for p in paths
    ]


def build_manifest(
    command: str,
    *,
    inputs: Iterable[str | Path] = (),
    outputs: Iterable[str | Path] = (),
    parameters: Mapping[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """Assemble a manifest dictionary.

    Parameters
    ----------
    command : str
        The stage or CLI command that produced the outputs (``"score"``, ...).
    inputs, outputs : iterable of path
        Files read and written; each is recorded with its SHA-256.
    parameters : mapping, optional
        Configuration, including the seed.
    **sections
        Further top-level sections (``encoder``, ``model``, ``counts``,
        ``timings_s``, ...), stored as given.

    Returns
    -------
    dict
        JSON-serialisable manifest. It carries no wall-clock time inside the
        score files themselves, so that outputs stay byte-identical; the time
        is recorded here only.
    """
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "command": command,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": describe_inputs(inputs),
        "outputs": describe_inputs(outputs),
        "parameters": dict(parameters or {}),
        "versions": library_versions(),
    }
    manifest.update(sections)
    return manifest


def write_manifest(path: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write a manifest as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")


class Stopwatch:
    """Collects named wall-clock timings: ``with watch("encode"): ...``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str) -> _Lap:
        return _Lap(self, name)


class _Lap:
    def __init__(self, watch: Stopwatch, name: str) -> None:
        self.watch, self.name = watch, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.watch.timings[self.name] = round(self.watch.timings.get(self.name, 0.0) + elapsed, 4)
