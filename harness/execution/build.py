"""Rebuilding a cell's task, data, initial weights and back-end from its JSON description
(in the worker, the memory probe and the benchmarks)."""

from __future__ import annotations

from harness.core import registry
from harness.core.models import Params
from harness.core.protocols import AbstractImplementation, AbstractTask, Dataset
from harness.execution import environment
from harness.planning.cell import Cell

__all__ = ["build_cell", "build_task"]


def build_task(cell: Cell) -> tuple[AbstractTask, Dataset, Params]:
    """The task with its options, its data and initial parameters for the cell's seed."""
    task = registry.get_task(cell["task"])(**cell["task_options"])
    return task, task.make_data(cell["seed"]), task.init_params(cell["seed"])


def build_cell(cell: Cell) -> tuple[AbstractImplementation, Params]:
    """The set-up back-end and the initial parameters of `cell`."""
    task, data, params = build_task(cell)
    cls = registry.get_implementation(cell["impl"])
    environment.framework_threads(cls.framework)
    impl = cls(
        task, data, device=cell["device"], dtype=cell["dtype"], solver=cell["solver"], **cell["impl_options"]
    )
    return impl, params
