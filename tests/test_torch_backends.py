"""Numerical properties of the torch back-ends (`rk4-unrolled`, `torch-adjoint`) beyond
conformance: convergence order, tolerance response, memory scaling, counts, devices."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import problem, rel_error
from scipy.linalg import expm

from harness.core import registry

torch = pytest.importorskip("torch")
pytest.importorskip("torchdiffeq")

RK4 = registry.BACKENDS["rk4-unrolled"]
ADJOINT = registry.BACKENDS["torch-adjoint"]


def test_rk4_gradient_converges_at_order_four() -> None:
    """002 §3.1: classical RK4 is fourth order, and so is the gradient of its discrete
    solution.  linear_adjoint's closed-form gradient is the exact oracle; dt = 0.1 ... 0.0125
    keeps the error (5e-7 ... 1e-10) well above float64 round-off.  Slope of the linear
    regression of log(error) on log(dt): 4 within 0.3."""
    task, data, params, _, ref_grad = problem("linear_adjoint")
    dts = np.array([0.1, 0.05, 0.025, 0.0125])
    errors = [rel_error(RK4(task, data, solver={"dt": dt}).value_and_grad(params)[1], ref_grad) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert slope == pytest.approx(4.0, abs=0.3), (slope, errors)


def test_rk4_step_count_and_nfe() -> None:
    """ceil(|dt_i| / dt) steps per interval (0.1 / 0.01 is 10, not 11), 4 calls and 4 VJPs
    per step."""
    task, data, params, *_ = problem("lotka_volterra")
    impl = RK4(task, data, solver={"dt": 0.01})
    assert impl.n_steps == 10 * (data.n_obs - 1)
    assert impl.count_nfe(params) == (4 * impl.n_steps, 4 * impl.n_steps)
    coarse = RK4(task, data, solver={"dt": 0.3})  # intervals of 0.1: one step each
    assert coarse.n_steps == data.n_obs - 1


def test_adjoint_gradient_error_shrinks_with_tolerance() -> None:
    """torch-adjoint on linear_adjoint (exact gradient): each hundredfold tightening of
    rtol = atol cuts the gradient error (measured: 2.6e-5, 1.1e-6, 7.6e-9, 5.8e-11), and
    the loosest is no better than 1e-6."""
    task, data, params, _, ref_grad = problem("linear_adjoint")
    tols = [1e-4, 1e-6, 1e-8, 1e-10]
    errors = [
        rel_error(ADJOINT(task, data, solver={"rtol": tol, "atol": tol}).value_and_grad(params)[1], ref_grad)
        for tol in tols
    ]
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[0] > 1e-6 and errors[-1] < 1e-9, errors


def test_adjoint_seminorm_option() -> None:
    """``seminorm=True`` leaves the parameter adjoint out of the backward error control
    (Kidger et al. 2021): no more backward evaluations, gradient still within the
    conformance bound of linear_adjoint (1e-8; measured 1.4e-10, 260 vs 314 evaluations)."""
    task, data, params, _, ref_grad = problem("linear_adjoint")
    default, semi = ADJOINT(task, data), ADJOINT(task, data, seminorm=True)
    assert semi.count_nfe(params)[1] <= default.count_nfe(params)[1]
    assert rel_error(semi.value_and_grad(params)[1], ref_grad) < 1e-8


def test_saved_tensor_bytes_scale_with_horizon() -> None:
    """Backprop through RK4 keeps every stage: saved bytes grow linearly with the horizon
    (fixed dt, fixed 26 observations: 250 to 1000 steps, ratio 4; accepted 3 to 5).  The
    continuous adjoint keeps only the states at the observations: flat (ratio below 1.2)."""
    ratios = {}
    for cls in (RK4, ADJOINT):
        sizes = []
        for t1 in (2.5, 10.0):
            task = registry.TASKS["lotka_volterra"](t1=t1, n_obs=26, extrap=1.0)
            data = task.make_data(0)
            sizes.append(cls(task, data).framework_peak_bytes(task.init_params(0)))
        ratios[cls.name] = sizes[1] / sizes[0]
    assert 3.0 < ratios["rk4-unrolled"] < 5.0, ratios
    assert ratios["torch-adjoint"] < 1.2, ratios


@pytest.mark.parametrize("cls", [RK4, ADJOINT], ids=lambda c: c.name)
def test_predict_backward_in_time_matches_expm(cls: type) -> None:
    """Decreasing times integrate backwards: against expm(W t) z0 for t < 0 (tolerance
    1e-7 absolute: rtol = atol = 1e-10 and dt = 1e-3 by default)."""
    task, data, params, *_ = problem("linear_adjoint")
    times = np.array([0.0, -0.3, -0.7, -1.0])
    exact = np.stack([data.y0 @ expm(params["W"] * t).T for t in times])
    np.testing.assert_allclose(cls(task, data).predict(params, times, data.y0), exact, rtol=0, atol=1e-7)


@pytest.mark.parametrize("cls", [RK4, ADJOINT], ids=lambda c: c.name)
def test_float32(cls: type) -> None:
    """float32 runs end to end and returns float32 gradients near the float64 reference
    (measured 1e-6 on lotka_volterra; accepted 1e-4)."""
    task, data, params, _, ref_grad = problem("lotka_volterra")
    _, grad = cls(task, data, dtype="float32", solver={"rtol": 1e-5, "atol": 1e-5}).value_and_grad(params)
    assert all(g.dtype == np.float32 for g in grad.values())
    assert rel_error(grad, ref_grad) < 1e-4


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device exists here")
@pytest.mark.parametrize("cls", [RK4, ADJOINT], ids=lambda c: c.name)
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_gpu_is_a_clean_error(cls: type, device: str) -> None:
    task, data, *_ = problem("linear_adjoint")
    with pytest.raises(RuntimeError, match="sees no CUDA device") as info:
        cls(task, data, device=device)
    assert "\n" not in str(info.value)


def test_backend_modules_import_without_torch() -> None:
    """The registry imports every back-end module: with torch and torchdiffeq unimportable,
    the torch back-ends still register and report themselves unavailable."""
    code = (
        "import sys; sys.modules['torch'] = sys.modules['torchdiffeq'] = None\n"
        "import backends.torch_adjoint as a, backends.rk4_unrolled as b\n"
        "assert not a.TorchAdjoint.available() and not b.RK4Unrolled.available()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
