"""`torchode-backsolve`: torchode's continuous adjoint (`BacksolveAdjoint`), optimise-then-discretise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.torchode_direct import TorchodeDirect, _Field
from harness.core.registry import register_backend

if TYPE_CHECKING:
    import torch

__all__ = ["TorchodeBacksolve"]


def _module(field: _Field, native: dict[str, torch.Tensor]) -> Any:
    """`field` as the `torch.nn.Module` torchode's `BacksolveAdjoint` differentiates: its
    parameters are the back-end's own tensors (`native`, not copies, so the gradient
    reaches them), swapped in by `torch.func.functional_call` in each VJP."""
    import torch

    class Field(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for key, value in native.items():
                # the tensor itself: a Parameter would be a new leaf, cut off from `native`
                self._parameters[key] = value  # pyright: ignore[reportArgumentType]

        def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            field.field.params = dict(self._parameters)  # pyright: ignore[reportAttributeAccessIssue]
            return field(t, y)

    return Field()


@register_backend
class TorchodeBacksolve(TorchodeDirect):
    """torchode 1.0.1's `BacksolveAdjoint` (torchode/adjoints.py): the forward solve of
    `torchode-direct` (dopri5, integral controller, per-sample step control) without a
    graph, then per sample the augmented system (state, state adjoint, parameter adjoint;
    a VJP per sample by `torch.func.vmap`) solved backwards between consecutive observation
    times by the same solver and controller, the state reset to the forward solution and
    the loss's jump added at each (as torchdiffeq does); the per-sample parameter adjoints
    are summed at the end.  The backward step control takes torchode's RMS norm per sample
    over the whole augmented state, parameter adjoint included (no seminorm: torchode has
    none), and each interval starts from torchode's initial-step selection.

    Optimise-then-discretise: its gradient approximates that of the discrete solution of
    `torchode-direct`, which takes the same forward steps (its discrete twin).  NFE: calls
    of the vector field forward and in the backward pass (each backward call, a vmapped
    evaluation with its VJP, counts once, as torch-adjoint counts them).
    """

    name = "torchode-backsolve"
    discrete_twin = "torchode-direct"
    _vjp_hooks = False

    def _solve(self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        to = self._to
        problem, shape = self._problem(times, y0)
        self.field.params = native
        term = to.ODETerm(_module(_Field(self.field, shape), native), with_stats=False)
        controller = to.IntegralController(atol=self._atol, rtol=self._rtol, term=term)
        solver = to.BacksolveAdjoint(term, to.Dopri5(term=term), controller)
        solution = solver.solve(problem)
        self._check(solution)
        self.n_steps = int(solution.stats["n_steps"].max())
        return self._states(solution, shape)
