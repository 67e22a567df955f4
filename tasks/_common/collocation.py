"""Collocation: states and time derivatives estimated from observations by kernel smoothing.

Ref. [10] of 000 (Roesch, Rackauckas & Stumpf, "Collocation based training of neural
ordinary differential equations", 2021), which 000 §4.1 uses to train its HNN, and
DiffEqFlux's `collocate_data`: at every time t the observations are fitted by kernel-weighted
least squares with a local polynomial in (t_j - t); the local linear fit's intercept is the
smoothed state, the local quadratic fit's slope the derivative.  Training then fits the
vector field to these pairs, f(u_hat(t_i)) ~ u_hat'(t_i), with no ODE solve.

Bandwidth: `collocate` takes it in time units.  `default_bandwidth` is the rule of ref.
[10] / DiffEqFlux, h = n^(-1/5) n^(-3/35) (log n)^(-1/16), an asymptotic rule for times
on [0, 1]; it is scaled here by the length of the time window (DiffEqFlux applies it to the
raw times, which only means what the paper meant on a unit window).  It is meant for noisy
data: on noise-free data a few sample spacings (the local fits then nearly interpolate)
give far smaller derivative errors, which is why callers may pass their own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.core.models import AbstractVectorField, Params
from harness.core.protocols import TrainCallback
from harness.numerics import driver

__all__ = ["KERNELS", "collocate", "default_bandwidth", "fit_collocation"]

#: kernels K(x) on the scaled distance x = (t_j - t) / h; the compact ones vanish for |x| >= 1
KERNELS = {
    "epanechnikov": lambda x: np.where(np.abs(x) < 1.0, 0.75 * (1.0 - x * x), 0.0),
    "triangular": lambda x: np.where(np.abs(x) < 1.0, 1.0 - np.abs(x), 0.0),
    "gaussian": lambda x: np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi),
}


def default_bandwidth(t: np.ndarray) -> float:
    """Ref. [10]'s rule n^(-1/5) n^(-3/35) (log n)^(-1/16), times the window length."""
    n = len(t)
    return float((t[-1] - t[0]) * n ** (-1 / 5) * n ** (-3 / 35) * np.log(n) ** (-1 / 16))


def collocate(
    t: np.ndarray,
    y: np.ndarray,
    *,
    bandwidth: float | None = None,
    kernel: str = "epanechnikov",
    state_degree: int = 1,
    derivative_degree: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed states and their time derivatives at the observation times.

    **Arguments:**

    - `t`: observation times (P,), increasing.
    - `y`: observations (P, ...) (e.g. (P, B, N)): every trailing entry is smoothed alone.
    - `bandwidth`: kernel half-width in time units; None takes `default_bandwidth(t)`.
    - `kernel`: one of `KERNELS`.
    - `state_degree`, `derivative_degree`: degrees of the local polynomials whose intercept
      is the state and whose slope is the derivative; 1 and 2 as in ref. [10] / DiffEqFlux
      (p - nu odd for the nu-th derivative, Fan & Gijbels 1996, keeps the boundary bias of
      the interior's order; on noise-free data a higher state degree, e.g. 3, removes the
      local linear fit's O(h^2) smoothing bias).

    **Returns:** `(y_hat, dy_hat)`, both of the shape of `y`: the intercept of the local
    state fit and the slope of the local derivative fit at each t_i.

    Raises `ValueError` when a window holds too few observations for the local polynomials
    (a compact kernel with a bandwidth below two sample spacings at the ends).
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    h = default_bandwidth(t) if bandwidth is None else float(bandwidth)
    flat = y.reshape(len(t), -1)
    y_hat, dy_hat = np.empty_like(flat), np.empty_like(flat)
    for i, ti in enumerate(t):
        dt = t - ti
        w = KERNELS[kernel](dt / h) / h
        if np.count_nonzero(w) <= max(state_degree, derivative_degree, 1):
            raise ValueError(
                f"collocation: too few observations within bandwidth {h:.3g} of t = {ti:.3g}; "
                "use a larger bandwidth"
            )
        # weighted least squares, scaled by h so that the normal equations stay well conditioned
        x = dt / h
        for degree, target, row in ((state_degree, y_hat, 0), (derivative_degree, dy_hat, 1)):
            basis = np.vander(x, degree + 1, increasing=True)  # 1, x, x^2
            sw = np.sqrt(w)[:, None]
            coef, *_ = np.linalg.lstsq(sw * basis, sw * flat, rcond=None)
            target[i] = coef[row] / (h if row == 1 else 1.0)
    return y_hat.reshape(y.shape), dy_hat.reshape(y.shape)


def fit_collocation(
    model: AbstractVectorField,
    states: np.ndarray,
    derivatives: np.ndarray,
    params: Params,
    *,
    iters: int,
    lr: float,
    callback: TrainCallback | None = None,
) -> tuple[Params, list[float], float]:
    """Fit a vector field to estimated derivatives: Adam (the training driver's) on
    L = mean_i |f(y_i; theta) - dy_i|^2, no ODE solve (ref. [10] of 000).

    **Arguments:**

    - `model`: any model spec; its `rhs` (NumPy) and hand-written `vjp_numpy` give L and
      dL/dtheta (cotangent 2 (f - dy) / P).
    - `states`, `derivatives`: the pairs (y_i, dy_i), each (P, N), e.g. from `collocate`.
    - `params`: the initial parameters; `iters`, `lr`: Adam's; `callback(i, loss)` after
      every step.

    **Returns:** `(params, losses, final_loss)`: the parameters of the lowest L seen (the
    best iterate of the training driver, `harness.numerics.driver.adam`), L before every
    step, and the L of those parameters.  Adam at a constant
    learning rate does not settle here: late in the fit L jumps between ~5e-6 and ~1e-3
    (`hnn_double_pendulum`, lr 1e-2), so the last iterate is a matter of rounding (a final L
    of 1.7e-3 on one CPU, below 6.7e-4 on another); the best one is not.
    """
    count = states.shape[0]

    def loss_and_grad(p: Params) -> tuple[float, Params]:
        resid = model.rhs(p, states, np) - derivatives
        _, grad = model.vjp_numpy(p, states, 2.0 * resid / count)
        return float(np.sum(resid * resid) / count), grad

    result = driver.adam(_Objective(loss_and_grad), params, iters=iters, lr=lr, callback=callback)
    return result.params, result.loss_history, loss_and_grad(result.params)[0]


class _Objective:
    """The driver's objective (`harness.numerics.driver.Objective`) from a loss-and-gradient
    function."""

    def __init__(self, function: Callable[[Params], tuple[float, Params]]) -> None:
        self._function = function

    def value_and_grad(self, params: Params) -> tuple[float, Params]:
        return self._function(params)
