"""Physics right-hand sides and reference gradients, checked against independent math."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import problem, rel_error

from harness.core.models import flatten, unflatten
from harness.core.protocols import mse_loss
from harness.numerics.datasets import solve_truth
from harness.numerics.reference import forward_sensitivity_gradient
from tasks._common.physics import double_pendulum_field, double_pendulum_hamiltonian, lotka_volterra_field

PENDULUM = {"m1": 1.0, "m2": 1.3, "l1": 0.8, "l2": 1.1, "g": 9.8}  # unequal, to catch swapped terms


def test_pendulum_field_is_J_grad_H() -> None:
    """Hamilton's equations (3.6): central differences of H (h = 1e-6, error ~h^2 * H''' ~ 1e-11)."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 4))
    h = 1e-6
    grad_h = np.zeros_like(y)
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        grad_h[:, j] = (
            double_pendulum_hamiltonian(y + e, PENDULUM, np)
            - double_pendulum_hamiltonian(y - e, PENDULUM, np)
        ) / (2 * h)
    expected = np.concatenate([grad_h[:, 2:], -grad_h[:, :2]], axis=1)
    np.testing.assert_allclose(double_pendulum_field(y, PENDULUM, np), expected, rtol=1e-7, atol=1e-8)


def test_reference_solution_conserves_hamiltonian() -> None:
    """DOP853 at 1e-12 keeps H within 1e-9 over 20 s (H ~ 30: relative 3e-11)."""
    task, data, *_ = problem("double_pendulum")
    times = np.linspace(0, 20, 401)
    ys = solve_truth(lambda y: double_pendulum_field(y, task.physics, np), data.y0, times)
    H = double_pendulum_hamiltonian(ys, task.physics, np)
    assert np.max(np.abs(H - H[0])) < 1e-9


def test_lotka_volterra_conserves_its_invariant() -> None:
    """V = delta x - gamma ln x + beta y - alpha ln y is constant along solutions."""
    _task, data, *_ = problem("lotka_volterra")
    p = dict(data.truth)
    x, y = data.y_true[..., 0], data.y_true[..., 1]
    V = p["delta"] * x - p["gamma"] * np.log(x) + p["beta"] * y - p["alpha"] * np.log(y)
    assert np.ptp(V) < 1e-10


@pytest.mark.parametrize("module", ["torch", "jax"])
def test_physics_runs_on_every_array_library(module: str) -> None:
    """The same array-API function on torch / JAX arrays matches NumPy to rounding."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed")
    rng = np.random.default_rng(2)
    y = rng.normal(size=(3, 4))
    lv = {"alpha": 0.7, "beta": 1.3, "delta": 1.0, "gamma": 0.9}
    if module == "torch":
        import torch

        arr = torch.asarray(y, dtype=torch.float64)
    else:
        import jax.numpy as jnp

        arr = jnp.asarray(y)
    np.testing.assert_allclose(
        np.asarray(double_pendulum_field(arr, PENDULUM)), double_pendulum_field(y, PENDULUM), rtol=1e-13
    )
    np.testing.assert_allclose(
        np.asarray(lotka_volterra_field(arr[:, :2], lv)), lotka_volterra_field(y[:, :2], lv), rtol=1e-13
    )


@pytest.mark.parametrize("task_name", ["lotka_volterra", "double_pendulum"])
def test_reference_gradient_matches_finite_differences(task_name: str) -> None:
    """Forward sensitivities vs central differences of tight solves on 6 random weights.

    h = 1e-5 with solves at 1e-13: truncation ~h^2 |L'''| and solver noise ~1e-13/h, so
    agreement to 1e-7 relative to the largest gradient entry is expected.
    """
    task, data, params, _, grad = problem(task_name)
    theta, g = flatten(params), flatten(grad)

    def loss(th: np.ndarray) -> float:
        q = unflatten(th, params)
        pred = solve_truth(lambda y: task.model.rhs(q, y, np), data.y0, data.t, rtol=1e-13, atol=1e-13)
        return float(mse_loss(pred, data.y))

    h = 1e-5
    for k in np.random.default_rng(3).choice(theta.size, 6, replace=False):
        e = np.zeros_like(theta)
        e[k] = h
        fd = (loss(theta + e) - loss(theta - e)) / (2 * h)
        assert abs(fd - g[k]) < 1e-7 * np.abs(g).max(), k


def test_linear_closed_form_matches_forward_sensitivities() -> None:
    """Two independent exact methods for `linear_adjoint` agree to 1e-10."""
    task, data, params, loss, grad = problem("linear_adjoint")
    loss2, grad2, _ = forward_sensitivity_gradient(task.model, params, data)
    assert loss2 == pytest.approx(loss, rel=1e-11)
    assert rel_error(grad2, grad) < 1e-10
