"""The memory-exponent analysis: peak memory ~ t1^k fitted per (task, back-end) over a
sweep of the integration horizon t1 (`harness study memory-scaling`, the report's table
and the memory-scaling figure).  No plotting library is needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.reporting.figures.records import (
    HORIZON_COUPLED,
    HORIZON_KEY,
    GroupKey,
    Record,
    finite,
    group_labels,
    mean,
    sweep_series,
)

__all__ = [
    "MEMORY_KINDS",
    "fit_exponent",
    "memory_exponents",
    "memory_points",
    "memory_series",
    "sweep_exponents",
    "sweep_points",
]

#: (record field, panel title) of the memory kinds
MEMORY_KINDS = {
    "framework": ("peak_framework_bytes", "framework-level peak"),
    "rss": ("peak_rss_bytes", "peak RSS (isolated process, steady state)"),
}


def memory_points(points: Sequence[tuple[float, list[Record]]], field: str) -> tuple[np.ndarray, np.ndarray]:
    """(horizons, mean memory) with positive memory (a log axis cannot show zero)."""
    xs, ys = [], []
    for x, members in points:
        y = mean(r.get(field) for r in members)
        if y is not None and y > 0 and x > 0:
            xs.append(x)
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def fit_exponent(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope k of log y against log x (memory ~ x^k); None for < 2 distinct x."""
    if len(np.unique(x)) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def memory_series(records: Sequence[Record]) -> dict[GroupKey, list[tuple[float, list[Record]]]]:
    """Groups with their records at each horizon t1 (two horizons or more)."""
    return sweep_series(records, (HORIZON_KEY, *HORIZON_COUPLED), lambda p: finite(p.get(HORIZON_KEY)))


def memory_exponents(records: Sequence[Record]) -> dict[tuple[str, str, str], float]:
    """Fitted exponent k of peak memory ~ t1^k per (task, back-end label, kind), kind
    "framework" or "rss"; only where a group has at least two distinct horizons t1 with
    positive memory.  The label is the back-end name unless a grid splits it.  A record's
    horizon is read from its `resolved_params` (its `params` for an old record)."""
    series = memory_series(records)
    labels = group_labels(series)
    out = {}
    for key, points in series.items():
        for kind, (field, _) in MEMORY_KINDS.items():
            k = fit_exponent(*memory_points(points, field))
            if k is not None:
                out[(key[0], labels[key], kind)] = k
    return out


def sweep_points(
    points: Sequence[tuple[float, list[Record]]], field: str, x_of: Callable[[Record], Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(x, mean memory) of a memory series with x read from the records (`x_of`, e.g. the
    forward evaluations), not from t1; positive x and memory only."""
    xs, ys = [], []
    for _, members in points:
        x, y = mean(x_of(r) for r in members), mean(r.get(field) for r in members)
        if x is not None and y is not None and x > 0 and y > 0:
            xs.append(x)
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def sweep_exponents(
    records: Sequence[Record], x_of: Callable[[Record], Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (task, back-end label) of a memory-scaling sweep (one results folder): the
    exponent k of memory ~ x^k for each memory kind (None with fewer than two points),
    the range of x and the checkpoint count (`solver_checkpoints`) where one is recorded."""
    series = memory_series(records)
    labels = group_labels(series)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, points in series.items():
        fit: dict[str, Any] = {}
        xs: list[float] = []
        for kind, (field, _) in MEMORY_KINDS.items():
            x, y = sweep_points(points, field, x_of)
            fit[kind] = fit_exponent(x, y)
            xs += list(x)
        if not xs:
            continue
        fit["x_min"], fit["x_max"] = min(xs), max(xs)
        checkpoints = {r.get("solver_checkpoints") for _, members in points for r in members}
        fit["checkpoints"] = checkpoints.pop() if len(checkpoints) == 1 else None
        out[(key[0], labels[key])] = fit
    return out
