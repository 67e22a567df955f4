"""`rk4-unrolled`: fixed-step classical RK4, backpropagation through every step (002 §3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from backends._torch_base import AbstractTorchBackend
from harness.core.models import AbstractMap, AbstractVectorField
from harness.core.registry import register_backend
from harness.numerics.schedule import step_schedule

if TYPE_CHECKING:
    import torch


@register_backend
class RK4Unrolled(AbstractTorchBackend):
    """Backpropagation through the RK4 solver, 002 §3.1 ("RK4 Method"): the classical
    four-stage Runge-Kutta method with fixed steps, every stage recorded by torch autograd,
    so the gradient is the exact gradient of the discrete solution (discretise-then-optimise).

    Steps: each observation interval [t_{i-1}, t_i] is split into
    ``ceil(|t_i - t_{i-1}| / dt)`` equal steps, `dt` from the solver options (task default:
    0.01, 0.001 for `linear_adjoint`); `n_steps` is the total over the data's intervals.
    NFE: 4 x steps vector-field calls forward, 4 x steps vector-Jacobian products backward
    (counted by hooks on the outputs of the forward calls).  Memory grows linearly with the
    number of steps: every stage's activations are kept for the backward pass.
    """

    name = "rk4-unrolled"
    requires = ("torch",)
    install = 'pip install -c constraints.txt -e ".[torch]"'
    builds = (AbstractVectorField, AbstractMap)
    solver_options = ("dt",)
    _vjp_hooks = True

    def setup_solver(self) -> None:
        self.dt = float(self.solver["dt"])
        self._schedule = step_schedule(np.asarray(self.data.t).tolist(), self.dt)
        #: total RK4 steps over the data's observation intervals
        self.n_steps = sum(n for _, n in self._schedule)

    def _solve(self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        field = self.field
        field.params = native
        schedule = self._schedule if times is self._t else step_schedule(times.tolist(), self.dt)
        return self._tc.rk4_solve(field.forward, y0, schedule)
