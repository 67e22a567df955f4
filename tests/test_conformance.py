"""Conformance: every task through `harness.testing.check_task`, every back-end on every
task through `harness.testing.backend_check` (the checks of `check_backend`),
against the task's reference gradient and against the other back-ends from the same
initial weights.

Tolerances are the tasks' `checks.tolerances` (relative 2-norm error of the whole gradient
vector, each with its reason; `harness.core.check_settings.DEFAULT_TOLERANCES` has the defaults):
- `linear_adjoint` (rtol = atol = 1e-10 by default): 1e-8 against the closed form.
- trajectory tasks (rtol = atol = 1e-7): 1e-5 against forward sensitivities at 1e-12.
- `lotka_volterra_pairs_nn`: 1e-2 (a ReLU field: first-order convergence only).
- back-ends against each other: the sum of their two bounds.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from harness import testing
from harness.core import registry
from harness.core.protocols import TrainResult
from harness.numerics import driver

TASKS = sorted(registry.TASKS)
IMPLS = sorted(registry.BACKENDS)
#: `pure` (value_and_grad a pure function, as the training driver needs) and training are
#: checked on this task only
TRAIN_TASK = "lotka_volterra"


def problem(task_name: str):
    """The task at its `checks.options` (the sizes `check_backend` uses; odenet_mnist's
    reference gradient takes ~20 s there, ~46 s at the default options), computed once."""
    return testing.problem(task_name).astuple()


def backend(impl_name: str, task_name: str):
    return testing.backend(registry.BACKENDS[impl_name], task_name)


@testing.parametrize_tasks()
def test_task_conforms(task_name: str) -> None:
    testing.check_task(registry.TASKS[task_name])


@pytest.mark.parametrize("check", [c for c in testing.BACKEND_CHECKS if c != "pure"])
@testing.parametrize_tasks()
@testing.parametrize_backends()
def test_backend_conforms(impl_name: str, task_name: str, check: str) -> None:
    """skip honest, gradient against the reference, predict forward and backward, NFE counts."""
    task = problem(task_name)[0]
    reason = testing.backend_check(registry.BACKENDS[impl_name], task, check)
    if reason is not None and check != "skip":  # "skip" passed: the reason is honest
        pytest.skip(reason)


@testing.parametrize_backends()
def test_value_and_grad_is_pure(impl_name: str) -> None:
    task = problem(TRAIN_TASK)[0]
    reason = testing.backend_check(registry.BACKENDS[impl_name], task, "pure")
    if reason is not None:
        pytest.skip(reason)


@testing.parametrize_tasks()
@pytest.mark.parametrize("pair", list(itertools.combinations(IMPLS, 2)), ids="-vs-".join)
def test_backends_agree(pair: tuple[str, str], task_name: str) -> None:
    task = problem(task_name)[0]
    (_, grad_a), (_, grad_b) = (testing.value_and_grad(registry.BACKENDS[n], task) for n in pair)
    assert testing.rel_error(grad_a, grad_b) < 2 * testing.tolerance(task, "gradient")


@functools.cache
def trained(impl_name: str) -> tuple[TrainResult, tuple[float, ...]]:
    """Five Adam steps (lr 1e-2) of the training driver on lotka_volterra, and the losses
    seen by the callback."""
    impl = backend(impl_name, TRAIN_TASK)
    seen: list[float] = []
    result = driver.adam(
        impl, problem(TRAIN_TASK)[2], iters=5, lr=1e-2, callback=lambda i, loss: seen.append(loss)
    )
    return result, tuple(seen)


@testing.parametrize_backends()
def test_training_reduces_loss(impl_name: str) -> None:
    params = problem(TRAIN_TASK)[2]
    result, seen = trained(impl_name)
    assert len(result.loss_history) == 5 == len(seen)
    assert result.loss_history[-1] < result.loss_history[0]
    assert set(result.params) == set(params)
    assert all(isinstance(v, np.ndarray) for v in result.params.values())


@pytest.mark.parametrize("pair", list(itertools.combinations(IMPLS, 2)), ids="-vs-".join)
def test_training_histories_agree(pair: tuple[str, str]) -> None:
    """Same weights, same Adam: loss histories agree to 1e-5 relative over five steps (each
    step moves a weight by about lr, so gradient differences of 1e-5 stay at that level)."""
    (a, _), (b, _) = (trained(name) for name in pair)
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=1e-5)
