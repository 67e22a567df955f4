"""The `numpy-adjoint` back-end (000 §2): its hand-written VJPs, its convergence with the
solver tolerance, the step-size carry across observation times, NumPy Adam, failures."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import check_vjp, problem, rel_error

from harness.core import registry
from harness.core.models import MLP, AbstractVectorField, Params
from harness.numerics.optim import Adam

NumpyAdjoint = registry.BACKENDS["numpy-adjoint"]


# -- vector-Jacobian products against central finite differences ------------------------


def _away_from_kinks(model: MLP, params: Params, y: np.ndarray) -> float:
    """Smallest |pre-activation| of the hidden layers (ReLU is smooth farther than this)."""
    h, smallest = y, np.inf
    for i in range(model.n_layers - 1):
        z = h @ params[f"W{i}"] + params[f"b{i}"]
        smallest = min(smallest, float(np.min(np.abs(z))))
        h = np.maximum(z, 0.0)
    return smallest


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_mlp_vjp_matches_finite_differences(activation: str) -> None:
    model = MLP(sizes=(3, 7, 5, 2), activation=activation)
    params = model.init_params(3)
    rng = np.random.default_rng(4)
    for _ in range(100):  # for ReLU: points whose pre-activations are clear of the kink
        y = rng.normal(size=(4, 3))
        if activation != "relu" or _away_from_kinks(model, params, y) > 1e-3:
            break
    else:
        pytest.fail("no point away from the ReLU kinks")
    check_vjp(model, params, y, rng.normal(size=(4, 2)))


def test_parametric_vjp_matches_finite_differences() -> None:
    task = registry.TASKS["linear_adjoint"]()
    model = task.model
    rng = np.random.default_rng(5)
    check_vjp(model, model.init_params(0), rng.normal(size=(6, 2)), rng.normal(size=(6, 2)))


@pytest.mark.parametrize("sizes", [(3, 7, 5, 2), (2, 2)])
def test_mlp_flat_vjp_writes_what_vjp_numpy_returns(sizes: tuple[int, ...]) -> None:
    """The in-place flat VJP (the adjoint's hot loop) against the plain one, bit for bit,
    offset left alone, the buffer reused across calls."""
    model = MLP(sizes=sizes)
    params = model.init_params(1)
    rng = np.random.default_rng(6)
    flat = model.flat_vjp_numpy(params, (4, sizes[0]), offset=3)
    default = AbstractVectorField.flat_vjp_numpy(model, params, (4, sizes[0]), offset=3)
    first = None
    for _ in range(2):
        y, a = rng.normal(size=(4, sizes[0])), rng.normal(size=(4, sizes[-1]))
        out = flat(params, y, a)
        a_y, a_p = model.vjp_numpy(params, y, a)
        np.testing.assert_array_equal(out[3:], np.concatenate([a_y, *a_p.values()], axis=None))
        np.testing.assert_array_equal(out[3:], default(params, y, a)[3:])
        first = out if first is None else first
    assert out is first  # one buffer


# -- the adjoint gradient -------------------------------------------------------------


def test_gradient_error_decreases_with_tolerance() -> None:
    task, data, params, _, ref = problem("lotka_volterra")
    errors = []
    for tol in (1e-5, 1e-7, 1e-9):
        impl = NumpyAdjoint(task, data, solver={"rtol": tol, "atol": tol})
        errors.append(rel_error(impl.value_and_grad(params)[1], ref))
    # measured 2.2e-6, 1.0e-8, 2.3e-10: at least a factor 10 per two decades of tolerance
    assert errors[1] < errors[0] / 10 and errors[2] < errors[1] / 10, errors


def test_carrying_the_step_size_saves_backward_work() -> None:
    task, data, params, _, ref = problem("lotka_volterra")
    carried = NumpyAdjoint(task, data, carry_step=True)
    fresh = NumpyAdjoint(task, data, carry_step=False)
    fwd_c, bwd_c = carried.count_nfe(params)
    fwd_f, bwd_f = fresh.count_nfe(params)
    assert fwd_c == fwd_f
    assert bwd_c < bwd_f  # measured 707 against 1400
    # both stay within the conformance bound of the reference (1e-5 at rtol = atol = 1e-7)
    assert rel_error(carried.value_and_grad(params)[1], ref) < 1e-5
    assert rel_error(fresh.value_and_grad(params)[1], ref) < 1e-5


def test_framework_memory_is_reported() -> None:
    task, data, params, *_ = problem("lotka_volterra")
    assert NumpyAdjoint(task, data).framework_peak_bytes(params) > 0


@pytest.mark.parametrize("scale", [np.nan, 1e300])
def test_failed_solve_raises_runtime_error(scale: float) -> None:
    task, data, *_ = problem("linear_adjoint")
    impl = NumpyAdjoint(task, data)
    with pytest.raises(RuntimeError, match="numpy-adjoint"):
        impl.value_and_grad({"W": scale * np.eye(2)})


# -- Adam --------------------------------------------------------------------------------


def test_adam_first_step_is_lr_times_sign() -> None:
    params = {"w": np.array([1.0, -2.0, 3.0])}
    grads = {"w": np.array([0.5, -4.0, 1e-3])}
    out = Adam(lr=0.1).step(params, grads)
    # m_hat = g and v_hat = g^2 after one step: the update is lr * g / (|g| + eps)
    expected = params["w"] - 0.1 * grads["w"] / (np.abs(grads["w"]) + 1e-8)
    np.testing.assert_allclose(out["w"], expected, rtol=1e-14)
    np.testing.assert_array_equal(params["w"], [1.0, -2.0, 3.0])  # inputs left alone


def test_adam_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    params = {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=4)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(5)]
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    reference = torch.optim.Adam(tensors.values(), lr=0.01)
    ours, p = Adam(lr=0.01), params
    for g in grads:
        for k, tensor in tensors.items():
            tensor.grad = torch.tensor(g[k])
        reference.step()
        p = ours.step(p, g)
    for k, tensor in tensors.items():  # the same formula in float64: equal to rounding
        np.testing.assert_allclose(p[k], tensor.detach().numpy(), rtol=1e-12, atol=1e-14)
