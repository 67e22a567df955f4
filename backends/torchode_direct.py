"""`torchode-direct`: backpropagation through torchode's dopri5 with per-sample step control."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends._torch_base import AbstractTorchBackend
from harness.core.models import AbstractMap, AbstractVectorField
from harness.core.registry import register_backend

if TYPE_CHECKING:
    import torch

__all__ = ["TorchodeDirect"]


class _Field:
    """The back-end's counting `VectorField` as a torchode right-hand side on a batch
    flattened to (samples, features): torchode integrates each row of the state (each
    sample of the batch) as its own ODE, with its own time and step (Lienen and Günnemann,
    "torchode: a parallel ODE solver for PyTorch", 2022)."""

    def __init__(self, field: Any, shape: tuple[int, ...]) -> None:
        self.field, self.tail = field, tuple(shape[1:])

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.field(t, y.reshape((-1, *self.tail))).reshape(y.shape)


@register_backend
class TorchodeDirect(AbstractTorchBackend):
    """torchode 1.0.1's `AutoDiffAdjoint`: Dormand-Prince 5(4) (`torchode.Dopri5`, the
    method of torch-direct and torch-adjoint) with an integral step-size controller
    (`torchode.IntegralController`, the controller of torchdiffeq, SciPy and diffrax's
    default coefficients) at the task's `rtol` / `atol`, every operation recorded by
    autograd: the gradient of the discrete solution (discretise-then-optimise).

    Unlike torchdiffeq and diffrax, torchode controls the step of every sample of the batch
    separately (its error norm is an RMS norm per sample), so on a batch the solver takes
    other steps than the others' one-system solve; on a batch of one they differ only in
    torchode's own initial-step selection and controller details.  Gradients do not flow
    through the step-size choices (`backprop_through_step_size_control=False`), as in
    diffrax (which stops them): the steps are held fixed, as for a discrete twin.

    NFE: vector-field calls forward (each evaluates the whole batch); backward, the
    vector-Jacobian products autograd runs through the outputs of those calls (hooks).
    torchode merges accepted and rejected steps with `torch.where`, so the stages of a
    rejected step get a (zero) cotangent too and are counted.
    """

    name = "torchode-direct"
    requires = ("torch", "torchode")
    install = 'pip install -c constraints.txt -e ".[torchode]"'
    builds = (AbstractVectorField, AbstractMap)
    solver_options = ("rtol", "atol")
    _vjp_hooks = True

    #: solver steps (accepted + rejected) of the last solve: the loop's iterations, the
    #: most any sample took (torchode counts them per sample)
    n_steps: int | None = None

    def setup_solver(self) -> None:
        import torchode

        self._to: Any = torchode  # untyped use: torchode annotates with torchtyping shapes
        self._rtol, self._atol = float(self.solver["rtol"]), float(self.solver["atol"])

    def _problem(self, times: torch.Tensor, y0: torch.Tensor) -> tuple[Any, tuple[int, ...]]:
        """torchode's `InitialValueProblem` of the flattened batch, and the batch's shape."""
        shape = tuple(y0.shape)
        flat = y0.reshape(shape[0], -1)
        t_eval = times.expand(shape[0], -1)
        return self._to.InitialValueProblem(flat, t_eval[:, 0], t_eval[:, -1], t_eval), shape

    def _check(self, solution: Any) -> None:
        """A one-line RuntimeError when any sample's solve did not succeed."""
        status = solution.status
        if bool((status != self._to.Status.SUCCESS.value).any()):
            codes = sorted({self._to.Status(int(s)).name for s in status.tolist()} - {"SUCCESS"})
            raise RuntimeError(f"{self.name}: solve failed ({', '.join(codes)})")

    @staticmethod
    def _states(solution: Any, shape: tuple[int, ...]) -> torch.Tensor:
        """torchode's (samples, times, features) solution as (times,) + the batch's shape."""
        ys = solution.ys
        return ys.transpose(0, 1).reshape((ys.shape[1], *shape))

    def _solve(self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        to = self._to
        self.field.params = native
        problem, shape = self._problem(times, y0)
        term = to.ODETerm(_Field(self.field, shape), with_stats=False)
        controller = to.IntegralController(atol=self._atol, rtol=self._rtol, term=term)
        method = to.Dopri5(term=term)
        solver = to.AutoDiffAdjoint(method, controller, backprop_through_step_size_control=False)
        solution = solver.solve(problem, term)
        self._check(solution)
        self.n_steps = int(solution.stats["n_steps"].max())
        return self._states(solution, shape)
