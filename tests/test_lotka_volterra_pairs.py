"""The 002 §3 pair tasks: the time-scaled model, the pair data, parameter recovery."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import backend, problem

from harness.core.models import MLP, TimeScaled, flatten, unflatten
from tasks.lotka_volterra_params import LV_KEYS
from tasks.lotka_volterra_short import LV_002

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("task_name", ["lotka_volterra_params", "lotka_volterra_pairs_nn"])
def test_time_scaled_vjp_matches_finite_differences(task_name: str) -> None:
    """Central differences with step 1e-6 have truncation error ~1e-12 and round-off ~1e-10
    on these O(1) fields: 1e-7 relative is well clear of both."""
    task, data, params, *_ = problem(task_name)
    model = task.model
    y, a = data.y0[:6], RNG.normal(size=(6, 3))
    a_y, a_p = model.vjp_numpy(params, y, a)
    objective = lambda p, yy: float(np.sum(a * model.rhs(p, yy, np)))
    flat, eps = flatten(params), 1e-6
    fd_p = [
        (objective(unflatten(flat + eps * e, params), y) - objective(unflatten(flat - eps * e, params), y))
        / (2 * eps)
        for e in np.eye(flat.size)[:: max(1, flat.size // 40)]
    ]
    np.testing.assert_allclose(flatten(a_p)[:: max(1, flat.size // 40)], fd_p, rtol=1e-7, atol=1e-9)
    fd_y = np.zeros_like(y)
    for idx in np.ndindex(*y.shape):
        step = np.zeros_like(y)
        step[idx] = eps
        fd_y[idx] = (objective(params, y + step) - objective(params, y - step)) / (2 * eps)
    np.testing.assert_allclose(a_y, fd_y, rtol=1e-7, atol=1e-9)


def test_unit_duration_is_real_time() -> None:
    inner = MLP(sizes=(2, 8, 2))
    params = inner.init_params(1)
    x = RNG.normal(size=(4, 2))
    out = TimeScaled(inner).rhs(params, np.concatenate([x, np.ones((4, 1))], axis=1), np)
    np.testing.assert_array_equal(out[:, :2], inner.rhs(params, x, np))
    np.testing.assert_array_equal(out[:, 2], 0.0)


def test_pairs_are_consecutive_observations() -> None:
    _, data, *_ = problem("lotka_volterra_params")
    times, states = data.truth["times"], data.truth["states"]
    assert data.batch == 500 and times[0] == 0.0 and times[-1] <= 100.0
    assert np.all(np.diff(times) > 0)
    np.testing.assert_array_equal(data.y0[:, :2], states[:-1])
    np.testing.assert_array_equal(data.y[1, :, :2], states[1:])
    np.testing.assert_array_equal(data.y0[:, 2], np.diff(times))
    np.testing.assert_array_equal(data.y[1, :, 2], data.y0[:, 2])


def test_truth_has_zero_loss_and_exact_metrics() -> None:
    task, data, *_ = problem("lotka_volterra_params")
    impl = backend("numpy-adjoint", "lotka_volterra_params")
    truth = {k: np.asarray(LV_002[k]) for k in LV_KEYS}
    loss, _ = impl.value_and_grad(truth)
    assert loss < 1e-12
    metrics = task.metrics(lambda t, y0: impl.predict(truth, t, y0), data, truth)
    assert metrics["max_param_rel_error"] == 0.0
    assert metrics["rollout_rmse_relative"] < 1e-4
    assert metrics["report_max_param_rel_error"] == pytest.approx(0.0475)


@pytest.mark.parametrize("impl_name", ["numpy-adjoint", "jax-checkpoint"])
def test_parameters_recovered_within_one_percent(impl_name: str) -> None:
    """The issue's bar (every parameter within 1%) with the task's training defaults, on the
    two fast back-ends; the full run records it for all four."""
    task, data, params, *_ = problem("lotka_volterra_params")
    impl = backend(impl_name, "lotka_volterra_params")
    result = task.fit(impl, params, iters=task.protocol.defaults["iters"], lr=task.protocol.defaults["lr"])
    metrics = task.metrics(lambda t, y0: impl.predict(result.params, t, y0), data, result.params)
    assert metrics["max_param_rel_error"] < 0.01
    assert metrics["max_param_rel_error"] < metrics["report_max_param_rel_error"]
