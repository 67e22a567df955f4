"""The task hooks beyond the default trajectory fit: `fit`, `rebuild`, `loss_cotangent`."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from conftest import backend, problem

from harness.core import registry
from harness.core.protocols import TrainResult
from harness.numerics import driver
from tasks.lotka_volterra import LotkaVolterra


def test_rebuild_keeps_class_device_dtype_solver_and_options() -> None:
    impl = registry.BACKENDS["numpy-adjoint"](
        *problem("lotka_volterra")[:2], solver={"rtol": 1e-6}, carry_step=False
    )
    task = LotkaVolterra(n_obs=11)
    data = task.make_data(0)
    again = impl.rebuild(task, data)
    assert type(again) is type(impl) and again.task is task and again.data is data
    assert again.solver == impl.solver and again.solver["rtol"] == 1e-6
    assert again.config == {**impl.config, "carry_step": False} == impl.config
    assert (again.device, again.dtype) == (impl.device, impl.dtype)
    assert impl.rebuild(task).data is impl.data


def test_default_fit_is_the_drivers_adam() -> None:
    task, _, params, *_ = problem("lotka_volterra")
    impl = backend("numpy-adjoint", "lotka_volterra")
    via_task = task.fit(impl, params, iters=2, lr=1e-2)
    direct = driver.adam(impl, params, iters=2, lr=1e-2)
    assert via_task.loss_history == direct.loss_history and via_task.info == {}


class _SquaredLoss(LotkaVolterra):
    """The sum (not mean) of squares, with its cotangent: numpy-adjoint must run it."""

    name = "_squared_loss"

    def loss(self, pred: Any, obs: Any) -> Any:
        return ((pred - obs) ** 2).sum()

    def loss_cotangent(self, pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
        return 2.0 * (pred - obs)


class _NoCotangent(LotkaVolterra):
    name = "_no_cotangent"

    def loss(self, pred: Any, obs: Any) -> Any:
        return ((pred - obs) ** 2).sum()


def test_numpy_adjoint_runs_a_loss_with_its_cotangent() -> None:
    cls = registry.BACKENDS["numpy-adjoint"]
    assert cls.skip(_SquaredLoss(n_obs=11), "cpu") is None
    reason = cls.skip(_NoCotangent(n_obs=11), "cpu")
    assert reason is not None and "loss_cotangent" in reason and "\n" not in reason
    task = _SquaredLoss(n_obs=11)
    data, params = task.make_data(0), task.init_params(0)
    loss, grad = cls(task, data).value_and_grad(params)
    ref_loss, ref_grad, _ = task.reference_gradient(params, data)
    scale = max(np.abs(v).max() for v in ref_grad.values())
    assert abs(loss - ref_loss) < 1e-6 * ref_loss
    for key in grad:  # 1e-5 of the largest entry: the adjoint at rtol = atol = 1e-7
        np.testing.assert_allclose(grad[key], ref_grad[key], atol=1e-5 * scale)


def test_train_result_info_defaults_empty() -> None:
    assert TrainResult(params={}, loss_history=[], time_s=0.0).info == {}


class _FlatObservations(LotkaVolterra):
    """A plugin author's slip: observations of shape (P, N), the batch axis left out."""

    name = "_flat_observations"

    def make_data(self, seed: int) -> Any:
        data = super().make_data(seed)
        return dataclasses.replace(data, y=data.y[:, 0, :])


def test_a_cell_names_the_malformed_dataset(monkeypatch: Any) -> None:
    """A `y` of shape (P, N) failed late in the cell with "cannot reshape array of size 2 into
    shape (16,2)" (#26); the cell now fails at once with check_task's message."""
    from harness.execution.build import build_task
    from harness.planning.matrix import plan

    monkeypatch.setitem(registry.TASKS, _FlatObservations.name, _FlatObservations)
    (cell,) = plan(
        _FlatObservations.name, "numpy-adjoint", sets={}, seeds=[0], iters=0, device="cpu", dtype="float64"
    )
    with pytest.raises(ValueError, match=r"make_data\(0\): y has shape \(\d+, 2\), expected \(P, B, N\)"):
        build_task(cell)
    data = LotkaVolterra().make_data(0)
    assert data.problems(LotkaVolterra().model) == []
    assert dataclasses.replace(data, t=data.t[::-1]).problems(LotkaVolterra().model)[0] == (
        "t must be finite and increasing"
    )
