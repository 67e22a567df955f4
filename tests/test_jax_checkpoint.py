"""`jax-checkpoint` beyond conformance: convergence of its gradient with the tolerance,
agreement with diffrax's other adjoints, float64, device errors and work counts.

Tolerances are beside the assertions; the measured values (Lotka-Volterra, seed 0) are in
the comments.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import problem, rel_error

pytest.importorskip("diffrax")
pytest.importorskip("optax")

import diffrax
import jax
import jax.numpy as jnp

from backends.jax_checkpoint import JaxCheckpoint, solve

TASK = "lotka_volterra"


def _impl(**solver: float) -> JaxCheckpoint:
    task, data, *_ = problem(TASK)
    return JaxCheckpoint(task, data, solver=solver or None)


def _grad(adjoint: diffrax.AbstractAdjoint, tol: float, max_steps: int) -> dict[str, np.ndarray]:
    """Gradient of the task loss through `solve` with the given diffrax adjoint."""
    task, data, params, *_ = problem(TASK)
    t, y0, obs = (jnp.asarray(a) for a in (data.t, data.y0, data.y))
    field = lambda p, y: task.model.rhs(p, y, jnp)

    def loss(p: dict) -> jax.Array:
        sol = solve(field, p, t, y0, rtol=tol, atol=tol, max_steps=max_steps, adjoint=adjoint)
        return task.loss(sol.ys, obs)

    grad = jax.jit(jax.grad(loss))({k: jnp.asarray(v) for k, v in params.items()})
    return {k: np.asarray(grad[k]) for k in params}


def test_gradient_error_shrinks_as_rtol_tightens() -> None:
    params, ref_grad = problem(TASK)[2], problem(TASK)[4]
    rtols = (1e-4, 1e-6, 1e-8)
    errors = [rel_error(_impl(rtol=r, atol=r).value_and_grad(params)[1], ref_grad) for r in rtols]
    # measured 7.3e-5, 6.6e-7, 5.3e-9: about 0.6 rtol, a factor 100 per two decades
    for rtol, error in zip(rtols, errors, strict=True):
        assert error < 10 * rtol
    for coarse, fine in itertools.pairwise(errors):
        assert fine < coarse / 10


def test_recursive_checkpoint_matches_direct_adjoint() -> None:
    # Both differentiate the same discrete solve (discretise-then-optimise), so they agree
    # to rounding (measured 1.3e-16).  max_steps=64 gives equinox 10 checkpoints for the
    # 12 steps, so the recomputation path of the checkpointed loop is exercised too.
    recursive = _grad(diffrax.RecursiveCheckpointAdjoint(), 1e-7, 64)
    direct = _grad(diffrax.DirectAdjoint(), 1e-7, 64)
    assert rel_error(recursive, direct) < 1e-12


def test_recursive_checkpoint_matches_backsolve_at_tight_tolerance() -> None:
    # Optimise-then-discretise (continuous adjoint, u solved backwards) converges to the
    # same exact gradient: measured 4.0e-11 apart at rtol = atol = 1e-10.
    recursive = _grad(diffrax.RecursiveCheckpointAdjoint(), 1e-10, 4096)
    backsolve = _grad(diffrax.BacksolveAdjoint(), 1e-10, 4096)
    assert rel_error(recursive, backsolve) < 1e-9


def test_float64_is_on() -> None:
    impl = _impl()
    params = problem(TASK)[2]
    loss, grad = impl.block(impl.value_and_grad_native(impl.load(params)))
    assert loss.dtype == jnp.float64
    assert all(g.dtype == jnp.float64 for g in jax.tree_util.tree_leaves(grad))
    assert all(v.dtype == np.float64 for v in impl.value_and_grad(params)[1].values())


def test_float32_option() -> None:
    task, data, params, ref_loss, _ = problem(TASK)
    impl = JaxCheckpoint(task, data, dtype="float32", solver={"rtol": 1e-5, "atol": 1e-5})
    loss, grad = impl.value_and_grad(params)
    assert all(v.dtype == np.float32 for v in grad.values())
    assert loss == pytest.approx(ref_loss, rel=1e-4)


def test_cuda_without_gpu_is_a_clean_runtime_error() -> None:
    try:
        jax.devices("cuda")
    except RuntimeError:
        pass
    else:
        pytest.skip("a CUDA device is present")
    task, data, *_ = problem(TASK)
    with pytest.raises(RuntimeError, match="not available") as info:
        JaxCheckpoint(task, data, device="cuda")
    assert "\n" not in str(info.value)


def test_nfe_counts_match_solver_steps() -> None:
    impl = _impl()
    forward, backward = impl.count_nfe(problem(TASK)[2])
    # Tsit5: 6 evaluations per step (FSAL) plus one at the start; the backward pass
    # re-evaluates every stage once under linearisation and takes one VJP of each.
    assert impl.n_steps is not None and impl.n_steps > 0
    assert forward == 6 * impl.n_steps + 1
    assert backward == 2 * forward


def test_nfe_counts_recomputation_with_few_checkpoints() -> None:
    task, data, params, *_ = problem(TASK)
    impl = JaxCheckpoint(task, data, solver={"rtol": 1e-10, "atol": 1e-10}, max_steps=128)
    forward, backward = impl.count_nfe(params)
    # 37 steps and 15 checkpoints: some steps are recomputed from earlier checkpoints
    assert backward > 2 * forward


def test_predict_backward_in_time_returns_to_start() -> None:
    impl = _impl(rtol=1e-10, atol=1e-10)
    _, data, params, *_ = problem(TASK)
    forward = impl.predict(params, np.linspace(0.0, 2.0, 5), data.y0)
    backward = impl.predict(params, np.linspace(2.0, 0.0, 5), forward[-1])
    np.testing.assert_allclose(backward[::-1], forward, rtol=1e-7, atol=1e-8)
