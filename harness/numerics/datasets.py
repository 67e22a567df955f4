"""Observations of a known vector field: the reference trajectories (SciPy's DOP853 at
rtol = atol = 1e-12) and a `Dataset` with extrapolation windows either side (shared by the
trajectory tasks and plugins)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from harness.core.data import Dataset

__all__ = ["solve_truth", "trajectory_dataset"]


def solve_truth(
    field: Any,
    y0: np.ndarray,
    times: np.ndarray,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    method: str = "DOP853",
) -> np.ndarray:
    """Reference trajectories of `field(y)` (a batch function) at `times`, shape (T, B, N).

    `times` is monotonic and starts at the time of `y0`; it may decrease (backward in time).
    """
    y0 = np.asarray(y0, dtype=float)
    shape = y0.shape

    def rhs(_t: float, flat: np.ndarray) -> np.ndarray:
        return np.asarray(field(flat.reshape(shape))).ravel()

    sol = solve_ivp(rhs, (times[0], times[-1]), y0.ravel(), t_eval=times, method=method, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"reference solve failed: {sol.message}")
    return sol.y.T.reshape((len(times), *shape))


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
