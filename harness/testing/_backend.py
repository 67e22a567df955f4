"""`check_backend`: a back-end checked on the tasks it says it builds."""

from __future__ import annotations

import dataclasses
import unittest
from collections.abc import Iterable
from typing import Any

import numpy as np

from harness.core import registry
from harness.core.composed import compose
from harness.core.models import Composite, Params, flatten
from harness.core.protocols import AbstractBackend, AbstractTask, Dataset
from harness.testing._task import tolerances

__all__ = [
    "BACKEND_CHECKS",
    "Problem",
    "backend",
    "backend_check",
    "check_backend",
    "problem",
    "rel_error",
    "value_and_grad",
]

#: the checks of `check_backend` on each task, in the order they run
BACKEND_CHECKS = ("skip", "gradient", "predict", "nfe", "pure")
#: the seed of the data and initial parameters of every check
SEED = 0

TaskLike = str | type[AbstractTask] | AbstractTask


@dataclasses.dataclass(frozen=True)
class Problem:
    """A task with its data (seed 0), initial parameters and reference loss and gradient."""

    task: AbstractTask
    data: Dataset
    params: Params
    loss: float
    grad: Params
    how: str

    def astuple(self) -> tuple[AbstractTask, Dataset, Params, float, Params]:
        return self.task, self.data, self.params, self.loss, self.grad


def rel_error(grad: Params, ref: Params) -> float:
    """Relative 2-norm error of a whole gradient against a reference."""
    return float(np.linalg.norm(flatten(grad) - flatten(ref)) / np.linalg.norm(flatten(ref)))


def _task(task: TaskLike) -> AbstractTask:
    """A task instance: a name or class is built with its `checks.options`."""
    if isinstance(task, AbstractTask):
        return task
    cls = registry.get_task(task) if isinstance(task, str) else task
    return cls(**cls.checks.options)


def _key(task: AbstractTask) -> tuple[type[AbstractTask], tuple[tuple[str, Any], ...]]:
    return type(task), tuple(sorted(task.config.items()))


_PROBLEMS: dict[Any, Problem] = {}
_BACKENDS: dict[Any, AbstractBackend] = {}


def problem(task: TaskLike) -> Problem:
    """The task's `Problem`, computed once per task class and options (cached)."""
    task = _task(task)
    key = _key(task)
    if key not in _PROBLEMS:
        data = task.make_data(SEED)
        params = task.init_params(SEED)
        loss, grad, how = task.reference_gradient(params, data)
        _PROBLEMS[key] = Problem(task, data, params, float(loss), grad, how)
    return _PROBLEMS[key]


def _skip_if_missing(impl_cls: type[AbstractBackend]) -> None:
    if not impl_cls.available():
        missing = ", ".join(impl_cls.missing())
        raise unittest.SkipTest(f"{impl_cls.name} unavailable (missing {missing}): {impl_cls.install}")


def backend(impl_cls: type[AbstractBackend] | str, task: TaskLike, device: str = "cpu") -> AbstractBackend:
    """A set-up back-end on the task's `problem` data (cached), or `unittest.SkipTest` (a
    pytest skip) when its framework is missing or it does not run the task."""
    cls = registry.get_backend(impl_cls) if isinstance(impl_cls, str) else impl_cls
    _skip_if_missing(cls)
    prob = problem(task)
    key = (cls, _key(prob.task), device)
    if key not in _BACKENDS:
        reason = cls.skip(prob.task, device)
        if reason:
            raise unittest.SkipTest(reason)
        _BACKENDS[key] = cls(prob.task, prob.data, device=device, solver=dict(prob.task.checks.solver))
    return _BACKENDS[key]


_GRADIENTS: dict[Any, tuple[float, Params]] = {}


def value_and_grad(
    impl_cls: type[AbstractBackend] | str, task: TaskLike, device: str = "cpu"
) -> tuple[float, Params]:
    """The back-end's loss and gradient at the task's `problem` parameters (cached: the
    "gradient" check and comparisons between back-ends share one call)."""
    impl = backend(impl_cls, task, device)
    key = (type(impl), _key(problem(task).task), device)
    if key not in _GRADIENTS:
        _GRADIENTS[key] = impl.value_and_grad(problem(task).params)
    return _GRADIENTS[key]


def _fail(impl: str, task: str, check: str, condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(f"check_backend({impl}) on {task} [{check}]: {message}")


def backend_check(
    impl_cls: type[AbstractBackend], task: TaskLike, check: str, device: str = "cpu"
) -> str | None:
    """One check of `BACKEND_CHECKS` of the back-end on one task; the skip reason
    when the back-end does not run it (then only "skip" is checked), else None."""
    _skip_if_missing(impl_cls)
    instance = _task(task)
    name, task_name = impl_cls.name, instance.name
    model = instance.model
    reason = impl_cls.skip(instance, device)
    if check == "skip":
        _fail(
            name,
            task_name,
            check,
            reason is None or (isinstance(reason, str) and reason.strip() and "\n" not in reason),
            f"skip must return None or a one-line reason, not {reason!r}",
        )
        _fail(
            name,
            task_name,
            check,
            reason is not None or isinstance(compose(model).core, impl_cls.builds),
            f"skip returned None for a {model.label}, whose core is no subclass of what it builds "
            f"({', '.join(b.__name__ for b in impl_cls.builds)})",
        )
        return reason
    if reason is not None:
        return reason
    prob = problem(instance)
    impl = backend(impl_cls, prob.task, device)
    tol = tolerances(prob.task)
    if check == "gradient":
        loss, grad = value_and_grad(impl_cls, prob.task, device)
        _fail(
            name,
            task_name,
            check,
            set(grad) == set(prob.grad),
            f"gradient keys {sorted(grad)} are not the parameters' {sorted(prob.grad)}",
        )
        for key in prob.grad:
            _fail(
                name,
                task_name,
                check,
                np.shape(grad[key]) == np.shape(prob.grad[key]),
                f"gradient of {key} has shape {np.shape(grad[key])}, expected {np.shape(prob.grad[key])}",
            )
        rel_loss = abs(loss - prob.loss) / abs(prob.loss)
        _fail(
            name,
            task_name,
            check,
            rel_loss <= tol["loss"][0],
            f"loss {loss:.10g} against the reference's {prob.loss:.10g}: relative error {rel_loss:.3g}"
            f" > {tol['loss'][0]:g} ({tol['loss'][1]})",
        )
        error = rel_error(grad, prob.grad)
        _fail(
            name,
            task_name,
            check,
            error < tol["gradient"][0],
            f"gradient against the reference ({prob.how}): relative error {error:.3g} >= "
            f"{tol['gradient'][0]:g} ({tol['gradient'][1]})",
        )
    elif check == "predict":
        data = prob.data
        fwd = impl.predict(prob.params, data.t, data.y0)
        _fail(
            name,
            task_name,
            check,
            fwd.shape == data.y.shape,
            f"predict has shape {fwd.shape}, expected {data.y.shape}",
        )
        model = prob.task.model
        first = data.y0  # a Composite's first output is the decoded encoding of y0
        if isinstance(model, Composite):
            first = model.decoder.apply(prob.params, model.encoder.apply(prob.params, data.y0, np), np)
        _fail(name, task_name, check, np.allclose(fwd[0], first), "predict's first state is not that of y0")
        if data.t_backward.size:
            times = np.concatenate([data.t[:1], data.t_backward[:3]])
            bwd = impl.predict(prob.params, times, data.y0)
            _fail(
                name,
                task_name,
                check,
                bwd.shape == (len(times), *data.y0.shape),
                f"backward predict has shape {bwd.shape}, expected {(len(times), *data.y0.shape)}",
            )
            _fail(name, task_name, check, bool(np.all(np.isfinite(bwd))), "backward predict is not finite")
    elif check == "nfe":
        forward, backward = impl.count_nfe(prob.params)
        _fail(name, task_name, check, forward > 0 and backward > 0, f"count_nfe gave ({forward}, {backward})")
    elif check == "pure":
        # the training driver (`harness.numerics.driver`) takes value_and_grad for a pure
        # function of NumPy parameters: same input, same output, the input left alone
        before = {k: np.array(v, copy=True) for k, v in prob.params.items()}
        loss_a, grad_a = impl.value_and_grad(prob.params)
        loss_b, grad_b = impl.value_and_grad(prob.params)
        _fail(
            name,
            task_name,
            check,
            all(np.array_equal(before[k], prob.params[k]) for k in before),
            "value_and_grad changed the parameters it was given",
        )
        _fail(
            name,
            task_name,
            check,
            abs(loss_a - loss_b) <= 1e-12 * abs(loss_a) and rel_error(grad_b, grad_a) <= 1e-12,
            f"two value_and_grad calls at the same parameters differ (loss {loss_a!r} vs {loss_b!r})",
        )
    else:
        raise ValueError(f"unknown check {check!r}; choose from {', '.join(BACKEND_CHECKS)}")
    return None


def check_backend(
    impl_cls: type[AbstractBackend],
    tasks: Iterable[TaskLike] | None = None,
    *,
    device: str = "cpu",
) -> dict[str, str | None]:
    """Check a back-end on `tasks` (names, classes built with their `checks.options`, or
    instances; default every registered task); AssertionError on the first failure,
    `unittest.SkipTest` when its framework is missing.

    On each task (`BACKEND_CHECKS`): `skip` returns None or one line, and never None
    for a model that subclasses none of `builds`; where it runs the task: the loss and the
    gradient of `value_and_grad` against the task's reference gradient within the task's
    `checks.tolerances` ("loss", "gradient"), `predict` shapes forward and backward,
    `count_nfe` positive, `value_and_grad` pure (the same result twice, its input untouched).

    **Returns:** {task name: the skip reason, or None where every check ran}.
    """
    _skip_if_missing(impl_cls)
    registry.discover()
    chosen = list(registry.TASKS.values()) if tasks is None else list(tasks)
    out: dict[str, str | None] = {}
    for task in chosen:
        instance = _task(task)
        reason = None
        for check in BACKEND_CHECKS:
            reason = backend_check(impl_cls, instance, check, device)
            if reason is not None:
                break
        out[instance.name] = reason
    return out
