"""Shared fixtures: small real corpora and the packaged encoders."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def run_cli(*args):
    """Run the ``synthfilter`` command group in-process; arguments may be paths."""
    from click.testing import CliRunner

    from synthfilter.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep test embeddings out of the user's cache; read the data packages set-up installed."""
    from synthfilter.data.fetch import sources_dir

    os.environ.setdefault("SYNTHFILTER_SOURCES", str(sources_dir()))
    os.environ["SYNTHFILTER_CACHE"] = str(tmp_path_factory.mktemp("synthfilter-cache"))


@pytest.fixture(scope="session")
def tails_sample() -> pl.DataFrame:
    """Real paragraphs: Brown religion (cd) and adventure (cn), SpamAssassin ham."""
    return pl.read_parquet(FIXTURES / "tails_sample.parquet")


@pytest.fixture(scope="session")
def minilm():
    from synthfilter.encoders import get_encoder

    return get_encoder("minilm")


@pytest.fixture(scope="session")
def static():
    from synthfilter.encoders import get_encoder

    return get_encoder("static")
