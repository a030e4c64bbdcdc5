"""The HTML report of a monitor run (the JSON written by ``synthfilter monitor -o run.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from synthfilter.errors import SchemaError
from synthfilter.report import html as h
from synthfilter.report import plots

__all__ = ["check_monitor_run", "monitor_report_html"]

_REQUIRED = ("schema", "reference", "batches", "metrics")


def check_monitor_run(data: Any, source: str) -> Mapping[str, Any]:
    """Check that ``data`` is a monitor run (``schema`` ``synthfilter.monitor/1``).

    Raises
    ------
    SchemaError
        Naming the missing key.
    """
    if not isinstance(data, Mapping):
        raise SchemaError(f"{source}: not a monitor run (a JSON object is expected); "
                          "give the .json written by 'synthfilter monitor -o run.json'")
    schema = data.get("schema")
    if not (isinstance(schema, str) and schema.startswith("synthfilter.monitor/")):
        raise SchemaError(f"{source}: not a monitor run (schema {schema!r}); "
                          "give the .json written by 'synthfilter monitor -o run.json'")
    for key in _REQUIRED:
        if key not in data:
            raise SchemaError(f"{source}: monitor run has no '{key}'; re-run 'synthfilter monitor -o run.json'")
    if not isinstance(data["batches"], list) or not data["batches"]:
        raise SchemaError(f"{source}: monitor run lists no batches; re-run 'synthfilter monitor -o run.json'")
    return data


def _short(name: str) -> str:
    return Path(name).name or name


def monitor_report_html(data: Mapping[str, Any], *, source: str, sha256: str | None = None,
                        title: str | None = None) -> str:
    """Render a monitor run as one self-contained HTML page.

    Parameters
    ----------
    data : mapping
        The monitor run (``MonitorRun.to_dict()`` or its JSON).
    source : str
        Where it was read from (shown in the header).
    sha256 : str, optional
        Hash of the input file (shown in the footer).
    title : str, optional
        Page title.

    Returns
    -------
    str
        The HTML document.
    """
    data = check_monitor_run(data, source)
    specs = {m["name"]: m for m in data["metrics"]}
    batches = data["batches"]
    ref = data["reference"]
    labels = [_short(b["name"]) for b in batches]
    n_alarm = sum(1 for b in batches if b.get("alarms"))
    title = title or "synthfilter monitor report"
    subtitle = (f"{len(batches)} batch(es) against reference {_short(ref.get('name', '?'))} "
                f"({ref.get('n', 0):,} records) · encoder {data.get('encoder', '?')}")
    body: list[str] = []

    # Summary
    status_cards = h.cards([
        ("batches", f"{len(batches):,}"),
        ("batches with alarms", f"{n_alarm:,}"),
        ("reference records", f"{ref.get('n', 0):,}"),
        ("alarm margin (σ)", h.fmt(data.get("parameters", {}).get("sigma"))),
        ("null splits", h.fmt(data.get("parameters", {}).get("n_null"))),
    ])
    rows = []
    for label, b in zip(labels, batches):
        status = '<span class="bad">ALARM</span>' if b.get("alarms") else '<span class="ok">ok</span>'
        share = b["values"].get("synthetic_share")
        rows.append([h.esc(label), h.fmt(b["n"]), status, h.esc(", ".join(b.get("alarm_groups", [])) or "—"),
                     h.fmt(b["values"].get("vendi_score")), h.fmt(b["values"].get("recall")),
                     h.fmt(b["values"].get("tail_recall")), h.fmt(b["values"].get("near_duplicate_rate")),
                     h.fmt(share)])
    summary = h.table(["batch", "records", "status", "alarms", "Vendi", "recall", "tail recall", "dup rate",
                       "synthetic share"], rows, numeric=[False, True, False, False, True, True, True, True, True],
                      raw=True)
    body.append(h.section("Summary", status_cards, summary))

    # Alarms in words
    parts = []
    if n_alarm == 0:
        parts.append(h.callout("ok", "No alarm: every batch lies within what reference samples of its size give."))
    for label, b in zip(labels, batches):
        if b.get("alarms"):
            parts.append(h.callout("bad", f"{label}: {len(b['alarms'])} alarm(s) — {', '.join(b['alarm_groups'])}",
                                   [a["message"] for a in b["alarms"]]))
    notes = [f"{label}: {note}" for label, b in zip(labels, batches) for note in b.get("notes", [])]
    if notes:
        parts.append(h.callout("warn", "Notes", sorted(set(notes), key=notes.index)))
    body.append(h.section("Alarms", *parts))

    # Metrics across batches
    series = []
    for name, spec in specs.items():
        values = [b["values"].get(name) for b in batches]
        if all(v is None for v in values):
            continue
        nulls = [b.get("null", {}).get(name) for b in batches]
        series.append({
            "title": f"{spec['label']}" + ("" if spec["bad"] == "none" else f" ({spec['bad']} is bad)"),
            "values": values,
            "null_mean": None if all(n is None for n in nulls) else [None if n is None else n["mean"] for n in nulls],
            "bound": None if all(n is None or n.get("bound") is None for n in nulls)
            else [None if n is None else n.get("bound") for n in nulls],
            "alarm": [any(a["metric"] == name for a in b.get("alarms", [])) for b in batches],
            "bad": spec["bad"],
        })
    body.append(h.section("Metrics across batches", plots.metric_lines(labels, series)))

    # Full metric table
    metric_rows = []
    for name, spec in specs.items():
        row = [h.esc(spec["label"])]
        for b in batches:
            value = b["values"].get(name)
            null = b.get("null", {}).get(name)
            alarmed = any(a["metric"] == name for a in b.get("alarms", []))
            cell = h.fmt(value)
            if name == "synthetic_share" and b["values"].get("synthetic_share_low") is not None:
                cell += f" ({h.fmt(b['values']['synthetic_share_low'])}–{h.fmt(b['values']['synthetic_share_high'])})"
            if null is not None:
                cell += f'<br><small>ref {h.fmt(null["mean"])} ± {h.fmt(null["std"])}'
                if null.get("bound") is not None:
                    cell += f', bound {h.fmt(null["bound"])}'
                cell += "</small>"
            row.append(f'<span class="bad">{cell}</span>' if alarmed else cell)
        metric_rows.append(row)
    body.append(h.section(
        "All metrics",
        "<p>Each cell: the batch's value; below it the mean ± standard deviation over reference samples of the "
        "same size, and the alarm bound. Alarmed values are red.</p>",
        h.table(["metric", *labels], metric_rows, numeric=[False] + [True] * len(labels), raw=True),
    ))

    # Projection
    ref_points = np.asarray(ref.get("projection") or [], dtype=np.float64).reshape(-1, 2)
    batch_points = {label: np.asarray(b.get("projection") or [], dtype=np.float64).reshape(-1, 2)
                    for label, b in zip(labels, batches)}
    if len(ref_points) or any(len(p) for p in batch_points.values()):
        body.append(h.section("Reference vs batches", plots.projection_scatter(
            ref_points, batch_points, ref.get("projection_explained_variance"))))

    # Duplicates and rarest records
    example_parts = []
    for label, b in zip(labels, batches):
        dups = b.get("duplicates") or []
        rare = b.get("rarest") or []
        example_parts.append(f"<h3>{h.esc(label)}</h3>")
        if dups:
            example_parts.append(h.table(
                ["cluster size", "ids", "example text"],
                [[d["size"], ", ".join(map(str, d.get("ids", []))), d.get("text")] for d in dups],
                numeric=[True, False, False], text_columns=[2]))
        else:
            example_parts.append("<p>No near-duplicates.</p>")
        if rare:
            example_parts.append(h.table(
                ["id", "k-NN cosine distance to reference", "text"],
                [[r["id"], r["knn_distance"], r.get("text")] for r in rare],
                numeric=[False, True, False], text_columns=[2]))
    body.append(h.section("Most duplicated clusters and rarest records", *example_parts))

    # Glossary
    glossary = h.table(
        ["metric", "group", "what it measures", "range", "bad"],
        [[s["label"] + f" ({s['name']})", s["group"], s["description"], s["value_range"], s["bad"]]
         for s in specs.values()],
        text_columns=[2])
    body.append(h.section(
        "What the metrics mean", glossary,
        "<p>Alarms compare each batch with the reference's own variability: the reference is split in halves "
        "many times, a subsample of one half of the batch's size is measured against the other, and a metric "
        "alarms when the batch lies beyond the mean of those values by the alarm margin (σ standard deviations, "
        "floored per metric) in its bad direction, or beyond a user threshold.</p>"))

    # Provenance
    params = data.get("parameters", {})
    items = [("input", source)] + ([("sha256", sha256)] if sha256 else [])
    items += [("encoder", data.get("encoder")), ("origin", (data.get("origin") or {}).get("source"))]
    items += [(k, v) for k, v in params.items()]
    for item in data.get("inputs", []) or []:
        items.append((f"input {_short(str(item.get('path')))}", f"sha256 {item.get('sha256')}"))
    for k, v in (data.get("versions") or {}).items():
        items.append((f"version {k}", v))
    body.append(h.section("Run parameters and provenance", h.definition_list(items)))
    return h.page(title, subtitle, body, footer=f"synthfilter monitor report · {data.get('schema')}")
