"""The one escaping function of markdown table cells, and the table writer that uses it.

A cell of a GitHub-flavoured markdown table ends at an unescaped `|` and a row at a line
break (GFM spec, "Tables (extension)": "include a pipe in a cell's content by escaping
it"), so a back-end name, an option value or a record's reason holding either broke the
report's tables.  Every markdown table of the harness goes through `markdown_table`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["markdown_cell", "markdown_table"]

#: the table formats whose cells are split at `|`
_PIPE_FORMATS = ("github", "pipe")


def markdown_cell(value: Any) -> Any:
    """`value` safe in a markdown table cell: `|` escaped as `\\|`, line breaks and other
    control characters as spaces; anything but a string (a number tabulate formats) as is."""
    if not isinstance(value, str):
        return value
    text = "".join(c if c.isprintable() else " " for c in value)
    return text.replace("|", "\\|")


def markdown_table(
    rows: Iterable[Any], headers: Any = "keys", tablefmt: str = "github", **kwargs: Any
) -> str:
    """`tabulate(rows, headers, tablefmt, ...)` with every header and cell escaped
    (`markdown_cell`) when the format is a pipe table."""
    from tabulate import tabulate

    if tablefmt not in _PIPE_FORMATS:
        return tabulate(rows, headers=headers, tablefmt=tablefmt, **kwargs)
    escaped: list[Any] = []
    for row in rows:
        if isinstance(row, Mapping):
            escaped.append({markdown_cell(str(k)): markdown_cell(v) for k, v in row.items()})
        else:
            escaped.append([markdown_cell(v) for v in row])
    if isinstance(headers, list | tuple):
        headers = [markdown_cell(str(h)) for h in headers]
    return tabulate(escaped, headers=headers, tablefmt=tablefmt, **kwargs)
