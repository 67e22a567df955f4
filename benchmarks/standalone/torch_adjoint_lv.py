"""Stand-alone torchdiffeq `odeint_adjoint` gradient on Lotka-Volterra, without the harness.

The problem of the `lotka_volterra` task (000 §3.2): (alpha, beta, delta, gamma) =
(2/3, 4/3, 1, 1), u0 = (1, 1), 101 observations on [0, 10], MLP 2-64-2 tanh with the
harness's seed-0 initial weights, MSE loss, dopri5 at rtol = atol = 1e-7 forward and
backward.  Prints the loss, the gradient norm and the median time of one value-and-grad
call; compare with the harness's `time_median_s` for `--task lotka_volterra --impl
torch-adjoint` to see what the harness adds.

    python benchmarks/standalone/torch_adjoint_lv.py [--repeats 20] [--tol 1e-7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from lv_problem import lotka_volterra_data, mlp_weights
from torchdiffeq import odeint_adjoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tol", type=float, default=1e-7, help="rtol = atol, forward and adjoint")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    t_np, obs_np, u0_np = lotka_volterra_data()
    f64 = dict(dtype=torch.float64)
    t, obs, u0 = (torch.tensor(a, **f64) for a in (t_np, obs_np, u0_np))
    W0, b0, W1, b1 = params = tuple(torch.tensor(w, **f64, requires_grad=True) for w in mlp_weights())

    def field(_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(y @ W0 + b0) @ W1 + b1

    def value_and_grad() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        pred = odeint_adjoint(
            field, u0, t, rtol=args.tol, atol=args.tol, method="dopri5", adjoint_params=params
        )
        diff = pred - obs
        loss = (diff * diff).sum() / (diff.shape[0] * diff.shape[1])
        return loss.detach(), torch.autograd.grad(loss, params)

    loss, grads = value_and_grad()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        value_and_grad()
        times.append(time.perf_counter() - start)
    gnorm = float(torch.sqrt(sum((g * g).sum() for g in grads)))
    print(f"torchdiffeq odeint_adjoint dopri5, Lotka-Volterra MLP 2-64-2, tol {args.tol:g}")
    print(f"loss {float(loss):.12g}  |grad| {gnorm:.12g}")
    print(f"value_and_grad median {statistics.median(times) * 1e3:.2f} ms over {args.repeats} repeats")


if __name__ == "__main__":
    main()
