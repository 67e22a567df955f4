"""The part of the torch back-ends that does not depend on the gradient method.

Importing this module imports no torch: `setup` imports `backends._torch_common`
(which does), so the registry can list the torch back-ends where torch is missing.
A subclass writes `_solve` (states at `times`, differentiable) and sets `_vjp_hooks`.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.core.models import Params
from harness.core.protocols import AbstractBackend

if TYPE_CHECKING:
    import torch

__all__ = ["AbstractTorchBackend"]


class AbstractTorchBackend(AbstractBackend):
    """A PyTorch back-end: float64 (or float32) tensors on "cpu" or "cuda[:N]".

    `value_and_grad_native` returns `(loss, grads)`, grads a tuple in the order of the
    parameter dictionary, computed with `torch.autograd.grad` (nothing accumulates in
    `.grad`).  Training is Adam with `torch.optim.Adam`.
    """

    framework: ClassVar[str] = "torch"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    framework_memory: ClassVar[str] = (
        "bytes of the distinct tensors autograd saves for backward during the forward pass "
        "and loss (torch.autograd.graph.saved_tensors_hooks): what the graph holds when backward starts"
    )
    #: count backward work as vector-Jacobian products through the forward calls' outputs
    #: (backprop through the solver) rather than as calls made during the backward pass
    _vjp_hooks: ClassVar[bool] = False

    def setup(self) -> None:
        import torch

        from backends import _torch_common as tc

        self._torch, self._tc = torch, tc
        self._device, self._dtype = tc.resolve(self.device, self.dtype)
        self._y0 = self._tensor(self.data.y0)
        self._t = self._tensor(self.data.t)
        self._obs = self._tensor(self.data.y)
        self.field = tc.VectorField(self.composed, self._y0)  # what a solver integrates
        self._grad = torch.autograd.grad
        self._cuda = self._device.type == "cuda"
        self._keys: tuple[str, ...] = tuple(self.task.init_params(0))
        self.setup_solver()

    def setup_solver(self) -> None:
        """Solver-specific set-up (not timed); the default does nothing."""

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return self._torch.as_tensor(np.asarray(array), dtype=self._dtype, device=self._device)

    @abc.abstractmethod
    def _solve(self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        """States at `times` from `y0`, shape ``(len(times),) + y0.shape``, differentiable
        with respect to `native`."""

    # ---- the timing contract ------------------------------------------------------------

    def load(self, params: Params) -> dict[str, torch.Tensor]:
        self._keys = tuple(params)
        return self._tc.to_tensors(params, device=self._device, dtype=self._dtype)

    def _forward(
        self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor
    ) -> torch.Tensor:
        """The model's outputs at `times`: `_solve` on the core, composed by the harness
        (`harness.core.composed.ComposedModel.states`)."""
        return self.composed.states(native, times, y0, self.field.xp, self._solve_core)[0]

    def _solve_core(
        self, native: dict[str, torch.Tensor], times: torch.Tensor, y0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._solve(native, times, y0), times

    def _loss(
        self, native: dict[str, torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        y0, obs = (self._y0, self._obs) if batch is None else batch
        return self.task.loss(self._forward(native, self._t, y0), obs)

    def value_and_grad_native(
        self, native: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        loss = self._loss(native)
        return loss.detach(), self._grad(loss, tuple(native.values()))

    def load_batch(self, y0: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self._tensor(y0), self._tensor(y)

    def value_and_grad_batch(
        self, native: dict[str, torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        loss = self._loss(native, batch)
        return loss.detach(), self._grad(loss, tuple(native.values()))

    def block(self, out: Any) -> Any:
        if self._cuda:
            self._torch.cuda.synchronize(self._device)
        return out

    def to_numpy(self, out: tuple[torch.Tensor, tuple[torch.Tensor, ...]]) -> tuple[float, Params]:
        loss, grads = out
        return float(loss), self._tc.to_numpy_params(self._keys, grads)

    # ---- everything else ----------------------------------------------------------------

    def predict(self, params: Params, times: np.ndarray, y0: np.ndarray) -> np.ndarray:
        native = self._tc.to_tensors(params, device=self._device, dtype=self._dtype, requires_grad=False)
        with self._torch.no_grad():
            states = self._forward(native, self._tensor(times), self._tensor(y0))
        return states.cpu().numpy()

    def count_solver_nfe(self, params: Params) -> tuple[int, int]:
        native = self.load(params)
        field = self.field
        field.reset_counts(track_vjps=self._vjp_hooks)
        try:
            loss = self._loss(native)
            forward = field.nfe
            field.nfe = 0
            self._grad(loss, tuple(native.values()))
            backward = field.nfe + field.nvjp
        finally:
            field.reset_counts()
        return forward, backward

    def reset_device_peak(self) -> None:
        if self._cuda:
            self._torch.cuda.synchronize(self._device)
            self._torch.cuda.reset_peak_memory_stats(self._device)

    def device_peak_bytes(self) -> int | None:
        """`torch.cuda.max_memory_allocated` since the last reset (CUDA only)."""
        if not self._cuda:
            return None
        self._torch.cuda.synchronize(self._device)
        return int(self._torch.cuda.max_memory_allocated(self._device))

    def framework_peak_bytes(self, params: Params) -> int | None:
        native = self.load(params)
        nbytes, _ = self._tc.saved_tensor_bytes(lambda: self._loss(native))
        return nbytes
