"""Stand-alone NumPy/SciPy continuous adjoint gradient on Lotka-Volterra, without the harness.

The problem of the `lotka_volterra` task (000 §3.2): (alpha, beta, delta, gamma) =
(2/3, 4/3, 1, 1), u0 = (1, 1), 101 observations on [0, 10], MLP 2-64-2 tanh with the
harness's seed-0 initial weights, MSE loss.  The method is that of `numpy-adjoint` (000 §2,
eqs. 2.4-2.5, store-and-interpolate): RK45 forward with dense output, the adjoint ODE for
lambda and mu backward interval by interval with RK45 at the same tolerance, lambda jumping
by dL/du at each observation, the step size carried across restarts.  Prints the loss, the
gradient norm, the evaluation counts and the median time of one value-and-grad call; compare
with the harness's `time_median_s` for `--task lotka_volterra --impl numpy-adjoint` to see
what the harness adds.

    python benchmarks/standalone/numpy_adjoint_lv.py [--repeats 20] [--tol 1e-7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from lv_problem import lotka_volterra_data, mlp_weights
from scipy.integrate import RK45, solve_ivp


def value_and_grad(
    W0: np.ndarray,
    b0: np.ndarray,
    W1: np.ndarray,
    b1: np.ndarray,
    t: np.ndarray,
    obs: np.ndarray,
    u0: np.ndarray,
    tol: float,
) -> tuple[float, np.ndarray, tuple[int, int]]:
    """MSE loss, its gradient (W0, b0, W1, b1 flattened) and (forward, backward) evaluations."""
    shape, n = u0.shape, u0.size

    def field(_t: float, u: np.ndarray) -> np.ndarray:
        return (np.tanh(u.reshape(shape) @ W0 + b0) @ W1 + b1).ravel()

    sol = solve_ivp(
        field, (t[0], t[-1]), u0.ravel(), method="RK45", t_eval=t, dense_output=True, rtol=tol, atol=tol
    )
    pred = sol.y.T.reshape(obs.shape)
    diff = pred - obs
    loss = float((diff * diff).sum() / (diff.shape[0] * diff.shape[1]))
    cot = 2.0 * diff / (diff.shape[0] * diff.shape[1])

    def adjoint(s: float, z: np.ndarray) -> np.ndarray:
        # d(lambda, mu)/dt = -(lambda^T df/du, lambda^T df/dtheta), both from one VJP
        u, lam = sol.sol(s).reshape(shape), z[:n].reshape(shape)
        h = np.tanh(u @ W0 + b0)
        g = (lam @ W1.T) * (1.0 - h * h)
        parts = (g @ W0.T, u.T @ g, g.sum(axis=0), h.T @ lam, lam.sum(axis=0))
        return -np.concatenate([p.ravel() for p in parts])

    z = np.zeros(n + W0.size + b0.size + W1.size + b1.size)
    step, nfe = None, 0
    for i in range(len(t) - 1, 0, -1):
        z[:n] += cot[i].ravel()  # the jump of lambda at t_i
        first = None if step is None else min(step, t[i] - t[i - 1])
        solver = RK45(adjoint, t[i], z, t[i - 1], rtol=tol, atol=tol, first_step=first)
        while solver.status == "running":
            solver.step()
        nfe, z, step = nfe + solver.nfev, solver.y.copy(), solver.h_abs
        solver.fun = solver.fun_vectorized = None  # free it now: break SciPy's reference cycle
    return loss, z[n:], (int(sol.nfev), nfe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tol", type=float, default=1e-7, help="rtol = atol, forward and adjoint")
    args = parser.parse_args()

    t, obs, u0 = lotka_volterra_data()
    weights = mlp_weights()
    loss, grad, nfe = value_and_grad(*weights, t, obs, u0, args.tol)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        value_and_grad(*weights, t, obs, u0, args.tol)
        times.append(time.perf_counter() - start)
    print(f"NumPy/SciPy continuous adjoint, RK45, Lotka-Volterra MLP 2-64-2, tol {args.tol:g}")
    print(f"loss {loss:.12g}  |grad| {np.linalg.norm(grad):.12g}  nfe forward {nfe[0]} backward {nfe[1]}")
    print(f"value_and_grad median {statistics.median(times) * 1e3:.2f} ms over {args.repeats} repeats")


if __name__ == "__main__":
    main()
