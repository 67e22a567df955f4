"""`torch-direct`: backpropagation through torchdiffeq's adaptive dopri5 (`odeint`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from backends._torch_base import AbstractTorchBackend
from harness.core.models import AbstractMap, AbstractVectorField
from harness.core.registry import register_backend

if TYPE_CHECKING:
    import torch


@register_backend
class TorchDirect(AbstractTorchBackend):
    """Direct backpropagation through the solver: 002 §1.3 ("we can backpropagate directly
    through the solver. However ... we would need to save the intermediate hidden state";
    the adjoint "also do[es] not need to save the intermediate states"), and 000 §2
    ("backpropagating through the forward pass of the ODE solver ... could be prohibitively
    expensive"), here through an adaptive solver.  torchdiffeq's `odeint`
    with dopri5 at the task's `rtol` / `atol` (the same forward solve as `torch-adjoint`),
    every stage recorded by autograd: the gradient is that of the discrete solution
    (discretise-then-optimise), and memory grows with the number of solver steps.

    NFE: vector-field calls forward (accepted and rejected steps); backward, the
    vector-Jacobian products autograd runs through the outputs of those calls (hooks),
    so stages of rejected steps, which do not reach the loss, are not counted.
    """

    name = "torch-direct"
    requires = ("torch", "torchdiffeq")
    install = 'pip install -c constraints.txt -e ".[torch]"'
    builds = (AbstractVectorField, AbstractMap)
    solver_options = ("rtol", "atol")
    _vjp_hooks = True

    def setup_solver(self) -> None:
        from torchdiffeq import odeint

        self._odeint = odeint
        rtol, atol = float(self.solver["rtol"]), float(self.solver["atol"])
        self._kwargs = {"rtol": rtol, "atol": atol, "method": "dopri5"}

    def _solve(self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        self.field.params = native
        return cast("torch.Tensor", self._odeint(self.field, y0, times, **self._kwargs))
