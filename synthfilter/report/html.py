"""Small HTML building blocks for self-contained reports.

Every piece of text that reaches the page goes through :func:`esc`
(:func:`html.escape` with quotes), so record texts, file names and ids cannot
inject markup. The page carries its own CSS, uses system fonts, and has no
script, no external link and no web font: it opens offline, anywhere.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["callout", "cards", "definition_list", "esc", "fmt", "page", "section", "table"]

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa;
        --bad: #b42318; --bad-bg: #fef3f2; --ok: #1a7f37; --ok-bg: #eefbf1; --warn: #9a6700; --warn-bg: #fff8c5; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p.sub { color: var(--muted); margin: 0 0 18px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 14px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { max-width: 560px; overflow-wrap: anywhere; color: #2d333a; }
.bad { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
.callout { border-radius: 8px; padding: 10px 14px; margin: 8px 0; border: 1px solid var(--line); }
.callout.bad { background: var(--bad-bg); border-color: #fda29b; color: var(--fg); font-weight: normal; }
.callout.ok { background: var(--ok-bg); border-color: #abefc6; color: var(--fg); font-weight: normal; }
.callout.warn { background: var(--warn-bg); border-color: #f5d90a; }
.callout ul { margin: 4px 0 0; padding-left: 20px; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13.5px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
"""


def esc(value: Any) -> str:
    """HTML-escape any value's string form (quotes included); ``None`` becomes an em dash."""
    if value is None:
        return "—"
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a table cell (escaped); other values are escaped as they are."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) < 10 ** -digits:
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return esc(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[bool] | None = None,
    text_columns: Sequence[int] = (),
    raw: bool = False,
) -> str:
    """An HTML table; cells are escaped and formatted unless ``raw`` is set.

    Parameters
    ----------
    headers : sequence of str
    rows : iterable of sequences
    numeric : sequence of bool, optional
        Right-align these columns.
    text_columns : sequence of int
        Columns holding long texts (wrapped, width-limited).
    raw : bool, default False
        Cells are already HTML (the caller escaped them).
    """
    numeric = list(numeric or [False] * len(headers))
    head = "".join(f'<th class="num">{esc(h)}</th>' if numeric[i] else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            content = cell if raw else fmt(cell)
            cls = "num" if numeric[i] else ("text" if i in text_columns else "")
            cells.append(f'<td class="{cls}">{content}</td>' if cls else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(title: str, *parts: str, level: int = 2) -> str:
    """A heading followed by already-built HTML parts."""
    return f"<section><h{level}>{esc(title)}</h{level}>{''.join(parts)}</section>"


def definition_list(items: Iterable[tuple[str, Any]]) -> str:
    """Key-value pairs as a ``<dl>`` (both escaped)."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Summary numbers as cards: ``(label, value)`` pairs (both escaped)."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>' for k, v in items
    ) + "</div>"


def callout(kind: str, title: str, lines: Sequence[str] = ()) -> str:
    """A coloured box (``kind`` in ok, warn, bad) with a title and a bullet list (escaped)."""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f'<div class="callout {esc(kind)}"><strong>{esc(title)}</strong>' + (f"<ul>{items}</ul>" if items else "") + "</div>"


def page(title: str, subtitle: str, body: Sequence[str], footer: str) -> str:
    """The whole document: inline CSS, no scripts, no external resources."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>"
        + "".join(body)
        + f"<footer>{esc(footer)}</footer></main></body></html>\n"
    )
