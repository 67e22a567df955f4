"""Selections with parameter grids, benchopt-style.

``"jax-checkpoint[rtol=1e-3,1e-5,1e-7],numpy-adjoint"`` selects two back-ends, the first
at three tolerances; ``"lotka_volterra[t1=10,40,160;n_obs=101]"`` or
``"lotka_volterra[t1=10,40,160,n_obs=101]"`` a task at three horizons.  Inside brackets a
token with ``=`` starts a key and tokens without one add values to the last key; keys
expand to their Cartesian product, and each grid point becomes its own cell.
"""

from __future__ import annotations

import itertools
import re

from harness.core.errors import UsageError

__all__ = ["expand_grid", "split_selection"]

_ITEM = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:\[(.*)\])?\s*$")


def split_selection(spec: str) -> list[str]:
    """Split at commas outside brackets: ``"a[x=1,2],b"`` -> ``["a[x=1,2]", "b"]``."""
    items, depth, current = [], 0, []
    for char in spec:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise UsageError(f"unbalanced ']' in '{spec}'")
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise UsageError(f"unbalanced '[' in '{spec}'")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def expand_grid(item: str) -> tuple[str, list[dict[str, str]]]:
    """``"name[k=a,b;j=c]"`` -> ``("name", [{"k": "a", "j": "c"}, {"k": "b", "j": "c"}])``.

    Values stay strings: they are cast against the option's default later.
    """
    match = _ITEM.match(item)
    if match is None:
        raise UsageError(f"bad selection '{item}': expected NAME or NAME[key=v1,v2,...]")
    name, body = match.group(1), match.group(2)
    if body is None:
        return name, [{}]
    grid: dict[str, list[str]] = {}
    key = None
    for token in re.split(r"[,;]", body):
        token = token.strip()
        if not token:
            continue
        if "=" in token:
            key, _, value = token.partition("=")
            key = key.strip()
            if not key or key in grid:
                raise UsageError(f"bad grid '{item}': key '{key}' empty or repeated")
            grid[key] = []
            token = value.strip()
            if not token:
                continue
        if key is None:
            raise UsageError(f"bad grid '{item}': value '{token}' before any key=")
        grid[key].append(token)
    empty = [k for k, values in grid.items() if not values]
    if empty:
        raise UsageError(f"bad grid '{item}': no values for {', '.join(empty)}")
    keys = list(grid)
    return name, [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
