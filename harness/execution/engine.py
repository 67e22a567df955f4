"""The execution seam: an engine runs jobs (one cell each) and hands back what each cell
produced, as the cells finish.  The parent (`harness.execution.runner.run_cells`) decides
what to run, judges and stores: it is the only writer of the results folder.

Two engines: `SubprocessEngine` (`harness.execution.subprocess_engine`: one worker process
per cell, one at a time, with a timeout) and `DaskEngine` (`harness.execution.dask_engine`:
the same worker processes, many at once, on a Dask cluster).  An engine is a context
manager: entering it starts (or connects to) what it runs on, so that an unreachable
cluster is a one-line error before any results folder is touched.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import numpy as np

from harness.planning.cell import Cell
from harness.store.schema import Record

__all__ = ["Engine", "Job", "Outcome"]


@dataclasses.dataclass(frozen=True)
class Job:
    """One cell to measure: the cell, the record it starts from (identity and provenance),
    how to measure it, and the environment variables its worker process runs with (thread
    settings, plugins: the parent's, whichever machine the worker runs on).

    `stages`: ``"all"`` (every stage of `harness.execution.measure.measure_cell`) or
    ``"timing"`` (the timing stage alone, `measure_timing`: `--timing serial`)."""

    cell: Cell
    record: Record
    repeats: int
    memory: bool
    progress: bool = False
    stages: Literal["all", "timing"] = "all"
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Outcome:
    """What one job produced: its record (status `ok` or `failed` with its reason, and
    everything measured before a failure) and the trajectory arrays, if any."""

    job: Job
    record: Record
    arrays: dict[str, np.ndarray] | None = None


class Engine(abc.ABC):
    """Runs jobs and yields their outcomes as they finish (in any order)."""

    #: how the engine ran the cells, for provenance (`env["engine"]`, `execution.engine`)
    name: str = "engine"

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job], *, one_at_a_time: bool = False) -> Iterator[Outcome]:
        """Measure every job; yield one `Outcome` per job, never raising for a failing cell
        (a crash, a timeout or an exception is a `failed` record with its reason).  With
        `one_at_a_time`, no two jobs run at once (`--timing serial`)."""

    @property
    def concurrency(self) -> int:
        """How many cells may run at once (1: timings are taken with no other cell running)."""
        return 1

    def check(self, jobs: Sequence[Job]) -> None:  # noqa: B027 (optional hook)
        """Refuse, with a one-line `UsageError`, jobs this engine can never run (a GPU cell
        where no worker has a GPU), before anything is written."""

    def describe(self) -> dict[str, Any]:
        """What the records' provenance says about this engine."""
        return {"engine": self.name}

    def environment(self) -> dict[str, str]:
        """The run's variables every cell's worker process gets (`Job.environment`): thread
        settings, allocator, `HARNESS_*`, as this process has them now."""
        from harness.execution.environment import job_environment

        return job_environment()

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
