"""The Lotka-Volterra problem of the `lotka_volterra` task (000 §3.2), for the stand-alone
scripts beside this file: data and seed-0 MLP weights written with NumPy and SciPy only,
so that the scripts share no code with the harness yet solve exactly its problem."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.integrate import solve_ivp


def lotka_volterra_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (101,), observations (101, 1, 2) and u0 (1, 2), truth from DOP853 at 1e-12."""
    alpha, beta, delta, gamma = 2 / 3, 4 / 3, 1.0, 1.0
    t = np.linspace(0.0, 10.0, 101)
    u0 = np.array([1.0, 1.0])
    rhs = lambda _, u: [alpha * u[0] - beta * u[0] * u[1], delta * u[0] * u[1] - gamma * u[1]]
    sol = solve_ivp(rhs, (t[0], t[-1]), u0, t_eval=t, method="DOP853", rtol=1e-12, atol=1e-12)
    return t, sol.y.T[:, None, :], u0[None, :]


def mlp_weights(seed: int = 0, sizes: tuple[int, ...] = (2, 64, 2)) -> list[np.ndarray]:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights (in, out) and biases, drawn in the order
    W0, b0, W1, b1 from one generator: the harness's `MLP.init_params(seed)`."""
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1.0 / np.sqrt(fan_in)
        out += [
            rng.uniform(-bound, bound, size=(fan_in, fan_out)),
            rng.uniform(-bound, bound, size=(fan_out,)),
        ]
    return out
