"""The repository stands on its own: docs, ignore rules and packaging metadata."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_text_files() -> list[Path]:
    suffixes = {".py", ".md", ".toml", ".sh", ".txt", ".cfg"}
    return [p for p in ROOT.rglob("*") if p.suffix in suffixes and ".venv" not in p.parts and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]


def test_no_file_refers_to_a_document_outside_the_repository():
    """Docstrings, --help and docs never point to design notes that are not shipped."""
    offenders = [str(p.relative_to(ROOT)) for p in _tracked_text_files()
                 if p.name != Path(__file__).name and "DESIGN.md" in p.read_text(encoding="utf-8", errors="ignore")]
    assert offenders == []
    help_text = subprocess.run([sys.executable, "-m", "synthfilter.cli", "simulate", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "DESIGN" not in help_text


def test_scores_manifests_and_evaluation_folders_are_ignored():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("corpus.scores.manifest.json", "data/corpus.scores.manifest.json", "heldout_test.eval/x.json"):
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=ROOT, check=False)
        assert proc.returncode == 0, name


def test_licence_is_an_spdx_expression():
    """PEP 639: ``license`` is an SPDX string, not the deprecated table."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
