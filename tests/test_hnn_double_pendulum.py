"""`hnn_double_pendulum` (000 §4.1) and its parts: the Hamiltonian MLP and its hand-written
second-order VJP, the implicit midpoint rule, kernel-smoothing collocation, the task.

Gradients of all four back-ends against the task's reference are checked by
`test_conformance.py`, which runs every registered task.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import backend, check_vjp, problem

from harness.core import registry
from harness.core.errors import UsageError
from tasks._common.collocation import collocate, default_bandwidth, fit_collocation
from tasks._common.hamiltonian import HamiltonianMLP
from tasks._common.symplectic import implicit_midpoint

TASK = "hnn_double_pendulum"


def _oscillator(y: np.ndarray) -> np.ndarray:
    """Harmonic oscillator, H = (q^2 + p^2) / 2: dq/dt = p, dp/dt = -q."""
    return np.stack([y[:, 1], -y[:, 0]], axis=1)


# -- the Hamiltonian MLP -------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [(4, 64, 1), (2, 5, 7, 1)])
def test_rhs_is_j_grad_of_autodiff_hamiltonian(sizes: tuple[int, ...]) -> None:
    """grad_h (hand-written backprop in array-API ops) against torch autograd of H."""
    torch = pytest.importorskip("torch")
    import array_api_compat

    model = HamiltonianMLP(sizes)
    params = model.init_params(1)
    y = np.random.default_rng(0).normal(size=(5, sizes[0]))
    y_t = torch.tensor(y, requires_grad=True)
    params_t = {k: torch.tensor(v) for k, v in params.items()}
    energy = model.hamiltonian(params_t, y_t, array_api_compat.array_namespace(y_t)).sum()
    (grad,) = torch.autograd.grad(energy, y_t)
    n = sizes[0] // 2
    expected = np.concatenate([grad[:, n:].numpy(), -grad[:, :n].numpy()], axis=1)
    # the same arithmetic in another order: round-off only
    np.testing.assert_allclose(model.rhs(params, y, np), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.grad_h(params, y, np), grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sizes", [(4, 64, 1), (2, 5, 7, 1), (4, 6, 5, 4, 1)])
def test_vjp_matches_finite_differences(sizes: tuple[int, ...]) -> None:
    """The Hessian-vector products of `vjp_numpy` against central differences of `rhs`."""
    model = HamiltonianMLP(sizes)
    params = model.init_params(3)
    rng = np.random.default_rng(4)
    y, a = rng.normal(size=(4, sizes[0])), rng.normal(size=(4, sizes[0]))
    check_vjp(model, params, y, a)


def test_parameters_are_the_mlps_less_the_output_bias() -> None:
    from harness.core.models import MLP

    params = HamiltonianMLP((4, 64, 1)).init_params(0)
    mlp = MLP((4, 64, 1)).init_params(0)
    assert list(params) == ["W0", "b0", "W1"]
    for key in params:
        np.testing.assert_array_equal(params[key], mlp[key])
    with pytest.raises(ValueError, match="one number"):
        HamiltonianMLP((4, 8, 2))


# -- implicit midpoint ---------------------------------------------------------------------


def test_implicit_midpoint_is_second_order() -> None:
    """Slope of log(error at t = 5) against log(h) on the oscillator, by least squares."""
    y0 = np.array([[1.0, 0.0], [0.3, -0.7]])
    exact = np.stack(
        [y0[:, 0] * np.cos(5) + y0[:, 1] * np.sin(5), -y0[:, 0] * np.sin(5) + y0[:, 1] * np.cos(5)], 1
    )
    steps = np.array([0.1, 0.05, 0.025, 0.0125])
    errors = [
        np.max(np.abs(implicit_midpoint(_oscillator, y0, np.array([0.0, 5.0]), dt=h)[-1] - exact))
        for h in steps
    ]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.05)


def test_implicit_midpoint_conserves_quadratic_hamiltonian() -> None:
    """A quadratic invariant is conserved exactly by the rule; what is left is the
    fixed-point tolerance (1e-14) and round-off over 1000 steps."""
    y0 = np.array([[1.0, 0.5]])
    times = np.linspace(0.0, 100.0, 11)
    traj = implicit_midpoint(_oscillator, y0, times, dt=0.1)
    energy = 0.5 * np.sum(traj**2, axis=-1)
    assert np.max(np.abs(energy - energy[0])) < 1e-12
    # backward in time too
    back = implicit_midpoint(_oscillator, y0, -times, dt=0.1)
    np.testing.assert_allclose(0.5 * np.sum(back**2, axis=-1), 0.625, rtol=1e-12)


def test_implicit_midpoint_says_when_it_cannot_converge() -> None:
    stiff = lambda y: -1e4 * y
    with pytest.raises(RuntimeError, match="smaller dt"):
        implicit_midpoint(stiff, np.ones((1, 2)), np.array([0.0, 1.0]), dt=0.1)


# -- collocation -----------------------------------------------------------------------------


def test_collocation_derivative_of_a_sine() -> None:
    """Local quadratic slope of sin on [0, 2 pi], bandwidth three spacings: the error is the
    smoothing bias O(h^2 |u'''|), falling 4x per doubling of the points."""
    errors = []
    for n in (26, 51, 101, 201):
        t = np.linspace(0.0, 2 * np.pi, n)
        y_hat, dy_hat = collocate(t, np.sin(t)[:, None], bandwidth=3 * (t[1] - t[0]))
        assert y_hat.shape == dy_hat.shape == (n, 1)
        errors.append(float(np.max(np.abs(dy_hat[:, 0] - np.cos(t)))))
    assert all(b < a / 3 for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 1e-3
    # ref. [10]'s bandwidth rule (made for noisy data) is wider: larger, still decreasing errors
    ruled = []
    for n in (26, 101, 401):
        t = np.linspace(0.0, 2 * np.pi, n)
        ruled.append(float(np.max(np.abs(collocate(t, np.sin(t)[:, None])[1][:, 0] - np.cos(t)))))
        assert default_bandwidth(t) == pytest.approx(
            2 * np.pi * n**-0.2 * n ** (-3 / 35) * np.log(n) ** (-1 / 16)
        )
    assert ruled[0] > ruled[1] > ruled[2]


def test_collocation_cubic_fits_are_exact_on_cubics() -> None:
    t = np.linspace(0.0, 1.0, 15)
    y = (1 + 2 * t - t**2 + 0.5 * t**3)[:, None, None] * np.ones((1, 2, 3))
    y_hat, dy_hat = collocate(t, y, bandwidth=0.3, kernel="gaussian", state_degree=3, derivative_degree=3)
    np.testing.assert_allclose(y_hat, y, atol=1e-12)
    np.testing.assert_allclose(dy_hat[:, 0, 0], 2 - 2 * t + 1.5 * t**2, atol=1e-11)


def test_collocation_rejects_a_too_narrow_window() -> None:
    t = np.linspace(0.0, 1.0, 11)
    with pytest.raises(ValueError, match="larger bandwidth"):
        collocate(t, t[:, None], bandwidth=0.15)
    with pytest.raises(ValueError, match="kernel"):
        collocate(t, t[:, None], kernel="box")


def test_collocation_fit_recovers_an_oscillator() -> None:
    """An HNN fitted to collocation pairs of the harmonic oscillator (eight trajectories,
    one period, 63 points each).  Measured: derivative estimates within 7e-5 (relative
    RMS), the collocation loss down 8e4x, the learnt field within 0.4% of the true one at
    the data.  Bounds: 1e-4, 1000x and 2% (a 2-32-1 network after 2000 Adam steps at lr
    1e-2; margins for BLAS round-off changing Adam's path)."""
    rng = np.random.default_rng(0)
    y0 = rng.uniform(-1, 1, size=(8, 2))
    t = np.linspace(0.0, 2 * np.pi, 63)
    y = np.stack([np.stack([y0[:, 0] * np.cos(s) + y0[:, 1] * np.sin(s),
                            -y0[:, 0] * np.sin(s) + y0[:, 1] * np.cos(s)], 1) for s in t])  # fmt: skip
    y_hat, dy_hat = collocate(t, y, bandwidth=3.5 * (t[1] - t[0]), state_degree=3, derivative_degree=3)
    states, derivs = y_hat.reshape(-1, 2), dy_hat.reshape(-1, 2)
    true = _oscillator(states)
    assert np.linalg.norm(derivs - true) / np.linalg.norm(true) < 1e-4
    model = HamiltonianMLP((2, 32, 1))
    params, history, final = fit_collocation(model, states, derivs, model.init_params(0), iters=2000, lr=1e-2)
    assert len(history) == 2000
    assert final < history[0] / 1000
    learnt = model.rhs(params, states, np)
    assert np.linalg.norm(learnt - true) / np.linalg.norm(true) < 0.02


# -- the task --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> tuple:
    task, data, params, *_ = problem(TASK)
    impl = backend("numpy-adjoint", TASK)
    result = task.fit(impl, params, iters=3000, lr=1e-2)
    return task, data, impl, result


def test_collocation_training_fits_the_pendulum(fitted: tuple) -> None:
    task, data, impl, result = fitted
    assert task.training == "collocation"
    assert result.info["ode_solves_in_training"] == 0
    assert result.info["collocation_loss_final"] < result.loss_history[0] / 1000
    metrics = task.metrics(lambda t, y0: impl.predict(result.params, t, y0), data, result.params)
    expected = {
        "fit_rmse",
        "fit_rmse_relative",
        "extrap_forward_rmse",
        "extrap_backward_rmse",
        "hamiltonian_drift_model",
        "hamiltonian_drift_model_midpoint",
        "hamiltonian_drift_truth_rk45",
        "hamiltonian_drift_truth_midpoint",
        "learnt_hamiltonian_drift_model",
        "learnt_hamiltonian_drift_model_midpoint",
        "hamiltonian_energy_above_rest",
        "midpoint_rmse",
    }
    assert expected <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    # measured: fit within 1% of the signal, true H drift about 1% of the oscillation energy
    assert metrics["fit_rmse_relative"] < 0.05
    assert metrics["hamiltonian_drift_model"] < 0.05 * metrics["hamiltonian_energy_above_rest"]


def test_collocation_training_is_the_same_on_every_backend(fitted: tuple) -> None:
    task, _, _, result = fitted
    other = backend("rk4-unrolled", TASK)
    again = task.fit(other, problem(TASK)[2], iters=3000, lr=1e-2)
    for key in result.params:
        np.testing.assert_array_equal(again.params[key], result.params[key])


def test_midpoint_conserves_the_learnt_hamiltonian_better_than_euler(fitted: tuple) -> None:
    """The trained HNN over [0, 6] with step 0.01: explicit Euler's H_theta grows (it is
    not symplectic: error O(h) per unit time); the implicit midpoint's stays within its
    O(h^2) band.  Measured: 7e-8 against Euler's 0.2 (H_theta(y0) - H_theta(rest) is 0.037)."""
    task, data, _, result = fitted
    model, params = task.model, result.params
    field = lambda y: model.rhs(params, y, np)
    times = np.linspace(0.0, 6.0, 601)
    midpoint = implicit_midpoint(field, data.y0, times, dt=0.01)
    euler = [data.y0]
    for _ in times[1:]:
        euler.append(euler[-1] + 0.01 * field(euler[-1]))
    energy = lambda traj: np.array([model.hamiltonian(params, y, np) for y in traj])
    drift = lambda traj: float(np.max(np.abs(energy(traj) - energy(traj[:1]))))
    assert drift(midpoint) < drift(np.array(euler)) / 100


def test_trajectory_training_reduces_the_loss() -> None:
    task = registry.TASKS[TASK](training="trajectory")
    _, data, params, *_ = problem(TASK)
    impl = registry.BACKENDS["numpy-adjoint"](task, data)
    result = task.fit(impl, params, iters=5, lr=1e-2)
    assert result.loss_history[-1] < result.loss_history[0]
    assert result.info == {}


def test_unknown_training_is_refused() -> None:
    with pytest.raises(UsageError, match="collocation"):
        registry.TASKS[TASK](training="shooting")
