"""What every benchmark module shares: the parameter grid, taken from the same registries
as the command line, and the cell of one (task, back-end), built by the same code.

A combination that cannot run here (its library is missing, the back-end does not build
the task's model, or the harness itself cannot be imported at the benchmarked commit)
raises `NotImplementedError` in `setup`, which asv reports as skipped; the rest of the
suite runs.  `safe_import` follows scipy's `benchmarks/common.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

__all__ = [
    "IMPLS",
    "PARAMS",
    "PARAM_NAMES",
    "TASKS",
    "RegistryBenchmark",
    "build",
    "make_cell",
    "require",
    "safe_import",
]

#: the placeholder parameter when the registries cannot be read
UNAVAILABLE = "unavailable"


@dataclasses.dataclass
class Imported:
    """Outcome of a `safe_import` block: `ok`, or the one-line `error`."""

    ok: bool = True
    error: str = ""


@contextlib.contextmanager
def safe_import() -> Iterator[Imported]:
    """``with safe_import() as imported: import x``; an ImportError leaves `imported.ok`
    false instead of breaking discovery of the whole suite."""
    state = Imported()
    try:
        yield state
    except ImportError as exc:
        state.ok, state.error = False, f"{type(exc).__name__}: {exc}"


with safe_import() as _harness:
    from harness.core import registry
    from harness.core.models import Params
    from harness.core.protocols import AbstractBackend
    from harness.execution.build import build_cell
    from harness.planning.cell import Cell

with safe_import() as _matrix:
    from harness.planning.matrix import plan


def _names(kind: str) -> list[str]:
    """Every registered task or back-end, in the order `--task all` / `--impl all` run them."""
    if not _harness.ok:
        return [UNAVAILABLE]
    registry.discover()
    return sorted(registry.TASKS if kind == "task" else registry.BACKENDS)


TASKS: list[str] = _names("task")
IMPLS: list[str] = _names("impl")
PARAMS: tuple[list[str], list[str]] = (TASKS, IMPLS)
PARAM_NAMES: tuple[str, str] = ("task", "impl")


def require(task: str, impl: str, *, device: str = "cpu") -> None:
    """Raise `NotImplementedError` (asv: skipped) unless `impl` can run `task` here."""
    if not _harness.ok:
        raise NotImplementedError(f"harness not importable at this commit: {_harness.error}")
    cls = registry.get_backend(impl)
    if missing := cls.missing():
        raise NotImplementedError(f"{impl} unavailable ({', '.join(missing)} missing): {cls.install}")
    if reason := cls.skip(registry.get_task(task)(), device):
        raise NotImplementedError(reason)


def make_cell(task: str, impl: str, *, device: str = "cpu", dtype: str = "float64", seed: int = 0) -> Cell:
    """The cell that `python -m harness run --task TASK --impl IMPL` measures: planned by
    the command line's own `harness.planning.matrix.plan`, default options."""
    if _matrix.ok:
        (cell,) = plan(task, impl, sets={}, seeds=[seed], iters=None, device=device, dtype=dtype)
        return cell
    # commits before harness.planning.matrix: the same defaults, resolved by harness.planning.config
    from harness.planning.config import split_options

    cfg = split_options({}, registry.get_task(task), registry.get_backend(impl))
    return {
        "task": task,
        "impl": impl,
        "task_options": cfg.task,
        "solver": cfg.solver,
        "impl_options": cfg.impl,
        "train": cfg.train,
        "device": device,
        "dtype": dtype,
        "seed": seed,
    }


def build(task: str, impl: str) -> tuple[AbstractBackend, Params]:
    """The set-up back-end and initial parameters of the cell, or `NotImplementedError`."""
    require(task, impl)
    return build_cell(make_cell(task, impl))


def key(task: str, impl: str) -> str:
    """The key of one cell in a `setup_cache` dictionary."""
    return f"{task}/{impl}"


class RegistryBenchmark:
    """asv settings shared by the timed suites: every task x back-end, a few ms a call on
    most cells (~0.3 s for torch-adjoint on lotka_volterra)."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300.0
    sample_time = 0.02
    repeat = (1, 10, 5.0)
    rounds = 2
    warmup_time = 0.05
