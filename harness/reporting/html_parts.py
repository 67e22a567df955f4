"""The HTML report's building blocks: its style sheet and its tables (escaped cells,
numbers to three significant digits, columns that wrap)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CSS", "breakable", "cell_number", "html_table"]

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1500px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #555; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e3e3e3; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; vertical-align: bottom; min-width: 4em; }
td:first-child, th:first-child, td.text, th.text { text-align: left; }
tr:hover td { background: #fafafa; }
.bars { max-width: 42em; margin: 0.2em 0 0.9em 1em; font-size: 0.82em; }
.bar-row { display: flex; align-items: center; gap: 0.5em; margin: 1px 0; }
.bar-name { flex: 0 0 11em; text-align: right; color: #444; }
.bar-track { flex: 0 0 22em; } .bar { display: block; height: 0.8em; background: #5b8fc7; }
.bar-value { color: #444; white-space: nowrap; } p.answer { margin: 0.5em 0 0.1em; }
td.wrap-xs, td.wrap-s, td.wrap-m { white-space: normal; overflow-wrap: anywhere; }
td.wrap-xs { min-width: 5em; max-width: 7em; } td.wrap-s { max-width: 9em; } td.wrap-m { max-width: 13em; }
.status-ok { color: #1a7f37; } .status-failed { color: #cf222e; font-weight: bold; }
.status-skipped { color: #9a6700; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; max-width: 1100px; }
ul.problems li { color: #cf222e; }
code { background: #f3f3f3; padding: 0 0.25em; }
"""


def cell_number(value: Any) -> str:
    """A table cell: 3 significant digits, whole numbers in full, '–' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.3g}"


def html_table(
    frame: Any,
    text_columns: Sequence[str] = ("task", "back-end", "status"),
    wrap: Mapping[str, str] | None = None,
) -> str:
    """A DataFrame of strings as an HTML table (escaped), status cells coloured; the
    columns of `wrap` wrap their text, each in the CSS class it names (its width)."""
    head = "".join(
        f'<th class="{"text" if c in text_columns else ""}">{breakable(str(c))}</th>' for c in frame.columns
    )
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column, value in row.items():
            classes = ["text"] if column in text_columns else []
            if wrap and column in wrap:
                classes.append(wrap[column])
            if column == "status":
                classes.append(html.escape(f"status-{value}"))
            cells.append(f'<td class="{" ".join(classes)}">{html.escape(str(value))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


def breakable(name: str) -> str:
    """An escaped header that may wrap after underscores (metric names are long)."""
    return html.escape(name).replace("_", "_<wbr>")
