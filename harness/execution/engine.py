"""The execution seam: an engine runs jobs (one cell each) and hands back what each cell
produced, as the cells finish.  The parent (`harness.execution.runner.run_cells`) decides
what to run, judges and stores: it is the only writer of the results folder.

`SubprocessEngine` (`harness.execution.subprocess_engine`) is the first engine: one worker
process per cell, one at a time, with a timeout.  A distributed engine implements the same
two methods.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from harness.planning.cell import Cell

__all__ = ["Engine", "Job", "Outcome"]


@dataclasses.dataclass(frozen=True)
class Job:
    """One cell to measure: the cell, the record it starts from (identity and provenance),
    and how to measure it."""

    cell: Cell
    record: dict[str, Any]
    repeats: int
    memory: bool
    progress: bool = False


@dataclasses.dataclass
class Outcome:
    """What one job produced: its record (status `ok` or `failed` with its reason, and
    everything measured before a failure) and the trajectory arrays, if any."""

    job: Job
    record: dict[str, Any]
    arrays: dict[str, np.ndarray] | None = None


class Engine(abc.ABC):
    """Runs jobs and yields their outcomes as they finish (in any order)."""

    #: how the engine ran the cells, for provenance (`env["engine"]`)
    name: str = "engine"

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Measure every job; yield one `Outcome` per job, never raising for a failing cell
        (a crash, a timeout or an exception is a `failed` record with its reason)."""

    def describe(self) -> dict[str, Any]:
        """What the records' provenance says about this engine."""
        return {"engine": self.name}
