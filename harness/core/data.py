"""What a task and a back-end exchange: the observations of a problem (`Dataset`), the loss
of 000 §2, and what training returns (`TrainResult`), with the callables' signatures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.core.models import AbstractModel, Composite, Params

if TYPE_CHECKING:  # shape annotations for readers and pyright, no import at run time
    from jaxtyping import Float

__all__ = [
    "Dataset",
    "Predictor",
    "TrainCallback",
    "TrainResult",
    "mse_loss",
    "mse_loss_cotangent",
]

#: ``predict(times, y0) -> states`` with ``states.shape == (len(times),) + y0.shape``.
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: ``callback(i, loss)`` after every training step; a true result stops training
#: (`harness.numerics.training.TrainingMonitor`: target reached or budget spent)
TrainCallback = Callable[[int, float], "bool | None"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Observations of one problem, NumPy only, deterministic per seed.

    **Arguments:**

    - `t`: observation times, shape `(P,)`, increasing, `t[0]` is the time of `y0`.
    - `y`: observed states, shape `(P, B, N)` (a batch of `B` trajectories of dimension `N`;
      for a `Composite` model, N is its decoder's output width, e.g. 10 logits).
    - `y0`: initial conditions, shape `(B, N)`.
    - `y_true`: noise-free states at `t` (equal to `y` for noise-free tasks).
    - `t_forward`, `y_forward`: the forward extrapolation window after `t[-1]` (increasing
      times) and the true states there, shape `(F, B, N)`.
    - `t_backward`, `y_backward`: the backward window before `t[0]` (decreasing times) and
      the true states there.
    - `truth`: ground-truth parameters where they exist (for metrics), else empty.
    """

    t: Float[np.ndarray, " P"]
    y: Float[np.ndarray, "P B N"]
    y0: Float[np.ndarray, "B N"]
    y_true: Float[np.ndarray, "P B N"]
    t_forward: Float[np.ndarray, " F"] = dataclasses.field(default_factory=lambda: np.zeros(0))
    y_forward: Float[np.ndarray, "F B N"] = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0)))
    t_backward: Float[np.ndarray, " K"] = dataclasses.field(default_factory=lambda: np.zeros(0))
    y_backward: Float[np.ndarray, "K B N"] = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0)))
    truth: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.t.shape[0])

    @property
    def batch(self) -> int:
        return int(self.y0.shape[0])

    def problems(self, model: AbstractModel) -> list[str]:
        """What breaks the shapes documented above, one message each (none: well formed);
        `model` is the task's (a `Composite`'s observations are its decoder's outputs)."""
        t, y, y0 = (np.asarray(a) for a in (self.t, self.y, self.y0))
        if t.ndim != 1 or not t.size:
            return [f"t must have shape (P,), not {t.shape}"]
        if y0.ndim != 2:
            return [f"y0 must have shape (B, N), not {y0.shape}"]
        width = int(model.decoder.out_dim) if isinstance(model, Composite) else y0.shape[-1]
        increasing = np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)
        found = [] if increasing else ["t must be finite and increasing"]
        if y.shape != (t.size, y0.shape[0], width):
            found.append(f"y has shape {y.shape}, expected (P, B, N) = {(t.size, y0.shape[0], width)}")
        if np.shape(self.y_true) != y.shape:
            found.append(f"y_true has shape {np.shape(self.y_true)}, expected {y.shape}")
        if not np.all(np.isfinite(y0)):
            found.append("y0 must be finite")
        for side, sign, edge in (("forward", 1.0, t[-1]), ("backward", -1.0, t[0])):
            times, states = np.asarray(getattr(self, f"t_{side}")), np.asarray(getattr(self, f"y_{side}"))
            if not times.size:
                continue
            if times.ndim != 1 or not np.all(sign * np.diff(times) > 0) or not sign * (times[0] - edge) > 0:
                order = "after t[-1], increasing" if sign > 0 else "before t[0], decreasing"
                found.append(f"t_{side} must be 1-D and run {order}")
            if states.shape != (times.size, *y0.shape):
                found.append(f"y_{side} has shape {states.shape}, expected {(times.size, *y0.shape)}")
        if not isinstance(self.truth, Mapping):
            found.append("truth must be a mapping")
        return found


def mse_loss(pred: Any, obs: Any) -> Any:
    """Mean squared error (2.2) of 000 §2: the squared 2-norm over the state, averaged over
    observation times and batch members.  Written against the array API, so every back-end
    evaluates the very same expression.

    **Arguments:** `pred`, `obs` of shape `(P, B, N)`.
    """
    diff = pred - obs
    return (diff * diff).sum() / (diff.shape[0] * diff.shape[1])


def mse_loss_cotangent(
    pred: Float[np.ndarray, "P B N"], obs: Float[np.ndarray, "P B N"]
) -> Float[np.ndarray, "P B N"]:
    """dL/d pred of `mse_loss` (the jumps of the continuous adjoint at observation times)."""
    return 2.0 * (pred - obs) / (pred.shape[0] * pred.shape[1])


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: final parameters (NumPy) and the loss before every update."""

    params: Params
    loss_history: list[float]
    time_s: float
    #: what a task's own `fit` found besides the parameters (JSON-able; merged into metrics)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
