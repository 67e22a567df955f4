"""Stand-alone timing of the `jax-checkpoint` gradient on Lotka-Volterra, without the harness.

The same computation as `python -m harness run --task lotka_volterra --impl jax-checkpoint`
written with jax, diffrax, NumPy and SciPy only: data of 000 §3.2 ((alpha, beta, delta,
gamma) = (2/3, 4/3, 1, 1), u0 = (1, 1), 101 points on [0, 10], DOP853 at 1e-12), an MLP
2-64-2 tanh with PyTorch's default initialisation from `numpy.random.default_rng(0)` (the
harness's weights), Tsit5 + PID at rtol = atol = 1e-7, `RecursiveCheckpointAdjoint`.  The
jitted value-and-grad is timed with `jax.block_until_ready`, compilation apart; comparing
its median with the harness's shows that the harness adds no overhead.

    python benchmarks/standalone/jax_checkpoint_lv.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

jax.config.update("jax_enable_x64", True)  # before any array exists


def lotka_volterra_data(n_obs: int = 101, t1: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observation times (P,), initial state (1, 2), observations (P, 1, 2)."""
    alpha, beta, delta, gamma = 2.0 / 3.0, 4.0 / 3.0, 1.0, 1.0

    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        return np.array([alpha * u[0] - beta * u[0] * u[1], delta * u[0] * u[1] - gamma * u[1]])

    t = np.linspace(0.0, t1, n_obs)
    u0 = np.array([1.0, 1.0])
    sol = solve_ivp(rhs, (0.0, t1), u0, t_eval=t, method="DOP853", rtol=1e-12, atol=1e-12)
    return t, u0[None], sol.y.T[:, None, :]


def mlp_params(sizes: tuple[int, ...] = (2, 64, 2), seed: int = 0) -> dict[str, np.ndarray]:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases, W0, b0, W1, b1 in that order."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"W{i}"] = rng.uniform(-bound, bound, size=(fan_in, fan_out))
        params[f"b{i}"] = rng.uniform(-bound, bound, size=(fan_out,))
    return params


def vector_field(t: jax.Array, y: jax.Array, params: dict[str, jax.Array]) -> jax.Array:
    return jnp.tanh(y @ params["W0"] + params["b0"]) @ params["W1"] + params["b1"]


def loss(params: dict[str, jax.Array], t: jax.Array, y0: jax.Array, obs: jax.Array) -> jax.Array:
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Tsit5(),
        t[0],
        t[-1],
        None,
        y0,
        params,
        saveat=diffrax.SaveAt(ts=t),
        stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-7),
        adjoint=diffrax.RecursiveCheckpointAdjoint(),
        max_steps=4096,
    )
    diff = sol.ys - obs
    return (diff * diff).sum() / (diff.shape[0] * diff.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    repeats = parser.parse_args().repeats

    args = tuple(jnp.asarray(a) for a in lotka_volterra_data())
    params = {k: jnp.asarray(v) for k, v in mlp_params().items()}
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    start = time.perf_counter()
    value, _ = jax.block_until_ready(value_and_grad(params, *args))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(value_and_grad(params, *args))
        times.append(time.perf_counter() - start)
    q25, q50, q75 = np.percentile(times, [25, 50, 75])
    print(f"jax {jax.__version__}, diffrax {diffrax.__version__}, device {jax.devices()[0]}")
    print(f"loss {float(value):.15g}")
    print(f"first call (compilation included) {first:.3f} s")
    print(f"value-and-grad median {q50 * 1e3:.3f} ms (IQR {(q75 - q25) * 1e3:.3f} ms, {repeats} repeats)")


if __name__ == "__main__":
    main()
