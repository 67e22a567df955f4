"""How close is `numpy-adjoint` to the cost of its own model evaluations?

On one task (default `lotka_volterra`, 000 §3.2) this times, interleaved in one process with
one thread: the back-end's value-and-grad call, one right-hand-side evaluation
(`model.rhs`) and one forward + VJP (`model.vjp_numpy`, which runs the forward itself) at
the task's state shape.  It prints the time per evaluation of value-and-grad (its time over
forward + backward evaluations) against two bounds:

- *per evaluation*: one forward + VJP, the cost of a backward evaluation (issue 14's bound);
- *weighted*: forward evaluations at the cost of `rhs`, backward ones at the cost of
  `vjp_numpy`, i.e. the time value-and-grad would take with a solver that costs nothing.

Medians over rounds, with the spread (first and third quartile) of the ratios.

    python -m benchmarks.numpy_adjoint_speed [--task lotka_volterra] [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from benchmarks import common


def seconds(fn: Callable[[], object], number: int) -> float:
    """Mean seconds of `fn` over `number` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="lotka_volterra")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="numpy-adjoint options")
    args = parser.parse_args()

    impl, params = common.build(args.task, "numpy-adjoint")
    for item in args.set:
        key, value = item.split("=", 1)
        impl.config[key] = {"true": True, "false": False}.get(value.lower(), value)
    impl.setup()
    native = impl.load(params)
    impl.value_and_grad_native(native)  # warm-up, and the evaluation counts
    nfe_forward, nfe_backward = impl.last_nfe
    model, y = impl.task.model, np.asarray(impl.data.y0, dtype=np.float64)
    a = np.ones_like(y)
    rhs = lambda: model.rhs(native, y, np)
    vjp = lambda: model.vjp_numpy(native, y, a)
    inner = max(1, 2000 // (nfe_forward + nfe_backward))

    call_s, rhs_s, vjp_s = [], [], []
    for _ in range(args.rounds):  # interleaved: each round measures all three
        call_s.append(seconds(lambda: impl.value_and_grad_native(native), 3))
        rhs_s.append(seconds(rhs, inner * 50))
        vjp_s.append(seconds(vjp, inner * 50))

    n = nfe_forward + nfe_backward
    per_eval = [c / n for c in call_s]
    ratio_vjp = [p / v for p, v in zip(per_eval, vjp_s, strict=True)]
    ratio_weighted = [
        c / (nfe_forward * r + nfe_backward * v) for c, r, v in zip(call_s, rhs_s, vjp_s, strict=True)
    ]
    us = lambda seq: statistics.median(seq) * 1e6
    print(f"numpy-adjoint on {args.task} {dict(impl.config)}, one thread, {args.rounds} interleaved rounds")
    print(f"evaluations: forward {nfe_forward}, backward {nfe_backward}")
    print(f"value-and-grad median {statistics.median(call_s) * 1e3:.3f} ms")
    print(f"time per evaluation {us(per_eval):.2f} us")
    print(f"one rhs {us(rhs_s):.2f} us; one forward + VJP {us(vjp_s):.2f} us")
    q1, q2, q3 = quartiles(ratio_vjp)
    print(f"ratio per evaluation / forward + VJP: {q2:.2f} (quartiles {q1:.2f}-{q3:.2f})")
    q1, q2, q3 = quartiles(ratio_weighted)
    print(f"ratio value-and-grad / weighted bound: {q2:.2f} (quartiles {q1:.2f}-{q3:.2f})")


if __name__ == "__main__":
    main()
