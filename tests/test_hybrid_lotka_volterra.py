"""hybrid_lotka_volterra (004): field algebra, hand-written VJPs, the sparse regression,
freezing, continuum learning and a short two-phase fit."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import backend, problem, rel_error

from harness.core import registry
from harness.core.models import Parametric, Params, flatten, unflatten
from harness.numerics import driver
from harness.numerics.training import curriculum_stages
from tasks._common.hybrid_lv import MECHANISTIC, TRUTH, formula_model, true_field
from tasks._common.predation import effective_power
from tasks._common.symbolic import Monomial, best_subset, design_matrix, stlsq
from tasks._common.variants import frozen_model
from tasks.hybrid_lotka_volterra import HybridLotkaVolterra, _Variant

RNG = np.random.default_rng(4)
#: positive states in the range the trajectory visits (rabbit 0.08-2, cat 0.08-3.2)
STATES = RNG.uniform(0.1, 3.0, size=(6, 2))


def _task(**options: object) -> HybridLotkaVolterra:
    return HybridLotkaVolterra(**options)


def _solvable_params(seed: int) -> Params:
    """Mechanistic parameters near the truth and a small random NN (|NN| < 0.025 < min cat):
    trajectories stay positive and finite."""
    params = _task(init_scale=0.01).init_params(seed)
    params.update({k: np.asarray(v) for k, v in zip(MECHANISTIC, (0.9, 1.1, 1.2, 1.9), strict=True)})
    return params


def _random_hybrid_params(seed: int = 1) -> Params:
    """Mechanistic parameters away from 1 and NN weights of order 1 (the initial NN is
    near zero, which would hide errors in its VJP)."""
    rng = np.random.default_rng(seed)
    params = _task().init_params(0)
    return {
        k: np.asarray(rng.uniform(0.5, 2.0, np.shape(v)) * rng.choice([-1, 1], np.shape(v)))
        for k, v in params.items()
    }


def _fd_check(model: Parametric, params: Params, y: np.ndarray) -> None:
    """The hand-written VJP against central differences of `field` (h = 1e-6: truncation
    ~h^2 |f'''| ~ 1e-12, round-off ~1e-16 |f| / h ~ 1e-10), relative 1e-7."""
    a = np.random.default_rng(2).normal(size=y.shape)
    a_y, a_p = model.vjp_numpy(params, y, a)
    h = 1e-6
    g = lambda yy, pp: float(np.sum(a * model.rhs(pp, yy, np)))
    fd_y = np.zeros_like(y)
    for idx in np.ndindex(*y.shape):
        e = np.zeros_like(y)
        e[idx] = h
        fd_y[idx] = (g(y + e, params) - g(y - e, params)) / (2 * h)
    flat = flatten(params)
    fd_p = np.zeros_like(flat)
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = h
        fd_p[i] = (g(y, unflatten(flat + e, params)) - g(y, unflatten(flat - e, params))) / (2 * h)
    np.testing.assert_allclose(a_y, fd_y, rtol=1e-7, atol=1e-8)
    assert set(a_p) == set(params)
    np.testing.assert_allclose(flatten({k: a_p[k] for k in params}), fd_p, rtol=1e-7, atol=1e-8)


def test_hybrid_vjp_matches_finite_differences() -> None:
    _fd_check(_task().model, _random_hybrid_params(), STATES)


def test_frozen_vjp_matches_finite_differences() -> None:
    params = _random_hybrid_params()
    mech = {k: params[k] for k in MECHANISTIC}
    nn = {k: v for k, v in params.items() if k not in MECHANISTIC}
    model = _task().model
    _fd_check(frozen_model(model, nn), mech, STATES)
    _fd_check(frozen_model(model, mech), nn, STATES)


def test_formula_vjp_matches_finite_differences() -> None:
    """Fixed and trainable powers of cat, a rabbit power and a constant term."""
    terms = (Monomial((0.0, 1.0)), Monomial((0.0, 0.9)), Monomial((1.0, 0.0)), Monomial((0.0, 0.0)))
    params = {
        "alpha": 0.8,
        "beta": 1.3,
        "gamma": 1.1,
        "w0": 1.5,
        "w1": 0.4,
        "p1": 0.85,
        "w2": -0.2,
        "w3": 0.3,
    }
    params = {k: np.asarray(v) for k, v in params.items()}
    _fd_check(formula_model(terms, params), params, STATES)


def test_hybrid_field_algebra_with_hand_set_correction() -> None:
    """With NN(rabbit, cat) = 0.3 tanh(cat) - 0.1 set by hand, the hybrid field is
    alpha r - beta r c and -gamma c + delta r (c + 0.3 tanh(c) - 0.1)."""
    task = _task()
    params = task.init_params(0)
    params.update(alpha=np.asarray(0.9), beta=np.asarray(1.1), gamma=np.asarray(1.2), delta=np.asarray(2.1))
    params["nn_W0"] = np.zeros((2, 4))
    params["nn_W0"][1, 0] = 1.0
    params["nn_b0"] = np.zeros(4)
    params["nn_W1"] = np.array([[0.3], [0.0], [0.0], [0.0]])
    params["nn_b1"] = np.array([-0.1])
    r, c = STATES[:, 0], STATES[:, 1]
    expected = np.stack([0.9 * r - 1.1 * r * c, -1.2 * c + 2.1 * r * (c + 0.3 * np.tanh(c) - 0.1)], axis=1)
    np.testing.assert_allclose(task.model.rhs(params, STATES, np), expected, rtol=1e-14)


def test_truth_is_the_hybrid_at_the_ideal_correction_and_the_formula() -> None:
    """The truth equals the hybrid algebra with NN = cat^0.95 - cat (evaluated by hand: a
    4-wide tanh MLP cannot hold it exactly) and the formula model with the single term
    2.1 cat^0.95 (exactly, to rounding)."""
    r, c = STATES[:, 0], STATES[:, 1]
    ideal = -TRUTH["gamma"] * c + TRUTH["delta"] * r * (c + (c**0.95 - c))
    np.testing.assert_allclose(true_field(STATES, np)[:, 1], ideal, rtol=1e-13)
    params = {"alpha": 0.9, "beta": 1.1, "gamma": 1.2, "w0": 2.1, "p0": 0.95}
    model = formula_model((Monomial((0.0, 0.95)),), {k: np.asarray(v) for k, v in params.items()})
    np.testing.assert_allclose(
        model.rhs(model.init_params(0), STATES, np), true_field(STATES, np), rtol=1e-13
    )
    d, q = effective_power(lambda x: true_field(x, np)[:, 1] + 1.2 * x[:, 1], STATES)
    assert d == pytest.approx(2.1, rel=1e-10) and q == pytest.approx(0.95, rel=1e-10)


def test_initial_parameters() -> None:
    """Mechanistic parameters 1 (004 "Parameterised ODEs"); the correction starts near 0."""
    task = _task()
    params = task.init_params(0)
    assert [float(params[k]) for k in MECHANISTIC] == [1.0] * 4
    nn = task.mlp.rhs({k[3:]: v for k, v in params.items() if k.startswith("nn_")}, STATES, np)
    assert np.max(np.abs(nn)) < 1e-2


# -- sparse regression ---------------------------------------------------------------------------


def test_best_subset_recovers_planted_formula_exactly() -> None:
    """y = 0.5 cat^0.9 - 0.3 cat over the task's whole library (nearly collinear powers
    of cat): the two terms and their coefficients, to 1e-8."""
    task = _task(library="full")
    library = task.candidates
    x = np.random.default_rng(0).uniform(0.1, 3.0, size=(2000, 2))
    y = 0.5 * x[:, 1] ** 0.9 - 0.3 * x[:, 1]
    fit = best_subset(design_matrix(library, x), y, max_terms=3, tol=1e-10)
    assert sorted(library[k].name(("rabbit", "cat")) for k in fit.kept) == ["cat", "cat^0.9"]
    coef = {library[k]: fit.coef[k] for k in fit.kept}
    assert coef[Monomial((0.0, 0.9))] == pytest.approx(0.5, abs=1e-8)
    assert coef[Monomial((0.0, 1.0))] == pytest.approx(-0.3, abs=1e-8)
    assert fit.rel_residual < 1e-10


def test_stlsq_recovers_planted_formula_exactly() -> None:
    """STLSQ on a well-conditioned library (1, r, c, r c, r^2, c^2): y = 0.5 c^2 - 0.3 r c."""
    library = tuple(Monomial(p) for p in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2)])
    x = np.random.default_rng(0).uniform(0.1, 3.0, size=(2000, 2))
    y = 0.5 * x[:, 1] ** 2 - 0.3 * x[:, 0] * x[:, 1]
    fit = stlsq(design_matrix(library, x), y, threshold=0.05)
    assert fit.kept == (3, 5)
    np.testing.assert_allclose(fit.coef, [0, 0, 0, -0.3, 0, 0.5], atol=1e-10)


def test_monomial_gradient() -> None:
    term = Monomial((1.0, 0.9))
    h = 1e-6
    fd = np.stack([(term(STATES + e) - term(STATES - e)) / (2 * h) for e in np.eye(2) * h], axis=1)
    np.testing.assert_allclose(term.grad(STATES), fd, rtol=1e-8)
    assert term.name(("rabbit", "cat")) == "rabbit cat^0.9"
    assert Monomial((0.0, 0.0)).name(("rabbit", "cat")) == "1"


# -- freezing and continuum learning ------------------------------------------------------------------


def test_curriculum_stages() -> None:
    """004 "Continuum learning": the first 5, 10, 15, ... time points, then all."""
    assert curriculum_stages(21, 5) == [5, 10, 15, 20, 21]
    assert curriculum_stages(20, 5) == [5, 10, 15, 20]
    assert curriculum_stages(21, 0) == [21]
    assert curriculum_stages(7, 1) == [2, 3, 4, 5, 6, 7]


@functools.cache
def _numpy_impl(**options: object):
    task = _task(**options)
    data = task.make_data(0)
    return task, data, registry.BACKENDS["numpy-adjoint"](task, data)


def test_frozen_phase_gradients_are_the_full_gradient_restricted() -> None:
    """Freezing removes parameters; it does not change the loss (same forward solve: 1e-12)
    or the other gradients (relative 1e-5: numpy-adjoint's backward step control covers the
    parameter adjoint too, so fewer parameters means other steps, at rtol = 1e-7)."""
    task, _data, impl = _numpy_impl()
    params = _solvable_params(3)
    loss, grad = impl.value_and_grad(params)
    for keep in (MECHANISTIC, tuple(k for k in params if k not in MECHANISTIC)):
        const = {k: v for k, v in params.items() if k not in keep}
        variant = impl.rebuild(_Variant(task, frozen_model(task.model, const)))
        loss_v, grad_v = variant.value_and_grad({k: params[k] for k in keep})
        assert set(grad_v) == set(keep)
        assert loss_v == pytest.approx(loss, rel=1e-12)
        assert rel_error(grad_v, {k: grad[k] for k in keep}) < 1e-5


@pytest.mark.parametrize("impl_name", sorted(registry.BACKENDS))
def test_frozen_phase_on_every_backend(impl_name: str) -> None:
    """The phase-1 model (NN weights as constants in the back-end's own arrays) against the
    forward-sensitivity reference: relative 1e-5, the conformance bound."""
    cls = registry.BACKENDS[impl_name]
    if not cls.available():
        pytest.skip(f"{impl_name} unavailable")
    task, data, _ = _numpy_impl()
    params = _random_hybrid_params(5)
    params = {k: 0.1 * v if k.startswith("nn_") else abs(v) for k, v in params.items()}
    variant = _Variant(
        task, frozen_model(task.model, {k: v for k, v in params.items() if k not in MECHANISTIC})
    )
    mech = {k: params[k] for k in MECHANISTIC}
    _, ref, _ = variant.reference_gradient(mech, data)
    _, grad = cls(variant, data).value_and_grad(mech)
    assert rel_error(grad, ref) < 1e-5


# -- the two-phase fit ------------------------------------------------------------------------------------


@functools.cache
def _short_fit(**options: object):
    task, data, impl = _numpy_impl(**options)
    seen: list[tuple[int, float]] = []
    params = task.init_params(0)
    result = task.fit(impl, params, iters=24, lr=0.05, callback=lambda i, loss: seen.append((i, loss)))
    return task, data, impl, params, result, seen


def test_two_phase_fit_reduces_loss_and_freezes() -> None:
    """24 iterations: 6 physics, 4 NN, 14 formula (fractions 0.25 / rest / 0.6)."""
    task, _data, impl, params, result, seen = _short_fit()
    n1, n2, n3 = result.info["phase_iters"]
    assert (n1, n2, n3) == (6, 4, 14)
    assert len(result.loss_history) == 24 and [i for i, _ in seen] == list(range(24))
    history = result.loss_history
    assert history[n1] < history[0]  # phase 1 reduced the loss
    assert history[n1 + n2 - 1] <= history[n1] * (1 + 1e-9) or history[-1] < history[n1]
    assert list(result.params) == list(params)
    # phase 2 kept the mechanistic parameters: re-running phase 1 alone gives the same ones
    nn = {k: v for k, v in params.items() if k not in MECHANISTIC}
    phase1 = impl.rebuild(_Variant(task, frozen_model(task.model, nn)))
    mech = driver.adam(phase1, {k: params[k] for k in MECHANISTIC}, iters=n1, lr=0.05).params
    for k in MECHANISTIC:
        assert float(result.params[k]) == pytest.approx(float(mech[k]), rel=1e-12)
    # ... and the NN moved
    assert any(not np.allclose(result.params[k], params[k]) for k in nn)
    final, _ = impl.value_and_grad(result.params)
    assert np.isfinite(final) and final < history[0]


def test_fit_info_and_metrics_keys() -> None:
    task, data, impl, _params, result, _ = _short_fit()
    info = result.info
    for key in (
        "found_terms",
        "found_coefficients",
        "found_nn",
        "formula",
        "formula_coefficients",
        "formula_cat_powers",
        "formula_alpha_rel_error",
        "formula_interaction_rel_error",
        "formula_effective_cat_power",
        "formula_fit_rmse",
        "phase_iters",
        "curriculum_stages",
    ):
        assert key in info, key
    assert len(info["found_terms"]) == len(info["found_coefficients"]) >= 1
    assert len(info["formula_terms"]) == len(info["formula_coefficients"]) == len(info["formula_cat_powers"])
    metrics = task.metrics(lambda t, y0: impl.predict(result.params, t, y0), data, result.params)
    for key in ("fit_rmse", "extrap_forward_rmse", "extrap_backward_rmse", "interaction_rel_error"):
        assert np.isfinite(metrics[key])
    for k in MECHANISTIC:
        assert metrics[f"{k}_rel_error"] == pytest.approx(abs(float(result.params[k]) - TRUTH[k]) / TRUTH[k])
    assert {"effective_delta", "effective_cat_power"} <= set(metrics)


def test_continuum_learning_fit() -> None:
    """curriculum_step = 10 on 21 points: phases 1 and 2 train on 10, 20, 21 points (so
    few iterations leave the NN barely trained: the regression may find a formula that
    diverges, which `fit` records in `formula_failed` and drops from the history)."""
    *_, result, seen = _short_fit(curriculum_step=10)
    assert result.info["curriculum_stages"] == [10, 20, 21]
    assert [i for i, _ in seen][:10] == list(range(10))
    assert len(result.loss_history) == 24 or "formula_failed" in result.info
    assert all(np.isfinite(result.loss_history))


def test_regression_finds_the_power_law_of_a_planted_hybrid() -> None:
    """A hybrid whose NN is replaced by its least-squares fit: sample, regress and read out.
    Here the NN is fitted (in NumPy) to 1.1 cat^0.95 - cat on the trajectory's states, and
    the regression of cat + NN must find the single term cat^0.95 with coefficient ~1.1."""
    task = _task()
    data = task.make_data(0)
    params = task.init_params(0)
    x = data.y_true.reshape(-1, 2)
    # a 2-4-1 tanh MLP fitted by Gauss-Newton-free means: hidden layer fixed, output solved
    rng = np.random.default_rng(0)
    params["nn_W0"], params["nn_b0"] = rng.normal(size=(2, 4)), rng.normal(size=4)
    hidden = np.tanh(x @ params["nn_W0"] + params["nn_b0"])
    target = 1.1 * x[:, 1] ** 0.95 - x[:, 1]
    sol = np.linalg.lstsq(np.c_[hidden, np.ones(len(x))], target, rcond=None)[0]
    params["nn_W1"], params["nn_b1"] = sol[:4, None], sol[4:]
    params.update({k: np.asarray(v) for k, v in TRUTH.items() if k in MECHANISTIC})
    library, fit = task.regress(params, data)
    names = [library[k].name(("rabbit", "cat")) for k in fit.kept]
    assert names == ["cat^0.95"], (names, fit)
    assert fit.coef[fit.kept[0]] == pytest.approx(1.1, rel=0.05)


# -- learnt initial condition ------------------------------------------------------------------------------


def test_learnt_initial_vjp_matches_finite_differences() -> None:
    """Clock values before, inside and after the lead-in ramp (lead 0.5: s in [-0.5, 0])."""
    task = _task(learn_y0=True)
    params = _random_hybrid_params()
    params["y0_offset"] = np.array([0.3, -0.2])
    clock = np.array([-0.45, -0.3, -0.1, -0.02, 0.2, 1.0])[:, None]
    _fd_check(task.model, params, np.concatenate([STATES, clock], axis=1))


def test_learnt_initial_state_data_and_lead_in() -> None:
    """The clock-augmented data start at -lead from the observed state; with f = 0 (all
    parameters 0) the lead-in moves the state by exactly y0_offset (integral of 1 - b over
    the ramp = lead / 2)."""
    task = _task(learn_y0=True, noise=0.05)
    data = task.make_data(3)
    plain = task.plain_data(3)
    assert data.t[0] == -0.5 and np.array_equal(data.t[1:], plain.t)
    np.testing.assert_array_equal(data.y0, [[*plain.y[0, 0], -0.5]])
    np.testing.assert_array_equal(data.y[1:, :, :2], plain.y)
    np.testing.assert_array_equal(data.y[:, 0, 2], data.t)
    params = {k: np.zeros_like(v) for k, v in task.init_params(0).items()}
    params["y0_offset"] = np.array([0.3, -0.2])
    _, _, impl = _numpy_impl(learn_y0=True, noise=0.05)
    start = impl.predict(params, data.t[:2], data.y0)[-1, 0]
    np.testing.assert_allclose(start, [*(plain.y[0, 0] + [0.3, -0.2]), 0.0], atol=1e-7)


@pytest.mark.parametrize("impl_name", sorted(registry.BACKENDS))
def test_learnt_initial_gradient_on_every_backend(impl_name: str) -> None:
    """The learn_y0 model against the forward-sensitivity reference: relative 1e-5 (the
    conformance bound; measured 2e-7 to 9e-7 on the four back-ends)."""
    cls = registry.BACKENDS[impl_name]
    if not cls.available():
        pytest.skip(f"{impl_name} unavailable")
    task, data, _ = _numpy_impl(learn_y0=True, noise=0.05)
    params = _solvable_params(5)
    params["y0_offset"] = np.array([0.05, -0.03])
    _, ref, _ = task.reference_gradient(params, data)
    _, grad = cls(task, data).value_and_grad(params)
    assert set(grad) == set(ref)
    assert rel_error(grad, ref) < 1e-5


def test_learnt_initial_fit_metrics() -> None:
    task, data, impl, _params, result, _ = _short_fit(learn_y0=True, noise=0.05)
    assert "y0_offset" in result.params
    metrics = task.metrics(lambda t, y0: impl.predict(result.params, t, y0), data, result.params)
    for key in ("fit_rmse", "extrap_backward_rmse", "y0_learnt_error", "y0_observed_error"):
        assert np.isfinite(metrics[key]), key
    assert result.info["curriculum_stages"] == [22]


def test_default_fit_recovers_the_correction_term() -> None:
    """The issue's metric with the task's defaults on numpy-adjoint (10 s): the regression
    keeps the single term cat^0.95 of the truth's 2.1 rabbit cat^0.95, and retraining the
    formula brings its coefficient and power within 1% (measured: 2.0905, 0.9501 on every
    back-end; alpha, beta, gamma within 1.2%, still converging in phase 3)."""
    task, _, params, *_ = problem("hybrid_lotka_volterra")
    impl = backend("numpy-adjoint", "hybrid_lotka_volterra")
    info = task.fit(impl, params, iters=task.protocol.defaults["iters"], lr=task.protocol.defaults["lr"]).info
    assert info["found_terms"] == ["cat^0.95"]
    assert info["formula_coefficients"][0] == pytest.approx(TRUTH["delta"], rel=0.01)
    assert info["formula_cat_powers"][0] == pytest.approx(TRUTH["cat_power"], rel=0.01)
    for k in ("alpha", "beta", "gamma"):  # delta is the formula's coefficient, checked above
        assert info[f"formula_{k}_rel_error"] < 0.02
