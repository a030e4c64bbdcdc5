"""Fixtures for the simulation tests: real Brown paragraphs, fetched once into the test cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def brown_paragraphs() -> list[str]:
    """All Brown corpus paragraphs (about 7,200), or a skip when the source cannot be fetched."""
    from synthfilter.data.fetch import SourceUnavailableError
    from synthfilter.simulate.corpus import load_human_paragraphs

    try:
        return load_human_paragraphs()
    except SourceUnavailableError as exc:
        pytest.skip(f"Brown corpus unavailable: {exc}")
