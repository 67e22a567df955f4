"""The numerics of the checks: finite differences and a solve that shares no code with any
back-end or reference gradient (SciPy's DOP853 on the model's array-API `rhs` with NumPy).

Nothing here calls a model's hand-written `vjp_numpy`: what is checked against these
numbers never rests on what it checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from harness.core.composed import compose
from harness.core.models import AbstractModel, Params, flatten, unflatten

__all__ = ["central_difference", "directional_difference", "numpy_predictor", "solve"]

#: the independent solve's tolerances (SciPy's DOP853 accepts rtol down to 100 eps)
SOLVE_TOL = 1e-12


def central_difference(phi: Callable[[float], float], h: float) -> float:
    """d phi / ds at s = 0 by the fourth-order central stencil
    (-phi(2h) + 8 phi(h) - 8 phi(-h) + phi(-2h)) / (12 h): truncation O(h^4 phi^(5)),
    rounding O(eps |phi| / h)."""
    return (-phi(2 * h) + 8 * phi(h) - 8 * phi(-h) + phi(-2 * h)) / (12 * h)


def directional_difference(f: Callable[[np.ndarray], float], x: np.ndarray, v: np.ndarray, h: float) -> float:
    """The derivative of `f` at `x` in the direction `v` (`central_difference`)."""
    return central_difference(lambda s: float(f(x + s * v)), h)


def solve(
    model: AbstractModel, params: Params, y0: np.ndarray, times: np.ndarray, *, tol: float = SOLVE_TOL
) -> np.ndarray:
    """States at `times` (monotonic, `times[0]` the time of `y0`), shape (len(times), *y0.shape):
    DOP853 at rtol = atol = `tol` on the whole batch as one system (a vector field), or the
    model's `states` (a discrete map)."""
    times = np.asarray(times, dtype=float)
    y0 = np.asarray(y0, dtype=float)
    composed = compose(model)  # encode, solve the core (or apply a map), decode every state

    def dop853(core: Params, t: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h0 = np.asarray(h0, dtype=float)
        if len(t) == 1 or t[0] == t[-1]:
            return np.broadcast_to(h0, (len(t), *h0.shape)).copy(), t
        shape = h0.shape

        def fun(_t: float, u: np.ndarray) -> np.ndarray:
            return np.asarray(composed.rhs(core, u.reshape(shape), np), dtype=float).ravel()

        sol = solve_ivp(fun, (t[0], t[-1]), h0.ravel(), t_eval=t, method="DOP853", rtol=tol, atol=tol)
        if not sol.success or sol.y.shape[1] != len(t):
            raise RuntimeError(f"independent DOP853 solve failed: {sol.message}")
        return sol.y.T.reshape((len(t), *shape)), t

    return np.asarray(composed.states(params, times, y0, np, dop853)[0], dtype=float)


def numpy_predictor(model: AbstractModel, params: Params, *, tol: float = 1e-8) -> Callable[..., Any]:
    """A `Predictor` from `solve` (no back-end): NaN states where the solve fails (an
    untrained model may blow up in an extrapolation window)."""

    def predict(times: np.ndarray, y0: np.ndarray) -> np.ndarray:
        try:
            return solve(model, params, y0, times, tol=tol)
        except (RuntimeError, FloatingPointError, OverflowError):
            return np.full((len(times), *np.shape(y0)), np.nan)

    return predict


def loss_at(task: Any, model: AbstractModel, params: Params, data: Any) -> float:
    """The task loss of `params` through `solve` (the loss every back-end differentiates:
    the model solved from `data.y0` at `data.t`, against `data.y`)."""
    return float(task.loss(solve(model, params, data.y0, data.t), data.y))


def param_direction(params: Params, rng: np.random.Generator) -> np.ndarray:
    """A random unit direction in the flattened parameter space."""
    v = rng.normal(size=flatten(params).size)
    return v / np.linalg.norm(v)


def shift(params: Params, v: np.ndarray, s: float) -> Params:
    """`params + s v` (v flattened)."""
    return unflatten(flatten(params) + s * v, params)
