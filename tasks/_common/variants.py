"""Variants of a task's model: parameters held fixed, and a task that differs from its
parent only in its model (the phases of a multi-phase fit)."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from harness.core.models import Parametric, Params
from harness.core.protocols import AbstractTask, Dataset, Predictor
from harness.numerics.metrics import trajectory_metrics
from harness.numerics.trajectory_task import TrajectoryTask

__all__ = ["VariantTask", "constant_like", "frozen_model"]


def constant_like(value: np.ndarray, y: Any, xp: Any) -> Any:
    """A NumPy constant in the namespace, dtype (and torch device) of `y`."""
    if array_api_compat.is_torch_array(y):
        return xp.asarray(value, dtype=y.dtype, device=y.device)
    if array_api_compat.is_numpy_array(y):
        return value
    return xp.asarray(value, dtype=y.dtype)


def frozen_model(model: Parametric, constants: Params, *, name: str = "") -> Parametric:
    """`model` with the parameters in `constants` held fixed: only the others are
    parameters of the returned spec (so no back-end updates or differentiates the frozen
    ones).  Its initial parameters are `model`'s, less the constants."""
    constants = {k: np.asarray(v, dtype=np.float64) for k, v in constants.items()}
    cache: dict[Any, Params] = {}  # converted constants per (array type, dtype, device)

    def field(params: Params, y: Any, xp: Any) -> Any:
        if array_api_compat.is_torch_array(y) or array_api_compat.is_numpy_array(y):
            key = (type(y), str(y.dtype), str(getattr(y, "device", "")))
            fixed = cache.get(key)
            if fixed is None:
                fixed = cache[key] = {k: constant_like(v, y, xp) for k, v in constants.items()}
        else:  # traced (JAX): constants become part of the compiled program
            fixed = {k: constant_like(v, y, xp) for k, v in constants.items()}
        return model.field({**fixed, **params}, y, xp)

    def vjp(params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        a_y, a_p = model.vjp({**constants, **params}, y, a)
        return a_y, {k: v for k, v in a_p.items() if k not in constants}

    def initial(seed: int) -> Params:
        return {k: v for k, v in model.init_params(seed).items() if k not in constants}

    return Parametric(
        name=name or f"{model.name}, {', '.join(constants)} frozen", field=field, vjp=vjp, initial=initial
    )


class VariantTask(TrajectoryTask):
    """A task that differs from its parent only in its model (a phase of a task's `fit`):
    the parent's data and solver defaults, trajectory metrics.  Subclasses set `name`."""

    name = "variant"

    def __init__(self, parent: AbstractTask, model: Parametric) -> None:
        super().__init__()
        self.parent = parent
        self._model = model
        self.solver_defaults = parent.solver_defaults  # pyright: ignore[reportAttributeAccessIssue]

    @property
    def model(self) -> Parametric:
        return self._model

    def make_data(self, seed: int) -> Dataset:
        return self.parent.make_data(seed)

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        return trajectory_metrics(predict, data)
