"""The hand-written Dormand-Prince 5(4) against `scipy.integrate.RK45`, the stepper it
reproduces: same steps, same evaluation counts, same values to rounding.

Tolerances: the two compute the same arithmetic in a different order (stage sums as one
dot product here), so they agree to rounding, not bit for bit.  The error estimate is a
difference of nearly equal sums, so its rounding is ~1e-10 relative, and so is that of the
proposed step; values of a controlled solve agree to ~1e-12 (asserted 1e-11).  A step
decision that rounding flipped would change the evaluation count, which must match exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import RK45, solve_ivp

from harness.numerics.dopri5 import integrate

RNG = np.random.default_rng(0)
W0, W1 = RNG.normal(size=(2, 16)), 0.3 * RNG.normal(size=(16, 2))
Y0 = np.array([1.0, -0.5])


def field(_t: float, y: np.ndarray) -> np.ndarray:
    """A small tanh MLP: nonlinear, non-stiff, steps that vary along the solution."""
    return np.tanh(y @ W0) @ W1 + np.array([0.1, -0.2]) * np.sin(_t)


@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-10])
def test_forward_solve_matches_solve_ivp(tol: float) -> None:
    times = np.linspace(0.0, 10.0, 41)
    ref = solve_ivp(
        field, (0.0, 10.0), Y0, method="RK45", t_eval=times, dense_output=True, rtol=tol, atol=tol
    )
    out = integrate(field, 0.0, Y0, 10.0, rtol=tol, atol=tol, t_eval=times, dense=True)
    assert out.failure is None and out.nfev == ref.nfev
    assert out.y_eval is not None and out.dense is not None
    np.testing.assert_allclose(out.y_eval, ref.y.T, rtol=1e-11, atol=1e-13)
    for t in RNG.uniform(0.0, 10.0, 30):
        np.testing.assert_allclose(out.dense(t), ref.sol(t), rtol=1e-11, atol=1e-13)
    assert len(out.dense) == ref.sol.n_segments


@pytest.mark.parametrize("first_step", [None, 0.05])
def test_backward_solve_matches_rk45(first_step: float | None) -> None:
    """The adjoint's use: t decreasing, a carried first step, the proposed next step out."""
    ref = RK45(field, 10.0, Y0, 0.0, rtol=1e-8, atol=1e-8, first_step=first_step)
    while ref.status == "running":
        ref.step()
    out = integrate(field, 10.0, Y0, 0.0, rtol=1e-8, atol=1e-8, first_step=first_step)
    assert out.nfev == ref.nfev
    assert out.h_abs == pytest.approx(ref.h_abs, rel=1e-8)
    np.testing.assert_allclose(out.y, ref.y, rtol=1e-11)


def test_controlled_components_equal_scipy_with_no_tolerance_on_the_rest() -> None:
    """`controlled=m`: the RMS norm over the first m components, which SciPy computes when
    the others have an infinite atol and the controlled tolerances are scaled by
    sqrt(m / n) (the seminorm set-up numpy-adjoint used on SciPy)."""

    def augmented(t: float, z: np.ndarray) -> np.ndarray:
        return np.concatenate([field(t, z[:2]), 50.0 * np.cos(7.0 * t) * z[:2]])  # a stiff-ish integral

    z0 = np.concatenate([Y0, np.zeros(2)])
    scale = np.sqrt(2 / 4)
    rtol = np.array([1e-6 * scale] * 2 + [1.0] * 2)
    atol = np.array([1e-6 * scale] * 2 + [np.inf] * 2)
    ref = RK45(augmented, 0.0, z0, 5.0, rtol=rtol, atol=atol)
    while ref.status == "running":
        ref.step()
    out = integrate(augmented, 0.0, z0, 5.0, rtol=1e-6, atol=1e-6, controlled=2)
    full = integrate(augmented, 0.0, z0, 5.0, rtol=1e-6, atol=1e-6)
    assert out.nfev == ref.nfev < full.nfev
    np.testing.assert_allclose(out.y[:2], ref.y[:2], rtol=1e-11)
    # the uncontrolled integral carries its (large) truncation error, which moves with the
    # proposed steps' ~1e-10 rounding
    np.testing.assert_allclose(out.y[2:], ref.y[2:], rtol=1e-6)


def test_a_blow_up_is_a_failure_not_an_exception() -> None:
    """y' = y^2 from y(0) = 1 blows up at t = 1: SciPy's message, the last state kept."""
    out = integrate(lambda _t, y: y * y, 0.0, np.ones(1), 2.0, rtol=1e-6, atol=1e-9)
    ref = solve_ivp(lambda _t, y: y * y, (0.0, 2.0), np.ones(1), method="RK45", rtol=1e-6, atol=1e-9)
    assert out.failure == ref.message
    assert np.isfinite(out.y).all() and out.y[0] > 1e3


def test_an_empty_span_evaluates_once_and_takes_no_step() -> None:
    calls = []
    out = integrate(lambda t, y: calls.append(t) or -y, 3.0, Y0, 3.0, rtol=1e-6, atol=1e-6)
    assert (out.nfev, out.steps, len(calls), out.failure) == (1, 0, 1, None)
    np.testing.assert_array_equal(out.y, Y0)
