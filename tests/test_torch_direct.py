"""`torch-direct` beyond conformance: it differentiates its own discrete solution, keeps
every stage (memory grows with the solver's steps, 002 §1.3), and counts its work."""

from __future__ import annotations

import pytest
from conftest import problem, rel_error

from harness.core import registry

pytest.importorskip("torch")
pytest.importorskip("torchdiffeq")

DIRECT = registry.BACKENDS["torch-direct"]
ADJOINT = registry.BACKENDS["torch-adjoint"]


def test_not_the_adjoints_gradient_on_the_same_forward_solve_and_both_converge() -> None:
    """torch-direct and torch-adjoint share the forward dopri5 solve and differ in the
    gradient method alone: at rtol = atol = 1e-4 their gradients differ by more than
    rounding; both converge to the exact gradient as the tolerance tightens.  (Central
    differences of the loss are no oracle here: they see the step sizes change with the
    weights, which backprop through the solver holds fixed.)"""
    task, data, params, _, ref_grad = problem("linear_adjoint")

    def grads(tol: float) -> tuple[dict, dict]:
        solver = {"rtol": tol, "atol": tol}
        return DIRECT(task, data, solver=solver).value_and_grad(params)[1], ADJOINT(
            task, data, solver=solver
        ).value_and_grad(params)[1]

    loose_direct, loose_adjoint = grads(1e-4)
    assert rel_error(loose_direct, loose_adjoint) > 1e-8
    tight_direct, tight_adjoint = grads(1e-10)
    for tight, loose in ((tight_direct, loose_direct), (tight_adjoint, loose_adjoint)):
        assert rel_error(tight, ref_grad) < rel_error(loose, ref_grad) / 100


def test_saved_bytes_grow_with_the_solvers_steps() -> None:
    """Backprop keeps every stage of every step: the bytes autograd saves grow with the
    horizon (fixed 26 observations, horizon x4); the continuous adjoint's stay flat."""
    ratios = {}
    for cls in (DIRECT, ADJOINT):
        sizes = []
        for t1 in (2.5, 10.0):
            task = registry.TASKS["lotka_volterra"](t1=t1, n_obs=26, extrap=1.0)
            sizes.append(cls(task, task.make_data(0)).framework_peak_bytes(task.init_params(0)))
        ratios[cls.name] = sizes[1] / sizes[0]
    assert ratios["torch-direct"] > 1.5, ratios
    assert ratios["torch-adjoint"] < 1.2, ratios


def test_backward_work_is_a_vjp_per_kept_stage() -> None:
    """Backward: one VJP through each forward call that reaches the loss, so never more
    than the forward calls; the same forward solve as torch-adjoint."""
    task, data, params, *_ = problem("lotka_volterra")
    forward, backward = DIRECT(task, data).count_nfe(params)
    assert 0 < backward <= forward
    assert forward == ADJOINT(task, data).count_nfe(params)[0]
