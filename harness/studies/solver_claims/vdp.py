"""Step counts on the Van der Pol oscillator (Lienen and Guennemann, "torchode: A Parallel
ODE Solver for PyTorch", 2022): the batch solved as one system (joint step control, one
step size for all samples) against per-sample step control, and torchode's PID controller
against its integral controller.

Van der Pol in its standard form, ``x' = y, y' = mu (1 - x^2) y - x``, stiff for large mu,
over one cycle (`period`), initial conditions drawn uniformly from [-2, 2]^2.  Steps are
counted, not timed: accepted and rejected together (every step the solver attempts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["controller_steps", "initial_conditions", "joint_vs_per_sample", "period"]

#: the Airy constant of the relaxation-oscillation period (minus the first zero of Ai)
_AIRY = 2.338107


def period(mu: float) -> float:
    """One cycle of Van der Pol at `mu`: the asymptotic period of Dorodnitsyn,
    ``(3 - 2 ln 2) mu + 3 a mu^(-1/3)`` (a = 2.3381, the first zero of -Ai), about 42.7 at
    mu = 25; below mu = 1 the harmonic period 2 pi, which it tends to at mu = 0."""
    if mu < 1.0:
        return 2.0 * math.pi
    return (3.0 - 2.0 * math.log(2.0)) * mu + 3.0 * _AIRY * mu ** (-1.0 / 3.0)


def _vector_field(mu: float) -> Any:
    def f(t: Any, y: Any) -> Any:
        import torch

        x, v = y[..., 0], y[..., 1]
        return torch.stack((v, mu * (1.0 - x * x) * v - x), dim=-1)

    return f


def initial_conditions(batch: int, seed: int) -> Any:
    """`batch` initial states, uniform on [-2, 2]^2, float64; the first n of a larger draw
    are the draw of n (the batch sizes of a sweep nest)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.uniform(-2.0, 2.0, size=(batch, 2)), dtype=torch.float64)


def _torchode_steps(y0: Any, mu: float, tol: float, controller: str = "integral") -> Any:
    """torchode's Dopri5 with per-sample step control: the steps each sample attempted."""
    import torch
    import torchode

    to: Any = torchode  # untyped use: torchode annotates with torchtyping shapes
    term = to.ODETerm(_vector_field(mu))
    method = to.Dopri5(term=term)
    if controller == "integral":
        control: Any = to.IntegralController(atol=tol, rtol=tol, term=term)
    else:  # the coefficients torchode's documentation gives for stiff problems
        control = to.PIDController(atol=tol, rtol=tol, pcoeff=0.2, icoeff=0.5, dcoeff=0.0, term=term)
    solver = to.AutoDiffAdjoint(method, control, max_steps=1_000_000)
    t_end = torch.full((y0.shape[0],), period(mu), dtype=torch.float64)
    problem = to.InitialValueProblem(y0=y0, t_start=torch.zeros_like(t_end), t_end=t_end)
    with torch.no_grad():
        solution = solver.solve(problem)
    if not bool((solution.status == 0).all()):
        raise RuntimeError(f"torchode did not finish Van der Pol mu={mu}: status {solution.status.tolist()}")
    return solution.stats["n_steps"]


def _joint_torchode_steps(y0: Any, mu: float, tol: float) -> int:
    """torchode on the batch flattened into one sample: one step size for all (the RMS
    norm then runs over the whole batch, as torchdiffeq's does)."""
    f = _vector_field(mu)
    batch = y0.shape[0]
    term_f = lambda t, z: f(t, z.reshape(1, batch, 2)).reshape(1, 2 * batch)
    import torch
    import torchode

    to: Any = torchode
    term = to.ODETerm(term_f)
    solver = to.AutoDiffAdjoint(
        to.Dopri5(term=term), to.IntegralController(atol=tol, rtol=tol, term=term), max_steps=1_000_000
    )
    t_end = torch.full((1,), period(mu), dtype=torch.float64)
    problem = to.InitialValueProblem(y0=y0.reshape(1, -1), t_start=torch.zeros_like(t_end), t_end=t_end)
    with torch.no_grad():
        solution = solver.solve(problem)
    return int(solution.stats["n_steps"][0])


def _torchdiffeq_steps(y0: Any, mu: float, tol: float) -> int:
    """torchdiffeq's dopri5 on the stacked batch (its only way to batch: one system, one
    step size): steps from its evaluations, 2 for the initial step size and 6 per
    attempted step (the seventh stage is the next step's first, FSAL)."""
    import torch
    import torchdiffeq

    f = _vector_field(mu)
    calls = [0]

    def counted(t: Any, y: Any) -> Any:
        calls[0] += 1
        return f(t, y)

    t = torch.tensor([0.0, period(mu)], dtype=torch.float64)
    with torch.no_grad():
        torchdiffeq.odeint(counted, y0, t, method="dopri5", rtol=tol, atol=tol)
    steps, rest = divmod(calls[0] - 2, 6)
    if rest:
        raise RuntimeError(f"torchdiffeq made {calls[0]} evaluations, not 2 + 6 per step")
    return steps


def joint_vs_per_sample(batches: Sequence[int], mu: float, tol: float, seed: int) -> list[dict[str, Any]]:
    """Per batch size: steps of torchdiffeq on the stacked batch, of torchode on the
    flattened batch (the same joint control in torchode's own solver), and torchode's
    per-sample steps (max: its loop's iterations; mean; per sample at batch 1)."""
    rows = []
    y_all = initial_conditions(max(batches), seed)
    for batch in batches:
        y0 = y_all[:batch]
        per_sample = _torchode_steps(y0, mu, tol)
        rows.append(
            {
                "batch": int(batch),
                "torchdiffeq_joint_steps": _torchdiffeq_steps(y0, mu, tol),
                "torchode_joint_steps": _joint_torchode_steps(y0, mu, tol),
                "torchode_per_sample_steps_max": int(per_sample.max()),
                "torchode_per_sample_steps_mean": float(per_sample.double().mean()),
            }
        )
    return rows


def controller_steps(mus: Sequence[float], batch: int, tol: float, seed: int) -> list[dict[str, Any]]:
    """Per mu: torchode's mean per-sample steps over `batch` initial conditions with the
    integral controller and with the PID controller, and the PID's saving
    ``1 - pid / integral``."""
    y0 = initial_conditions(batch, seed)
    rows = []
    for mu in mus:
        integral = float(_torchode_steps(y0, mu, tol, "integral").double().mean())
        pid = float(_torchode_steps(y0, mu, tol, "pid").double().mean())
        rows.append(
            {"mu": float(mu), "t1": period(mu), "integral_steps_mean": integral, "pid_steps_mean": pid,
             "pid_saving": 1.0 - pid / integral}
        )  # fmt: skip
    return rows
