"""The one table layout every corpus loader returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from synthfilter.data.text import content_id

__all__ = ["HUMAN_SOURCES", "MACHINE_SOURCES", "RECORD_SCHEMA", "SOURCES", "records_frame"]

#: Human-written sources (label 0).
HUMAN_SOURCES: tuple[str, ...] = ("sharegpt_human", "brown", "spamassassin")
#: Machine-written sources (label 1).
MACHINE_SOURCES: tuple[str, ...] = ("sharegpt_chatgpt", "gemma", "smollm2")
#: Every source, in the order the corpus lists them (a new source goes last: the order seeds each
#: source's draw and ranks the sources when duplicates are dropped, so appending leaves the others as they were).
SOURCES: tuple[str, ...] = ("sharegpt_human", "sharegpt_chatgpt", "brown", "spamassassin", "gemma", "smollm2")

#: Columns and dtypes of a loader's output. ``gen_*`` columns describe how a
#: machine text was decoded; they are null where unknown (all human text and
#: ShareGPT's ChatGPT turns). ``gen_mode`` (``raw`` or ``chat``) and
#: ``gen_task`` are SmolLM2's (Gemma only continues raw).
RECORD_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "text": pl.String(),
    "label": pl.Int8(),
    "source": pl.String(),
    "group": pl.String(),
    "gen_prompt_id": pl.String(),
    "gen_temperature": pl.Float64(),
    "gen_top_p": pl.Float64(),
    "gen_repeat_penalty": pl.Float64(),
    "gen_seed": pl.Int64(),
    "gen_mode": pl.String(),
    "gen_task": pl.String(),
}


def records_frame(rows: Iterable[Mapping[str, Any]], source: str) -> pl.DataFrame:
    """Build a loader's DataFrame from dicts with at least ``text`` and ``group``.

    Adds ``id`` (content hash), ``label`` and ``source``; fills missing
    ``gen_*`` values with nulls; drops repeated texts (first kept); sorts by
    ``id`` so the result does not depend on reading order.

    Parameters
    ----------
    rows : iterable of mapping
        Records with ``text`` and ``group`` and optionally ``gen_*`` keys.
    source : str
        One of :data:`SOURCES`.

    Returns
    -------
    polars.DataFrame
        Columns and dtypes of :data:`RECORD_SCHEMA`.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
    label = 1 if source in MACHINE_SOURCES else 0
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_SCHEMA}
    for row in rows:
        text = row["text"]
        columns["id"].append(content_id(text))
        columns["text"].append(text)
        columns["label"].append(label)
        columns["source"].append(source)
        columns["group"].append(row["group"])
        for name in RECORD_SCHEMA:
            if name.startswith("gen_"):
                columns[name].append(row.get(name))
    frame = pl.DataFrame(columns, schema=RECORD_SCHEMA)
    return frame.unique(subset="id", keep="first", maintain_order=True).sort("id")
