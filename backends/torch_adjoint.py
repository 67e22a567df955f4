"""`torch-adjoint`: torchdiffeq's continuous adjoint (`odeint_adjoint`) with dopri5."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from backends._torch_base import AbstractTorchBackend
from harness.core.models import AbstractMap, AbstractVectorField
from harness.core.ranges import Range, flag
from harness.core.registry import register_backend

if TYPE_CHECKING:
    import torch


@register_backend
class TorchAdjoint(AbstractTorchBackend):
    """The continuous adjoint of Chen et al. (2018), as in 000 §2 and 001: a forward dopri5
    solve without a graph, then the augmented system (state, adjoint, parameter adjoint)
    solved backwards between consecutive observation times, with the loss's jumps added at
    each (`torchdiffeq.odeint_adjoint`, torchdiffeq/_impl/adjoint.py).

    Forward and adjoint solves both use dopri5 at the task's `rtol` / `atol`.  The adjoint
    step control uses torchdiffeq's default norm (the max over state, adjoint and parameter
    adjoint), or with ``seminorm=True`` the seminorm of Kidger, Chen and Lyons, "'Hey, that's
    not an ODE': faster ODE adjoints via seminorms" (ICML 2021), which leaves the parameter
    adjoint (an integral) out of error control.  NFE: vector-field calls during the forward
    solve, and during the backward solve (each backward call also runs one VJP).
    """

    name = "torch-adjoint"
    requires = ("torch", "torchdiffeq")
    install = 'pip install -c constraints.txt -e ".[torch]"'
    builds = (AbstractVectorField, AbstractMap)
    solver_options = ("rtol", "atol")
    discrete_twin = "torch-direct"  # the same forward dopri5 solve, backprop through it
    options: ClassVar[dict[str, Any]] = {"seminorm": False}
    option_ranges: ClassVar[dict[str, Range]] = {"seminorm": flag()}

    def setup_solver(self) -> None:
        from torchdiffeq import odeint_adjoint

        self._odeint = odeint_adjoint
        rtol, atol = float(self.solver["rtol"]), float(self.solver["atol"])
        self._kwargs: dict[str, Any] = dict(
            rtol=rtol, atol=atol, method="dopri5", adjoint_rtol=rtol, adjoint_atol=atol
        )
        if self.config["seminorm"]:
            self._kwargs["adjoint_options"] = {"norm": "seminorm"}

    def _solve(self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        self.field.params = native
        states = self._odeint(self.field, y0, times, adjoint_params=tuple(native.values()), **self._kwargs)
        return cast("torch.Tensor", states)  # its annotation also covers solves with events: none here
