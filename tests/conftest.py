"""Shared fixtures: tasks, data and reference gradients are built once per session; and
how the suite shares two or more cores (pytest-xdist, `-n auto` in pyproject.toml):

- tests of one task run on one worker, so that the task's reference gradient, data and
  built back-ends (JAX compilations) are paid once (`TaskScopes`);
- tests marked `serial` (signals, process deadlines, racing processes) run alone: a
  readers-writer lock over the workers, held exclusively by a serial test and shared by
  every other, so no other test runs beside one (`RunAlone`);
- a back-end that subclasses another registered back-end and changes only its gradient
  (jax-backsolve and jax-direct: jax-checkpoint with another diffrax adjoint;
  torchode-backsolve) has its gradient checked on every task, but its `predict` check only
  where it overrides `predict` (else it is its parent's code, checked there) and its NFE
  check on one task per shape of problem (`one_task_per_model_kind`); the rest are marked
  `exhaustive`, which the default run leaves out (`-m "not exhaustive"` in pyproject.toml;
  `pytest -m exhaustive` runs them), to keep #24's 12-minute bound with nine back-ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import importlib.util

import numpy as np
import pytest
from xdist.scheduler import LoadScopeScheduling

if importlib.util.find_spec("jax") is not None:
    import jax

    jax.config.update("jax_enable_x64", True)  # before any JAX array exists

from harness import testing
from harness.core import registry
from harness.core.composed import compose
from harness.core.models import Params, flatten, unflatten

registry.discover()

SEED = 0


def problem(task_name: str):
    """(task, data, initial params, reference loss, reference grad) for the default options
    (`harness.testing.problem`, computed once per session)."""
    return testing.problem(registry.TASKS[task_name]()).astuple()


def backend(impl_name: str, task_name: str):
    """A set-up back-end on `problem(task_name)`, or a pytest skip with the reason
    (`harness.testing.backend`)."""
    return testing.backend(registry.BACKENDS[impl_name], problem(task_name)[0])


rel_error = testing.rel_error


def fd_vjp(model: Any, params: Params, y: np.ndarray, a: np.ndarray, h: float = 1e-6):
    """Central differences of phi = sum(a * f(y; params)) in y and in every parameter."""

    def phi(p: Params, yy: np.ndarray) -> float:
        return float(np.sum(a * model.rhs(p, yy, np)))

    a_y = np.zeros_like(y)
    for idx in np.ndindex(y.shape):
        e = np.zeros_like(y)
        e[idx] = h
        a_y[idx] = (phi(params, y + e) - phi(params, y - e)) / (2 * h)
    theta = flatten(params)
    a_p = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        a_p[j] = (phi(unflatten(theta + e, params), y) - phi(unflatten(theta - e, params), y)) / (2 * h)
    return a_y, a_p


def check_vjp(model: Any, params: Params, y: np.ndarray, a: np.ndarray) -> None:
    """The model's hand-written VJP against `fd_vjp`."""
    a_y, a_p = model.vjp_numpy(params, y, a)
    fd_y, fd_p = fd_vjp(model, params, y, a)
    assert a_y.shape == y.shape
    assert list(a_p) == list(params)
    # h = 1e-6: truncation O(h^2 f''') ~ 1e-12, rounding O(1e-16 |phi| / h) ~ 1e-10
    np.testing.assert_allclose(a_y, fd_y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(flatten(a_p), fd_p, rtol=1e-6, atol=1e-8)


# --- sharing the cores: pytest-xdist --------------------------------------------------------

#: the lock files' folder, made by the xdist controller; its workers inherit the variable
LOCKS_VARIABLE = "PYTEST_HARNESS_LOCKS"


def parents() -> dict[str, type]:
    """Back-ends whose class subclasses another registered back-end's, with that parent."""
    classes = registry.BACKENDS
    return {
        name: other
        for name, cls in classes.items()
        for other in classes.values()
        if other is not cls and issubclass(cls, other)
    }


def one_task_per_model_kind() -> set[str]:
    """The first task (by name, the conformance tests' training task `lotka_volterra`
    first) of each shape of problem a back-end sees (#27, `harness.core.composed`: with or
    without encoder and decoder, around a vector field or a map).  A back-end's code paths
    differ by these shapes only: which formula a vector field computes is the task's
    (checked by the task's own conformance), not the back-end's."""
    first: dict[tuple[bool, bool], str] = {}
    for name in ["lotka_volterra", *sorted(registry.TASKS)]:
        composed = compose(registry.TASKS[name]().model)
        first.setdefault((composed.composite is not None, composed.discrete), name)
    return set(first.values())


def _exhaustive(impl: str, task: str, check: str, derived: dict[str, type], kept: set[str]) -> bool:
    """Whether a conformance check of a derived back-end is left to `-m exhaustive`."""
    parent = derived.get(impl)
    if parent is None or check in ("gradient", "pure"):
        return False
    if check == "predict":
        return registry.BACKENDS[impl].predict is parent.predict
    return task not in kept


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `exhaustive` the conformance checks a derived back-end's parent covers."""
    derived, kept = parents(), one_task_per_model_kind()
    for item in items:
        call = getattr(item, "callspec", None)
        if call is None or not item.nodeid.startswith("tests/test_conformance.py::test_backend_conforms"):
            continue
        impl, task, check = (call.params[k] for k in ("impl_name", "task_name", "check"))
        if _exhaustive(impl, task, check, derived, kept):
            item.add_marker(pytest.mark.exhaustive)


def pytest_configure(config: pytest.Config) -> None:
    """The xdist controller makes the folder of the `RunAlone` lock files."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        os.environ[LOCKS_VARIABLE] = tempfile.mkdtemp(prefix="harness-pytest-")


#: modules whose tests share one xdist worker (a module-scoped local Dask cluster)
ONE_WORKER_MODULES = ("tests/test_dask_engine.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduling with our scopes (`TaskScopes`)."""
    return TaskScopes(config, log)


class TaskScopes(LoadScopeScheduling):
    """Work units for xdist: every test of one task (a registered task's name among the
    dash-separated parts of its parameter id, e.g. ``[jax-backsolve-linear-nfe]``) runs on
    one worker, so that the task's reference gradient, data and built back-ends (JAX
    compilations) are paid once; so do the tests of `ONE_WORKER_MODULES`; any other test is
    a unit of its own.  Larger units are sent first.  (xdist's `xdist_group` marks would
    say the same, but xdist 3.8 cannot rename pytest 9.2's node ids, so they group nothing.)
    """

    def _split_scope(self, nodeid: str) -> str:
        path, _, name = nodeid.partition("::")
        if path in ONE_WORKER_MODULES:
            return path
        ident = name.partition("[")[2].rpartition("]")[0]
        tasks = [part for part in ident.split("-") if part in registry.TASKS]
        return f"task {tasks[0]}" if tasks else nodeid


class RunAlone:
    """A readers-writer lock over the workers of one xdist run, on two files: `room` is held
    shared by every running test and exclusively by a serial one; `gate`, taken before
    `room`, makes a waiting serial test go before the next shared test (no starvation)."""

    def __init__(self, folder: Path) -> None:
        self.gate = os.open(folder / "gate", os.O_RDWR | os.O_CREAT, 0o600)
        self.room = os.open(folder / "room", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self, exclusive: bool) -> Iterator[None]:
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        fcntl.flock(self.room, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if not exclusive:
            fcntl.flock(self.gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self.room, fcntl.LOCK_UN)
            if exclusive:
                fcntl.flock(self.gate, fcntl.LOCK_UN)


#: the run's lock on this worker, opened by its first test
_RUN_ALONE: list[RunAlone] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """On an xdist worker: setup, call and teardown under the run's `RunAlone` lock."""
    folder = os.environ.get(LOCKS_VARIABLE)
    if folder is None or not hasattr(item.config, "workerinput"):
        return (yield)
    if not _RUN_ALONE:
        _RUN_ALONE.append(RunAlone(Path(folder)))
    with _RUN_ALONE[0].held(exclusive=item.get_closest_marker("serial") is not None):
        return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and (folder := os.environ.pop(LOCKS_VARIABLE, None)):
        shutil.rmtree(folder, ignore_errors=True)
