"""The training driver (`harness.numerics.driver`): Adam against PyTorch's, the guarded
L-BFGS polish, the convergence criterion, and the same iterates on every back-end."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from conftest import backend, problem

from harness.core import registry
from harness.core.models import flatten
from harness.numerics import driver
from harness.numerics.optim import Adam
from harness.numerics.training import TrainingMonitor, train_cell

TASK = "lotka_volterra"


def _quadratic(scale: np.ndarray) -> types.SimpleNamespace:
    """L = sum(scale * (x - 1)^2) over one parameter array "x"; an independent closed form."""

    def value_and_grad(params: dict) -> tuple[float, dict]:
        d = params["x"] - 1.0
        return float(np.sum(scale * d * d)), {"x": 2.0 * scale * d}

    return types.SimpleNamespace(value_and_grad=value_and_grad)


def _rosenbrock(fail_outside: float = math.inf) -> types.SimpleNamespace:
    """Rosenbrock's valley in 2-d; raises (a failed solve) where |x| > `fail_outside`."""
    calls = types.SimpleNamespace(n=0)

    def value_and_grad(params: dict) -> tuple[float, dict]:
        calls.n += 1
        x, y = params["p"]
        if max(abs(x), abs(y)) > fail_outside:
            raise RuntimeError("max_steps reached")
        value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        return float(value), {"p": grad}

    return types.SimpleNamespace(value_and_grad=value_and_grad, calls=calls)


def test_adam_takes_pytorchs_steps() -> None:
    """Ten steps on an ill-scaled quadratic give `torch.optim.Adam`'s iterates to 1e-12
    (the same formula in float64: only rounding differs)."""
    torch = pytest.importorskip("torch")
    scale = np.array([1e-3, 1.0, 1e3])
    x0 = np.array([0.3, -2.0, 5.0])
    seen: list[np.ndarray] = []
    objective = _quadratic(scale)
    recording = types.SimpleNamespace(
        value_and_grad=lambda p: (seen.append(p["x"].copy()), objective.value_and_grad(p))[1]
    )
    driver.adam(recording, {"x": x0}, iters=10, lr=0.1)
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.1)
    for k in range(10):
        np.testing.assert_allclose(seen[k], x.detach().numpy(), rtol=1e-12, atol=1e-14)
        opt.zero_grad()
        (torch.tensor(scale) * (x - 1.0) ** 2).sum().backward()
        opt.step()


def test_adam_returns_the_best_iterate_and_stops_on_the_callback() -> None:
    objective = _quadratic(np.ones(2))
    result = driver.adam(objective, {"x": np.zeros(2)}, iters=50, lr=0.5, callback=lambda i, loss: i == 6)
    assert len(result.loss_history) == 7
    best = int(np.argmin(result.loss_history))
    assert objective.value_and_grad(result.params)[0] == pytest.approx(result.loss_history[best], rel=1e-15)
    stops = driver.adam(objective, {"x": np.zeros(2)}, iters=50, lr=0.5, callback=lambda i, loss: True)
    assert len(stops.loss_history) == 1 and set(stops.params) == {"x"}


def test_lbfgs_polish_stops_at_the_gradient_rule() -> None:
    """From (-1.2, 1), L-BFGS reaches Rosenbrock's minimum (1, 1); it stops at the first
    accepted evaluation whose gradient norm is at most gtol."""
    objective = _rosenbrock()
    result = driver.lbfgs(objective, {"p": np.array([-1.2, 1.0])}, max_evals=500, gtol=1e-8)
    assert result.info["message"].startswith("gradient norm at most")
    np.testing.assert_allclose(result.params["p"], [1.0, 1.0], atol=1e-7)
    assert result.info["evals"] == len(result.loss_history) == objective.calls.n < 500
    assert result.info["rejected"] == 0


@pytest.mark.parametrize("budget", [3, 10, 17])
def test_lbfgs_spends_at_most_its_budget(budget: int) -> None:
    """SciPy's L-BFGS-B checks `maxfun` after a line search, so it used to make one more
    evaluation than the budget (4 for 3, 11 for 10, 18 for 17, measured); the driver
    stops it at the budget."""
    objective = _rosenbrock()
    result = driver.lbfgs(objective, {"p": np.array([-1.2, 1.0])}, max_evals=budget)
    assert result.info["evals"] == objective.calls.n == budget
    assert result.info["message"] == f"evaluation budget of {budget} spent"


def test_lbfgs_rejects_failed_solves_and_keeps_the_best() -> None:
    """Trial steps into the region where the 'solver' fails are rejected evaluations (the
    line search steps back); the polish still reaches the minimum, and says how many."""
    objective = _rosenbrock(fail_outside=1.5)
    start = {"p": np.array([-1.2, 1.0])}
    result = driver.lbfgs(objective, start, max_evals=1000, gtol=1e-8)
    assert result.info["rejected"] > 0 and "max_steps reached" in result.info["rejected_first"]
    assert any(math.isnan(x) for x in result.loss_history)
    np.testing.assert_allclose(result.params["p"], [1.0, 1.0], atol=1e-6)
    # unguarded, the same start fails outright: the first trial step leaves the region
    with pytest.raises(RuntimeError, match="max_steps"):
        driver.lbfgs(_rosenbrock(fail_outside=1.5), {"p": np.array([2.0, 1.0])}, max_evals=10)


def test_lbfgs_stops_on_the_callback_and_counts_evaluations_on() -> None:
    seen: list[int] = []
    result = driver.lbfgs(
        _rosenbrock(),
        {"p": np.array([-1.2, 1.0])},
        max_evals=500,
        offset=40,
        callback=lambda i, loss: seen.append(i) or i >= 44,
    )
    assert seen == [40, 41, 42, 43, 44] and len(result.loss_history) == 5
    assert result.info["message"] == "stopped by the training monitor"


def test_convergence_is_the_gradient_rule_with_its_figures() -> None:
    ok = driver.convergence(1e-9, 2e-8, 0.1, 1e-6)
    assert ok.converged and ok.criterion == "gradient norm 2e-08 <= 1e-06 x its initial 0.1"
    not_yet = driver.convergence(1e-5, 3e-4, 0.1, 1e-6)
    assert not not_yet.converged and not_yet.criterion == "gradient norm 0.0003 > 1e-06 x its initial 0.1"
    assert not driver.convergence(math.nan, 0.0, 0.1, 1e-6).converged
    assert ok.fields() == {
        "train_converged": True,
        "train_converged_by": ok.criterion,
        "train_grad_norm_final": 2e-8,
    }


def test_minibatch_convergence_is_the_plateau_of_the_epoch_loss() -> None:
    """SGD's mean epoch loss, its schedule run to the end: within 2% over the last epoch is
    converged (whatever the gradient norm of one batch), more than that is not."""
    flat = driver.convergence(0.13, 2.0, 1.0, 1e-6, epoch_losses=[0.1093, 0.1081, 0.1065])
    assert flat.converged and flat.criterion.startswith(
        "mean epoch loss 0.1081 -> 0.1065 over the last epoch (1.5% <= 2%)"
    )
    falling = driver.convergence(0.5, 2.0, 1.0, 1e-6, epoch_losses=[0.7305, 0.4945])
    assert not falling.converged and "(32.3% > 2%)" in falling.criterion
    assert not driver.convergence(math.nan, 2.0, 1.0, 1e-6, epoch_losses=[1.0, 1.0]).converged
    assert not driver.convergence(0.5, 2.0, 1.0, 1e-6, epoch_losses=[1.0]).converged  # one epoch: no plateau


def test_only_a_schedule_run_to_its_end_is_judged_by_its_plateau() -> None:
    """A mini-batch run stopped early (its budget) is judged by the gradient rule alone."""
    from harness.execution.measure import _whole_schedule

    assert _whole_schedule([1.0, 0.99], 2) == [1.0, 0.99]
    assert _whole_schedule([1.0, 0.99], 12) is None
    assert _whole_schedule(None, 12) is None


@pytest.mark.parametrize("impl_name", sorted(registry.BACKENDS))
def test_the_driver_takes_the_same_steps_on_every_backend_for_a_fixed_gradient(impl_name: str) -> None:
    """Each back-end computes its loss, the gradient is held fixed (the reference's at the
    initial weights): the driver's iterates are then identical on every back-end, to the
    last bit (no back-end has an optimiser of its own left)."""
    impl = backend(impl_name, TASK)
    params, ref_grad = problem(TASK)[2], problem(TASK)[4]
    seen: list[np.ndarray] = []

    def value_and_grad(p: dict) -> tuple[float, dict]:
        seen.append(flatten(p))
        return impl.value_and_grad(p)[0], ref_grad

    driver.adam(types.SimpleNamespace(value_and_grad=value_and_grad), params, iters=4, lr=1e-2)
    expected, x = [], {k: np.array(v, dtype=float) for k, v in params.items()}
    opt = Adam(1e-2)
    for _ in range(4):
        expected.append(flatten(x))
        x = opt.step(x, ref_grad)
    assert all(np.array_equal(a, b) for a, b in zip(seen, expected, strict=True))


def test_train_cell_polishes_after_the_target_and_stops_converged() -> None:
    """The Adam phase stops at the target, the polish goes on to the gradient rule, and the
    monitor says "converged"; time and evaluations to the target stay recorded."""
    task, _, params, *_ = problem(TASK)
    impl = backend("jax-checkpoint", TASK)
    _, grad = impl.value_and_grad(params)
    monitor = TrainingMonitor(target=0.5)
    train = {"iters": 200, "lr": 1e-2, "polish": 400, "gtol": 1e-3, "curriculum": 0}
    result = train_cell(task, impl, params, train, monitor, driver.gradient_norm(grad))
    summary = monitor.summary()
    assert monitor.stopped == "converged" and summary["train_iters_to_target"] is not None
    adam_evals = len(result.loss_history) - result.info["polish_evals"]
    assert summary["train_iters_to_target"] == adam_evals  # the target ended the Adam phase
    # the protocol as it ran: each declared phase with its budget and the evaluations it took
    phases = [(p["phase"], p["budget"], p["evals"]) for p in result.info["phases"]]
    assert phases == [("adam", 200, adam_evals), ("lbfgs", 400, result.info["polish_evals"])]
    assert sum(p[2] for p in phases) == summary["train_evals"]
    final, final_grad = impl.value_and_grad(result.params)
    assert driver.gradient_norm(final_grad) <= 1e-3 * driver.gradient_norm(grad)
    assert final <= min(x for x in result.loss_history if math.isfinite(x)) * (1 + 1e-12)
