"""PyTorch helpers shared by the torch back-ends (`torch-adjoint`, `rk4-unrolled`).

This module imports torch at import time; the back-end modules import it lazily (from
`backends._torch_base`), so that the registry lists them where torch is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np
import torch

from harness.core.composed import ComposedModel
from harness.core.devices import parse_device, parse_dtype
from harness.core.models import Params

__all__ = [
    "VectorField",
    "resolve",
    "rk4_solve",
    "saved_tensor_bytes",
    "to_numpy_params",
    "to_tensors",
]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: ``value_and_grad(native) -> (loss, grads)``, grads in the order of ``native.values()``
ValueAndGrad = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, Sequence[torch.Tensor]]]


def resolve(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """The torch device and dtype of the harness names `device` ("cpu", "cuda", "cuda:N")
    and `dtype` ("float64", "float32").

    **Raises:** `RuntimeError` with a one-line message when a CUDA device is requested
    that this torch cannot see; `ValueError` for an unknown dtype or device name.
    """
    kind, index = parse_device(device)
    dev = torch.device(kind, index) if kind == "cuda" else torch.device("cpu")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RuntimeError(
                f"device {device!r} requested but torch {torch.__version__} sees no CUDA device "
                f"(CUDA build: {torch.version.cuda or 'none'})"
            )
        if index >= count:
            raise RuntimeError(f"device {device!r} requested but torch sees only {count} CUDA device(s)")
    return dev, _DTYPES[parse_dtype(dtype)]


def to_tensors(
    params: Params, *, device: torch.device, dtype: torch.dtype, requires_grad: bool = True
) -> dict[str, torch.Tensor]:
    """NumPy parameters to fresh leaf tensors on `device` (copies, never views of `params`)."""
    return {
        k: torch.tensor(np.asarray(v), dtype=dtype, device=device).requires_grad_(requires_grad)
        for k, v in params.items()
    }


def to_numpy_params(keys: Sequence[str], tensors: Sequence[torch.Tensor]) -> Params:
    """Tensors (parameters or gradients) back to a NumPy parameter dictionary."""
    return {k: t.detach().cpu().numpy() for k, t in zip(keys, tensors, strict=True)}


class VectorField(torch.nn.Module):
    """The core of the task's model (`ComposedModel.rhs`) as a torch vector field
    ``f(t, y) = model.rhs(params, y, xp)``.

    The model is written once against the array API (`harness.core.models`); `xp` is resolved
    once here.  `params` is a dictionary of tensors set by the back-end before each solve.
    `nfe` counts calls; with `track_vjps` set, `nvjp` counts the vector-Jacobian products
    autograd later runs through the outputs of those calls (one hook per call).
    """

    def __init__(self, model: ComposedModel, example: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        # the core's own `rhs`, looked up once: the solvers call it at every stage (a discrete
        # core has none; `ComposedModel.rhs` then raises a one-line TypeError if called)
        self._rhs = model.rhs if model.discrete else model.field.rhs
        self.xp = array_api_compat.array_namespace(example)
        self.params: dict[str, torch.Tensor] = {}
        self.nfe = 0
        self.nvjp = 0
        self.track_vjps = False

    def forward(self, t: Any, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self._rhs(self.params, y, self.xp)
        if self.track_vjps and out.requires_grad:
            out.register_hook(self._count_vjp)
        return out

    def _count_vjp(self, grad: torch.Tensor) -> None:
        self.nvjp += 1

    def reset_counts(self, *, track_vjps: bool = False) -> None:
        self.nfe = self.nvjp = 0
        self.track_vjps = track_vjps


def rk4_solve(
    f: Callable[[Any, torch.Tensor], torch.Tensor], y0: torch.Tensor, schedule: Sequence[tuple[float, int]]
) -> torch.Tensor:
    """Classical RK4 (002 §3.1), fixed steps from `harness.numerics.schedule.step_schedule`;
    states at the interval ends, shape ``(len(schedule) + 1,) + y0.shape``.  `f` is
    autonomous (its `t` is None).

    y_{n+1} = y_n + h/6 (k1 + 2 k2 + 2 k3 + k4), k1 = f(y_n), k2 = f(y_n + h/2 k1),
    k3 = f(y_n + h/2 k2), k4 = f(y_n + h k3).  Every operation is recorded by autograd, so
    the gradient is that of the discrete solution (backpropagation through the solver).
    """
    add = torch.add
    y = y0
    ys = [y0]
    for h, n in schedule:
        half, sixth = 0.5 * h, h / 6.0
        for _ in range(n):
            k1 = f(None, y)
            k2 = f(None, add(y, k1, alpha=half))
            k3 = f(None, add(y, k2, alpha=half))
            k4 = f(None, add(y, k3, alpha=h))
            y = add(y, add(k1 + k4, k2 + k3, alpha=2.0), alpha=sixth)
        ys.append(y)
    return torch.stack(ys)


def saved_tensor_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes of the distinct storages autograd saves for backward while `fn()` runs, and
    `fn()`'s result (which keeps the graph alive; drop it to free the memory).

    Uses `torch.autograd.graph.saved_tensors_hooks`: the pack hook records each saved
    tensor's storage once (the same parameter saved by every matmul counts once) and
    returns the tensor unchanged.  Run `fn` up to the loss only: the figure is what the
    graph holds when the backward pass starts.
    """
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out
