"""Stand-alone backpropagation through fixed-step RK4 on Lotka-Volterra, without the harness.

The problem of the `lotka_volterra` task (000 §3.2): (alpha, beta, delta, gamma) =
(2/3, 4/3, 1, 1), u0 = (1, 1), 101 observations on [0, 10], MLP 2-64-2 tanh with the
harness's seed-0 initial weights, MSE loss; classical RK4 (002 §3.1) with
ceil(0.1 / dt) steps per observation interval, every step recorded by torch autograd.
Prints the loss, the gradient norm and the median time of one value-and-grad call;
compare with the harness's `time_median_s` for `--task lotka_volterra --impl rk4-unrolled`.

    python benchmarks/standalone/rk4_unrolled_lv.py [--repeats 20] [--dt 0.1]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from lv_problem import lotka_volterra_data, mlp_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dt", type=float, default=0.1, help="largest RK4 step (the task default)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    t_np, obs_np, u0_np = lotka_volterra_data()
    f64 = dict(dtype=torch.float64)
    obs, u0 = torch.tensor(obs_np, **f64), torch.tensor(u0_np, **f64)
    W0, b0, W1, b1 = params = tuple(torch.tensor(w, **f64, requires_grad=True) for w in mlp_weights())
    deltas = np.diff(t_np)
    steps = [max(1, math.ceil(abs(d) / args.dt * (1 - 1e-9))) for d in deltas]

    def f(y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(y @ W0 + b0) @ W1 + b1

    def value_and_grad() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        y, ys = u0, [u0]
        for d, n in zip(deltas, steps, strict=True):
            h = float(d) / n
            for _ in range(n):  # y + h/6 (k1 + 2 k2 + 2 k3 + k4), scalars folded into alpha
                k1 = f(y)
                k2 = f(torch.add(y, k1, alpha=h / 2))
                k3 = f(torch.add(y, k2, alpha=h / 2))
                k4 = f(torch.add(y, k3, alpha=h))
                y = torch.add(y, torch.add(k1 + k4, k2 + k3, alpha=2.0), alpha=h / 6)
            ys.append(y)
        diff = torch.stack(ys) - obs
        loss = (diff * diff).sum() / (diff.shape[0] * diff.shape[1])
        return loss.detach(), torch.autograd.grad(loss, params)

    loss, grads = value_and_grad()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        value_and_grad()
        times.append(time.perf_counter() - start)
    gnorm = float(torch.sqrt(sum((g * g).sum() for g in grads)))
    print(f"RK4 unrolled (torch autograd), Lotka-Volterra MLP 2-64-2, dt {args.dt:g}, {sum(steps)} steps")
    print(f"loss {float(loss):.12g}  |grad| {gnorm:.12g}")
    print(f"value_and_grad median {statistics.median(times) * 1e3:.2f} ms over {args.repeats} repeats")


if __name__ == "__main__":
    main()
