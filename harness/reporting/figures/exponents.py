"""The memory-exponent analysis: peak memory ~ t1^k fitted per (task, back-end) over a
sweep of the integration horizon t1 (`harness study memory-scaling`, the report's table
and the memory-scaling figure).  No plotting library is needed."""

from __future__ import annotations

from collections.abc import Sequence

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

__all__ = ["MEMORY_KINDS", "fit_exponent", "memory_exponents", "memory_points", "memory_series"]

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
