"""The one fixed-step schedule, shared by every fixed-step solver (RK4 unrolled, the
implicit midpoint rule), so that two solvers at the same `dt` take the same steps."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

__all__ = ["step_schedule"]


def step_schedule(times: Iterable[float], dt: float) -> list[tuple[float, int]]:
    """`(h, n)` per interval [t_{i-1}, t_i]: ``n = ceil(|t_i - t_{i-1}| / dt)`` equal steps of
    signed size ``h = (t_i - t_{i-1}) / n``, so that every output time is hit exactly.

    A relative slack of 1e-9 keeps 0.1 / 0.01 = 10.000000000000002 at 10 steps (an absolute
    slack would depend on the interval's scale)."""
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    schedule = []
    for t0, t1 in itertools.pairwise(times):
        delta = float(t1) - float(t0)
        n = max(1, math.ceil(abs(delta) / dt * (1.0 - 1e-9)))
        schedule.append((delta / n, n))
    return schedule
