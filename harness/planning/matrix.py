"""From command-line selections to the list of cells to measure.

`plan` expands task and back-end selections (with grids, `harness.planning.grid`), global
`--set` values and seeds into cells; grid values override `--set` values; cells that
come out identical (a back-end that ignores a swept option) are kept once.  Every value
of every cell (task, solver, back-end and training options, the seed) is checked against
its declared range here, in the parent, before any cell starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.core import registry
from harness.core.errors import UsageError, choices
from harness.core.protocols import AbstractBackend, AbstractTask
from harness.core.ranges import PROCESS_RANGES
from harness.planning.cell import Cell, cell_id
from harness.planning.config import TOL_ALIAS, TRAIN_KEYS, build_task, split_options, validate_keys
from harness.planning.grid import expand_grid, split_selection

__all__ = ["plan", "select"]


def select(kind: str, spec: str) -> list[tuple[str, list[dict[str, str]]]]:
    """`(name, grid points)` for each item of a `--task` / `--impl` selection."""
    registry.discover()
    names = registry.TASKS if kind == "task" else registry.BACKENDS
    getter = registry.get_task if kind == "task" else registry.get_backend
    try:
        items = split_selection(spec)
    except UsageError as exc:  # the syntax, and the names that are valid
        raise UsageError(f"{exc}; choose from: {choices(names)}, all") from None
    if not items:
        raise UsageError(f"no {kind} given; choose from: {choices(names)}, all")
    out: list[tuple[str, list[dict[str, str]]]] = []
    for item in items:
        try:
            name, points = expand_grid(item)
        except UsageError as exc:  # the syntax, and the names that are valid
            raise UsageError(f"{exc}; choose from: {choices(names)}, all") from None
        if name == "all":
            out += [(n, points) for n in sorted(names)]
        else:
            getter(name)
            out.append((name, points))
    return out


def _check_grid_keys(points: Sequence[Mapping[str, str]], valid: set[str], owner: str) -> None:
    for point in points:
        for key in point:
            if key not in valid:
                raise UsageError(f"unknown grid key '{key}' for {owner}; valid keys: {choices(valid)}")


def _task_keys(cls: type[AbstractTask]) -> set[str]:
    return {*cls.options, *cls.solver_defaults, *TRAIN_KEYS, TOL_ALIAS}


def _impl_keys(cls: type[AbstractBackend]) -> set[str]:
    keys = {*cls.options, *cls.solver_options, *TRAIN_KEYS}
    if {"rtol", "atol"} <= set(cls.solver_options):
        keys.add(TOL_ALIAS)
    return keys


def plan(
    task_spec: str,
    impl_spec: str,
    *,
    sets: Mapping[str, str],
    seeds: Sequence[int],
    iters: int | None,
    device: str,
    dtype: str,
    budget: float | None = None,
    stop_at_target: bool = True,
) -> list[Cell]:
    """All cells of a run, in task-major order."""
    tasks = [(registry.get_task(n), pts) for n, pts in select("task", task_spec)]
    impls = [(registry.get_backend(n), pts) for n, pts in select("impl", impl_spec)]
    seeds = [PROCESS_RANGES["--seed"].check("seed", seed) for seed in seeds]
    if not seeds:
        raise UsageError("no seed given")
    validate_keys(sets, [t for t, _ in tasks], [i for i, _ in impls])
    for cls, points in tasks:
        _check_grid_keys(points, _task_keys(cls), f"task {cls.name}")
    for cls, points in impls:
        _check_grid_keys(points, _impl_keys(cls), f"back-end {cls.name}")
    cells: dict[str, Cell] = {}
    checked: set[str] = set()
    for task_cls, task_points in tasks:
        for task_point in task_points:
            for impl_cls, impl_points in impls:
                for impl_point in impl_points:
                    merged: dict[str, Any] = {**sets, **task_point, **impl_point}
                    cfg = split_options(
                        merged, task_cls, impl_cls, iters=iters, budget=budget, stop_at_target=stop_at_target
                    )
                    key = repr((task_cls.name, sorted(cfg.task.items())))
                    if key not in checked:  # option values a task rejects (e.g. a missing
                        build_task(task_cls, cfg.task)  # data_dir) fail here, one line
                        checked.add(key)
                    for seed in seeds:
                        cell: Cell = {
                            "task": task_cls.name,
                            "impl": impl_cls.name,
                            "task_options": cfg.task,
                            "solver": cfg.solver,
                            "impl_options": cfg.impl,
                            "train": cfg.train,
                            "device": device,
                            "dtype": dtype,
                            "seed": seed,
                        }
                        cells.setdefault(cell_id(cell), cell)
    return list(cells.values())
