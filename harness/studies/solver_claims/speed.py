"""torchdiffeq against diffrax on diffrax's own benchmark, `benchmarks/small_neural_ode.py`
(github.com/patrick-kidger/diffrax): a batch of 64 states of size 4, the vector field an
MLP 4-32-4 (softplus, then tanh), the same weights in both, dopri5 at rtol = atol = 1e-6
from t = 0 to t1 = 100, float32 as there; the loss the sum of the saved states, saved at
t1 only or at 100 times (`multiple`), evaluated or differentiated (`grad`: torchdiffeq
backpropagates through its solver, diffrax uses `BacksolveAdjoint`, as the benchmark does).

Measured here as the ratio of wall times, torchdiffeq over diffrax, interleaved (the two
alternate, each repeat in the other order), diffrax compiled ahead of time (its compile time
reported apart, never in the ratio), every JAX result blocked on before the clock is read,
garbage collection off while the clock runs (as in the benchmark), one untimed warm-up call
of each first."""

from __future__ import annotations

import gc
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BATCH", "CONFIGS", "speed_ratios"]

BATCH = 64
TOL = 1e-6
#: (multiple, grad) as the benchmark's four runs
CONFIGS: tuple[tuple[bool, bool], ...] = ((False, False), (True, False), (False, True), (True, True))


def _jax_side(t1: float, multiple: bool, grad: bool) -> tuple[Callable[[], Any], float, Any, int]:
    """The compiled diffrax call (params and y0 bound), its compile time in seconds, the
    MLP (to copy into torch), and diffrax's forward step count."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    mlp = eqx.nn.MLP(4, 4, 32, 1, activation=jax.nn.softplus, final_activation=jnp.tanh, key=jr.PRNGKey(0))
    params, static = eqx.partition(mlp, eqx.is_array)
    y0 = jr.normal(jr.PRNGKey(1), (BATCH, 4), dtype=jnp.float32)
    saveat = (
        diffrax.SaveAt(ts=jnp.linspace(0.0, t1, 100, dtype=jnp.float32))
        if multiple
        else diffrax.SaveAt(t0=True, t1=True)
    )

    # the weights go in as `args`: BacksolveAdjoint differentiates with respect to those
    term = diffrax.ODETerm(lambda t, z, p: jax.vmap(eqx.combine(p, static))(z))

    def solve(p: Any, y: Any) -> Any:
        return diffrax.diffeqsolve(
            term, diffrax.Dopri5(), t0=0.0, t1=t1, dt0=None, y0=y, args=p,
            stepsize_controller=diffrax.PIDController(rtol=TOL, atol=TOL), saveat=saveat,
            adjoint=diffrax.BacksolveAdjoint(),
        )  # fmt: skip

    def loss(p: Any, y: Any) -> Any:
        return jnp.sum(solve(p, y).ys)

    fn = jax.value_and_grad(loss, argnums=(0, 1)) if grad else loss
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(params, y0).compile()
    compile_s = time.perf_counter() - start
    steps = int(jax.jit(lambda p, y: solve(p, y).stats["num_steps"])(params, y0))
    return (lambda: jax.block_until_ready(compiled(params, y0))), compile_s, (mlp, y0), steps


def _torch_side(
    mlp: Any, y0_jax: Any, t1: float, multiple: bool, grad: bool
) -> tuple[Callable[[], Any], int]:
    """The torchdiffeq call on the same weights and initial states, and its forward steps
    (evaluations less the 2 of the initial step size, 6 per step)."""
    import numpy as np
    import torch
    import torchdiffeq

    net: Any = torch.nn.Sequential(
        torch.nn.Linear(4, 32), torch.nn.Softplus(), torch.nn.Linear(32, 4), torch.nn.Tanh()
    )  # fmt: skip
    with torch.no_grad():
        for index, layer in ((0, mlp.layers[0]), (2, mlp.layers[1])):
            net[index].weight.copy_(torch.tensor(np.asarray(layer.weight)))
            net[index].bias.copy_(torch.tensor(np.asarray(layer.bias)))
    with warnings.catch_warnings():  # deprecated in this torch, still what the benchmark runs
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        scripted = torch.jit.script(net)
    calls = [0]

    def func(t: Any, y: Any) -> Any:
        calls[0] += 1
        return scripted(y)

    y0 = torch.tensor(np.asarray(y0_jax))
    t = torch.linspace(0, t1, 100) if multiple else torch.tensor([0.0, t1])

    def call() -> None:
        y = y0.detach().requires_grad_() if grad else y0
        ys: Any = torchdiffeq.odeint(func, y, t, method="dopri5", rtol=TOL, atol=TOL)
        out = ys.sum()
        if grad:
            out.backward()

    with torch.no_grad():
        torchdiffeq.odeint(func, y0, torch.tensor([0.0, t1]), method="dopri5", rtol=TOL, atol=TOL)
    steps = (calls[0] - 2) // 6
    return call, steps


def _clock(fn: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def speed_ratios(
    repeats: int, t1: float = 100.0, configs: Sequence[tuple[bool, bool]] = CONFIGS
) -> list[dict[str, Any]]:
    """Per configuration: diffrax's compile time, the median and spread (min, max) of each
    library's wall time over `repeats` interleaved calls, the median of the per-repeat
    ratios torchdiffeq / diffrax, and each library's forward step count."""
    rows = []
    for multiple, grad in configs:
        jax_call, compile_s, (mlp, y0), jax_steps = _jax_side(t1, multiple, grad)
        torch_call, torch_steps = _torch_side(mlp, y0, t1, multiple, grad)
        jax_call()  # warm-up, untimed
        torch_call()
        times: dict[str, list[float]] = {"torchdiffeq": [], "diffrax": []}
        for r in range(repeats):
            order = (("torchdiffeq", torch_call), ("diffrax", jax_call))
            for name, fn in order if r % 2 == 0 else order[::-1]:
                times[name].append(_clock(fn))
        ratios = [a / b for a, b in zip(times["torchdiffeq"], times["diffrax"], strict=True)]
        rows.append(
            {
                "multiple": multiple, "grad": grad, "t1": t1, "repeats": repeats,
                "diffrax_compile_s": compile_s,
                **{f"{k}_s_median": statistics.median(v) for k, v in times.items()},
                **{f"{k}_s_min": min(v) for k, v in times.items()},
                **{f"{k}_s_max": max(v) for k, v in times.items()},
                "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "torchdiffeq_steps": torch_steps, "diffrax_steps": jax_steps,
            }
        )  # fmt: skip
    return rows
