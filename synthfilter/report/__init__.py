"""Self-contained HTML reports of a scored corpus or a monitor run.

One file, no network: CSS inline, figures as base64 PNG (matplotlib, Agg),
no scripts, no external links or fonts; every text is HTML-escaped.

>>> from synthfilter.report import write_report                        # doctest: +SKIP
>>> write_report("monitor.json", "monitor.html")                        # doctest: +SKIP
>>> write_report("corpus.scores.parquet", "corpus.html")                # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthfilter.errors import InputError, SchemaError
from synthfilter.io import atomic_write_text, read_table
from synthfilter.provenance import file_sha256
from synthfilter.report.monitor_report import check_monitor_run, monitor_report_html
from synthfilter.report.scores_report import check_scores, scores_report_html

__all__ = [
    "build_report",
    "check_monitor_run",
    "check_scores",
    "monitor_report_html",
    "report_kind",
    "scores_report_html",
    "write_report",
]


def report_kind(path: str | Path) -> str:
    """``"monitor"`` for a ``.json`` file, ``"scores"`` for a table (Parquet, JSONL, CSV)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "monitor"
    if suffix in (".parquet", ".pq", ".jsonl", ".ndjson", ".csv"):
        return "scores"
    raise InputError(f"{path}: cannot make a report from a '{suffix or '(none)'}' file; "
                     "give a scores .parquet or a monitor run .json")


def _manifest_beside(path: Path) -> dict[str, Any] | None:
    name = path.name
    for ext in (".parquet", ".pq", ".jsonl", ".ndjson", ".csv"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    candidate = path.with_name(name + ".manifest.json")
    if not candidate.is_file():
        return None
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_report(path: str | Path, *, title: str | None = None) -> str:
    """Build the HTML report of a scores table or a monitor run.

    Parameters
    ----------
    path : str or Path
        A ``*.scores.parquet`` (or JSONL/CSV) written by ``synthfilter score``
        (a ``*.manifest.json`` beside it is read when present), or the
        ``.json`` written by ``synthfilter monitor -o``.
    title : str, optional
        Page title.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    InputError, SchemaError
        If the file is missing, unreadable or of the wrong shape.
    """
    path = Path(path)
    kind = report_kind(path)
    if kind == "monitor":
        if not path.is_file():
            raise InputError(f"{path}: no such file; check the path")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text; give the .json written by 'synthfilter monitor -o'") from None
        except ValueError as exc:
            raise SchemaError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:120]}); "
                              "give the .json written by 'synthfilter monitor -o'") from None
        return monitor_report_html(data, source=str(path), sha256=file_sha256(path), title=title)
    frame = read_table(path)
    return scores_report_html(frame, source=str(path), sha256=file_sha256(path), manifest=_manifest_beside(path),
                              title=title)


def write_report(path: str | Path, output: str | Path, *, title: str | None = None) -> Path:
    """Build the report of ``path`` and write it to ``output`` atomically.

    The HTML is built completely before anything is written, so a failure
    leaves no file behind.

    Returns
    -------
    Path
        ``output``.
    """
    document = build_report(path, title=title)
    return atomic_write_text(output, document)
