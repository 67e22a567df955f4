"""Public conformance checks for tasks and back-ends, modelled on scikit-learn's
`check_estimator`: a task or back-end written outside this repository runs the checks the
project's own tests run.

- `check_task(TaskClass, **options)`: metadata, options, data, initial parameters, the
  model's hand-written VJP and the loss cotangent against finite differences, the reference
  gradient against finite differences of the loss through an independent solve, metrics.
- `check_backend(ImplClass, tasks=...)`: the back-end builds every task it says it
  builds, its gradient agrees with the task's reference, `predict`, `count_nfe`, `train`
  (and its early stop) work, `skip` is honest; skipped (`unittest.SkipTest`, which pytest
  reports as a skip) when the framework is missing.
- `parametrize_tasks()`, `parametrize_backends()`: pytest parametrisations over the
  registered tasks and back-ends.

Per-task tolerances are the task's `checks.tolerances` (`AbstractTask.checks`), each with its reason.
"""

from __future__ import annotations

from harness.testing._backend import (
    BACKEND_CHECKS,
    Problem,
    backend,
    backend_check,
    check_backend,
    problem,
    rel_error,
    value_and_grad,
)
from harness.testing._pytest import parametrize_backends, parametrize_tasks
from harness.testing._task import TASK_CHECKS, check_task, task_checks, tolerance, tolerances

__all__ = [
    "BACKEND_CHECKS",
    "TASK_CHECKS",
    "Problem",
    "backend",
    "backend_check",
    "check_backend",
    "check_task",
    "parametrize_backends",
    "parametrize_tasks",
    "problem",
    "rel_error",
    "task_checks",
    "tolerance",
    "tolerances",
    "value_and_grad",
]
