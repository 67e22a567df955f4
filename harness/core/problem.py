"""A task's problem role (#27): its options, data, model, loss and reference gradient,
the part every task defines itself; one of the roles `harness.core.protocols.AbstractTask`
composes.  It knows nothing about a framework: back-ends meet it through `Dataset`, the
declarative model spec (`harness.core.models`) and NumPy parameter dictionaries."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from harness.core.data import Dataset, mse_loss, mse_loss_cotangent
from harness.core.models import AbstractModel, Params
from harness.core.ranges import Range

__all__ = ["Problem"]


class Problem(abc.ABC):
    """A problem: options, data generation, model spec, loss and a reference gradient.

    Options (`options`) are the task's knobs, overridable from the command line with
    ``--set key=value``; their types are those of the defaults; an instance reads them as
    attributes (`self.width`).
    """

    name: ClassVar[str]
    #: source document and section, e.g. "000 §3.2"
    source: ClassVar[str]
    #: task options and their defaults (types are taken from the defaults)
    options: ClassVar[dict[str, Any]] = {}
    #: the valid values of every option (`harness.core.ranges`), checked before any cell
    #: starts; a registered task declares one for each of its `options`
    option_ranges: ClassVar[dict[str, Range]] = {}
    #: solver defaults shared by all back-ends of this task: rtol and atol for the adaptive
    #: solvers, the largest RK4 step `dt` (each observation interval is split into
    #: ceil(interval / dt) equal steps)
    solver_defaults: ClassVar[dict[str, Any]] = {"rtol": 1e-7, "atol": 1e-7, "dt": 0.1}
    #: whether `Dataset.y_true` is a noise-free truth; False for real data, whose only
    #: truth is the observations (figures, captions and records say which)
    noise_free_truth: ClassVar[bool] = True

    def __init__(self, **overrides: Any) -> None:
        unknown = set(overrides) - set(self.options)
        if unknown:
            raise KeyError(f"unknown option(s) {sorted(unknown)} for task {self.name}")
        self.config: dict[str, Any] = {**self.options, **overrides}

    def __getattr__(self, key: str) -> Any:
        config = self.__dict__.get("config", {})
        if key in config:
            return config[key]
        raise AttributeError(key)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The names of the state components, for figures and tables (e.g. a CSV file's
        column names); empty: `y[0]`, `y[1]`, ..."""
        return ()

    @abc.abstractmethod
    def make_data(self, seed: int) -> Dataset:
        """Observations, deterministic per seed."""

    @property
    @abc.abstractmethod
    def model(self) -> AbstractModel:
        """The declarative model spec every back-end builds natively."""

    def init_params(self, seed: int) -> Params:
        """Initial parameters as NumPy arrays, the same for every back-end."""
        return self.model.init_params(seed)

    def loss(self, pred: Any, obs: Any) -> Any:
        """Training loss on observations (array API); MSE unless the source says otherwise."""
        return mse_loss(pred, obs)

    def loss_cotangent(self, pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """dL/d pred of `loss` in NumPy: the jumps of the continuous adjoint at the
        observation times (000 §2, eq. 2.3).  A task that overrides `loss` overrides this too,
        or the hand-written adjoint (numpy-adjoint) cannot run it."""
        return mse_loss_cotangent(pred, obs)

    @abc.abstractmethod
    def reference_gradient(self, params: Params, data: Dataset) -> tuple[float, Params, str]:
        """Loss and gradient at `params` from an independent, tight-tolerance method.

        **Returns:** `(loss, grad, how)` where `how` says how the reference was obtained
        (`harness.numerics.trajectory_task.TrajectoryTask` solves the forward sensitivity
        equations; tasks with a closed form override it).
        """
