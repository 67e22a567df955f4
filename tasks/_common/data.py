"""Building a `Dataset` from a true vector field (shared by the trajectory tasks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.core.protocols import Dataset
from tasks._common.physics import solve_truth


def trajectory_dataset(
    field: Callable[[np.ndarray], np.ndarray],
    y0: np.ndarray,
    t: np.ndarray,
    *,
    extrap: float,
    n_extrap: int,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    truth: Mapping[str, Any] | None = None,
) -> Dataset:
    """Observations of `field` from `y0` at times `t`, plus windows of length `extrap`
    (with `n_extrap` points each) forward of `t[-1]` and backward of `t[0]`; truth from
    DOP853 at rtol = atol = 1e-12, Gaussian noise of standard deviation `noise` added."""
    y0 = np.atleast_2d(np.asarray(y0, dtype=float))
    y_true = solve_truth(field, y0, t)
    t_fwd = t[-1] + np.linspace(0.0, extrap, n_extrap + 1)[1:]
    t_bwd = t[0] - np.linspace(0.0, extrap, n_extrap + 1)[1:]
    y_fwd = solve_truth(field, y0, np.concatenate([t, t_fwd]))[len(t) :] if extrap > 0 else None
    y_bwd = solve_truth(field, y0, np.concatenate([t[:1], t_bwd]))[1:] if extrap > 0 else None
    y = y_true.copy()
    if noise > 0:
        assert rng is not None
        y = y + rng.normal(0.0, noise, size=y.shape)
    kwargs: dict[str, Any] = {}
    if extrap > 0:
        kwargs = dict(t_forward=t_fwd, y_forward=y_fwd, t_backward=t_bwd, y_backward=y_bwd)
    return Dataset(t=t, y=y, y0=y0, y_true=y_true, truth=dict(truth or {}), **kwargs)
