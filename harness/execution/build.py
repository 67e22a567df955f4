"""Rebuilding a cell's task, data, initial weights and back-end from its JSON description
(in the worker, the memory probe and the benchmarks)."""

from __future__ import annotations

from harness.core import registry
from harness.core.models import Params
from harness.core.protocols import AbstractBackend, AbstractTask, Dataset
from harness.execution import environment
from harness.planning.cell import Cell

__all__ = ["build_cell", "build_task", "build_twin"]


def build_task(cell: Cell) -> tuple[AbstractTask, Dataset, Params]:
    """The task with its options, its data and initial parameters for the cell's seed."""
    task = registry.get_task(cell["task"])(**cell["task_options"])
    data = task.make_data(cell["seed"])
    if not isinstance(data, Dataset):
        raise TypeError(f"{task.name}.make_data must return a Dataset, not {type(data).__name__}")
    if problems := data.problems(task.model):
        raise ValueError(f"{task.name}.make_data({cell['seed']}): " + "; ".join(problems))
    return task, data, task.init_params(cell["seed"])


def build_cell(cell: Cell) -> tuple[AbstractBackend, Params]:
    """The set-up back-end and the initial parameters of `cell`."""
    task, data, params = build_task(cell)
    cls = registry.get_backend(cell["impl"])
    environment.framework_threads(cls.framework)
    impl = cls(
        task, data, device=cell["device"], dtype=cell["dtype"], solver=cell["solver"], **cell["impl_options"]
    )
    return impl, params


def build_twin(cell: Cell, task: AbstractTask, data: Dataset) -> AbstractBackend | None:
    """The cell back-end's `discrete_twin` on the same task and data, with the cell's
    solver options that it reads, its own defaults otherwise; None when there is no twin
    or it cannot run here."""
    name = registry.get_backend(cell["impl"]).discrete_twin
    if name is None:
        return None
    cls = registry.get_backend(name)
    if cls.skip(task, cell["device"]) is not None:
        return None
    solver = {k: v for k, v in cell["solver"].items() if k in cls.solver_options}
    return cls(task, data, device=cell["device"], dtype=cell["dtype"], solver=solver)
