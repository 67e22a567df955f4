"""The one training driver: every back-end trains through it, so every back-end takes the
same steps from the same weights and the same gradients (#25).

A back-end provides its loss and gradient at NumPy parameters (`Objective`, i.e.
`AbstractBackend.value_and_grad`) and knows nothing of optimisers.  The driver runs
the phases a task's training protocol declares:

- `adam`: Adam (PyTorch's and optax's update, `harness.numerics.optim.Adam`) for a number of
  gradient evaluations;
- `lbfgs`: a guarded L-BFGS polish through `scipy.optimize.minimize` (L-BFGS-B, no
  bounds), the field's standard last phase for small full-batch problems.  A solve that
  fails or gives a non-finite loss (e.g. a trial step into a stiff region where the solver
  hits its step limit) is a *rejected* evaluation: the line search sees a large loss and
  steps back, and the best accepted iterate is what the phase returns.

Budgets count gradient evaluations, never seconds: `callback(i, loss)` (a
`harness.numerics.training.TrainingMonitor`) sees every evaluation and may stop training
(its target, its wall-clock safety net).  Each phase returns the best iterate it evaluated.
`convergence` says whether the result is converged, by which criterion.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from harness.core.models import Params, flatten, unflatten
from harness.core.protocols import TrainCallback, TrainResult
from harness.numerics.optim import Adam

__all__ = [
    "OWN_STOPS",
    "PLATEAU_RTOL",
    "Convergence",
    "Objective",
    "adam",
    "convergence",
    "gradient_norm",
    "lbfgs",
]


class Objective(Protocol):
    """What the driver trains: loss and gradient at NumPy parameters."""

    def value_and_grad(self, params: Params) -> tuple[float, Params]: ...


class _Stop(Exception):
    """The callback asked to stop, or the gradient met the stop rule (raised through
    `scipy.optimize.minimize`)."""


@dataclasses.dataclass
class _Best:
    """The lowest finite loss seen and its parameters."""

    loss: float = math.inf
    params: Params | None = None

    def offer(self, loss: float, params: Params) -> None:
        if math.isfinite(loss) and loss < self.loss:
            self.loss, self.params = loss, params


def _numpy(params: Params) -> Params:
    return {
        k: np.array(v, dtype=float if np.asarray(v).dtype.kind != "f" else None) for k, v in params.items()
    }


def adam(
    objective: Objective,
    params: Params,
    *,
    iters: int,
    lr: float,
    callback: TrainCallback | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> TrainResult:
    """At most `iters` Adam steps from `params`, one gradient evaluation each.

    `loss_history[i]` is the loss at the i-th iterate (before its update); `callback(i, loss)`
    runs after each evaluation and training stops when it returns True or the loss is not
    finite.  Returns the best iterate evaluated (lowest finite loss)."""
    optimiser, history, best = Adam(lr, betas, eps), [], _Best()
    params = _numpy(params)
    start = time.perf_counter()
    for i in range(iters):
        loss, grad = objective.value_and_grad(params)
        loss = float(loss)
        history.append(loss)
        best.offer(loss, params)
        if not math.isfinite(loss) or (callback is not None and callback(i, loss)):
            break
        params = optimiser.step(params, grad)
    elapsed = time.perf_counter() - start
    final = best.params if best.params is not None else params
    return TrainResult(_numpy(final), history, elapsed)


def lbfgs(
    objective: Objective,
    params: Params,
    *,
    max_evals: int,
    callback: TrainCallback | None = None,
    gtol: float = 0.0,
    offset: int = 0,
    history_size: int = 20,
) -> TrainResult:
    """A guarded L-BFGS polish from `params`: at most `max_evals` gradient evaluations.

    It runs until an accepted evaluation's gradient has a 2-norm of at most `gtol` (the
    stop rule of a converged polish), SciPy's L-BFGS-B stops by itself (no further decrease
    is possible at machine precision: its own tests run at ``ftol = gtol = 0``), the
    evaluation budget is spent, or `callback(offset + i, loss)` returns True.  Rejected
    evaluations (an exception or a non-finite loss) are counted in `info["rejected"]`, with
    the first reason.  `info["message"]` is SciPy's stop message (or why the driver stopped
    it).  Returns the best accepted iterate."""
    from scipy.optimize import minimize

    template = _numpy(params)
    x0 = flatten(template)
    history: list[float] = []
    best = _Best()
    rejected: list[str] = []
    penalty = math.nan  # set from the first accepted loss

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal penalty
        if len(history) >= max_evals:  # L-BFGS-B checks `maxfun` only after a line search
            raise _Stop(f"evaluation budget of {max_evals} spent")
        p = unflatten(np.array(x), template)
        try:
            loss, grad = objective.value_and_grad(p)
            loss, g = float(loss), flatten(grad)
            if not (math.isfinite(loss) and np.all(np.isfinite(g))):
                raise FloatingPointError(f"non-finite loss or gradient ({loss})")
        except Exception as error:  # a failed solve is a rejected trial step
            rejected.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            history.append(math.nan)
            if callback is not None and callback(offset + len(history) - 1, math.nan):
                raise _Stop("stopped by the training monitor") from None
            if not math.isfinite(penalty):
                raise  # nothing accepted yet: the start itself cannot be evaluated
            return penalty, np.zeros_like(x)
        if not math.isfinite(penalty):
            penalty = 1e3 * (1.0 + abs(loss))
        history.append(loss)
        best.offer(loss, p)
        if callback is not None and callback(offset + len(history) - 1, loss):
            raise _Stop("stopped by the training monitor")
        if float(np.linalg.norm(g)) <= gtol:
            raise _Stop(f"gradient norm at most {gtol:.3g}")
        return loss, g

    start = time.perf_counter()
    try:
        result = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={
                "maxfun": max_evals,
                "maxiter": 10 * max_evals,
                "ftol": 0.0,
                "gtol": 0.0,
                "maxcor": history_size,
            },
        )
        message = str(result.message)
    except _Stop as stop:
        message = str(stop)
    elapsed = time.perf_counter() - start
    final = best.params if best.params is not None else template
    info: dict[str, Any] = {"evals": len(history), "message": message, "rejected": len(rejected)}
    if rejected:
        info["rejected_first"] = rejected[0]
    return TrainResult(_numpy(final), history, elapsed, info=info)


def gradient_norm(grad: Params) -> float:
    """The 2-norm of a whole gradient."""
    return float(np.linalg.norm(flatten(grad)))


@dataclasses.dataclass(frozen=True)
class Convergence:
    """Whether a trained model is converged, by which criterion, with the figures."""

    converged: bool
    criterion: str
    loss: float
    grad_norm: float

    def fields(self) -> dict[str, Any]:
        """The record's convergence fields (`harness.store.results.RECORD_FIELDS`)."""
        return {
            "train_converged": self.converged,
            "train_converged_by": self.criterion,
            "train_grad_norm_final": self.grad_norm,
        }


#: mini-batch training (`harness.numerics.minibatch`) is converged when, its learning-rate
#: schedule run to the end, the mean training loss of the last epoch is within this fraction
#: of the epoch before's: the mini-batches' gradient noise keeps the gradient rule out of
#: reach (odenet_mnist, 12 epochs: the last three epochs changed it by 2.1%, 1.1%, 1.4%; the
#: first four by 32-51% each)
PLATEAU_RTOL = 0.02

#: the beginnings of SciPy's L-BFGS-B messages when it stops by itself: the line search
#: cannot decrease the loss further, or the reduction was exactly 0
OWN_STOPS = ("ABNORMAL", "CONVERGENCE")


def convergence(
    loss: float,
    grad_norm: float,
    grad_norm_init: float,
    rtol: float,
    polish_message: str | None = None,
    floor: tuple[float, str] | None = None,
    epoch_losses: Sequence[float] | None = None,
) -> Convergence:
    """Whether the returned parameters are converged, by one of these criteria:

    - the gradient rule: the gradient's norm is at most `rtol` times its norm at the initial
      parameters (scale-free first-order stationarity, relative to where training started);
    - the polish stalled: L-BFGS-B stopped by itself (`polish_message` starts with one of
      `OWN_STOPS`): no step along its direction decreases the loss, i.e. the gradient is
      as small as its own error lets it be (a back-end's gradient is accurate to about
      1e-5 relative; where the residual stays large, e.g. noisy data, the gradient rule's
      bound can be below that error);
    - the loss reached a `floor` = (loss, why) the task declares as convergence, e.g. the
      noise floor of noisy data (the discrepancy principle: below it a model fits the noise;
      `TrainingProtocol.converged_at_target`);
    - mini-batch training reached its plateau: `epoch_losses`, the mean training loss of
      each epoch of a schedule that ran to its end, changed by at most `PLATEAU_RTOL` over
      the last epoch (None: training was not by mini-batches, or stopped early).

    The criterion says the figures either way."""
    finite = math.isfinite(loss) and math.isfinite(grad_norm)
    bound = rtol * grad_norm_init
    how = "<=" if grad_norm <= bound else ">"
    figures = f"gradient norm {grad_norm:.3g} {how} {rtol:.3g} x its initial {grad_norm_init:.3g}"
    if finite and grad_norm <= bound:
        return Convergence(True, figures, float(loss), float(grad_norm))
    if finite and floor is not None and loss <= floor[0]:
        return Convergence(
            True, f"loss {loss:.3g} <= {floor[0]:.3g}: {floor[1]}; {figures}", float(loss), float(grad_norm)
        )
    if finite and epoch_losses is not None and len(epoch_losses) >= 2:
        last, before = float(epoch_losses[-1]), float(epoch_losses[-2])
        change = abs(last - before) / abs(before)
        flat = "<=" if change <= PLATEAU_RTOL else ">"
        figures = (
            f"mean epoch loss {before:.4g} -> {last:.4g} over the last epoch ({change:.1%} {flat}"
            f" {PLATEAU_RTOL:.0%}); {figures}"
        )
        return Convergence(change <= PLATEAU_RTOL, figures, float(loss), float(grad_norm))
    if finite and polish_message is not None and polish_message.startswith(OWN_STOPS):
        stall = f"L-BFGS-B decreases the loss no further ({polish_message.split(':')[0]}); {figures}"
        return Convergence(True, stall, float(loss), float(grad_norm))
    return Convergence(False, figures, float(loss), float(grad_norm))
