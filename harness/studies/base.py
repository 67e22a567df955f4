"""The study interface and its registry: a study is a predefined sweep over the same cells
as `run`, one module per study, registered so that the CLI builds its choices and help
from the registry."""

from __future__ import annotations

import abc
import argparse
from pathlib import Path
from typing import Any, ClassVar

from harness.core.errors import UsageError
from harness.core.ranges import Range, integer, positive
from harness.planning.cell import Cell
from harness.studies.session import build_engine, execute

__all__ = ["GRID_RANGES", "STUDIES", "AbstractStudy", "floats", "plan_cells", "register_study", "run_session"]


class AbstractStudy(abc.ABC):
    """A sweep: its own options, the cells it plans, what it prints after the run."""

    #: the name after `python -m harness study`
    name: ClassVar[str]
    #: one line for `--help`
    help: ClassVar[str]
    #: tasks it runs when `--task` is not given
    default_task: ClassVar[str] = "lotka_volterra"
    #: whether its cells measure memory (each in a process of its own)
    memory: ClassVar[bool] = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027 (optional hook)
        """The study's own options (the session options are added for it)."""

    @abc.abstractmethod
    def cells(self, args: argparse.Namespace) -> list[Cell]:
        """The cells of the sweep."""

    def run(self, args: argparse.Namespace, out: Path) -> int:
        """Run the cells into `out`, then `summarise`."""
        code = run_session(self.cells(args), out, args, memory=self.memory, label=self.name)
        if code in (0, 1):  # 1: some cell failed; the others are still summarised
            from harness.store.paths import writer_lock

            with writer_lock(out, "the study's summary"):  # a summary writes there too
                self.summarise(out)
        return code

    def summarise(self, out: Path) -> None:  # noqa: B027 (optional hook)
        """Print what the study found, from the results folder."""


STUDIES: dict[str, AbstractStudy] = {}


def register_study(cls: type[AbstractStudy]) -> type[AbstractStudy]:
    """Class decorator: register a study under `cls.name`."""
    if cls.name in STUDIES:
        raise ValueError(f"study name {cls.name!r} registered twice")
    STUDIES[cls.name] = cls()
    return cls


#: the valid values of the studies' grids, by flag (any other: finite and positive)
GRID_RANGES: dict[str, Range] = {
    "--tols": positive(),
    "--horizons": positive(),
    "--batches": integer(1),
    "--substeps": integer(1),
    "--checkpoints": integer(1),
    "--widths": integer(1),
}


def floats(text: str, what: str) -> list[float]:
    """The values of grid `what` separated by commas, each in `GRID_RANGES[what]` (finite,
    positive; integers for `--batches`, `--substeps`, `--checkpoints` and `--widths`); else
    a one-line `UsageError` naming `what`, the value and the range."""
    valid = GRID_RANGES.get(what, positive())
    values = [float(valid.parse(what, v)) for v in text.split(",") if v.strip()]
    if not values:
        raise UsageError(f"bad {what}={text}: no value given (expected {valid.describe()}, comma-separated)")
    return values


def plan_cells(task: str, impl: str, args: argparse.Namespace, iters: int = 0) -> list[Cell]:
    """The cells of `task` x `impl` (grids allowed) at the session's seed, device and dtype."""
    from harness.planning.matrix import plan

    return plan(task, impl, sets={}, seeds=[args.seed], iters=iters, device=args.device, dtype=args.dtype)


def run_session(cells: list[Any], out: Path, args: argparse.Namespace, *, memory: bool, label: str) -> int:
    """`execute` with the session options of `args`."""
    return execute(
        cells, out=out, label=label, repeats=args.repeats, memory=memory, engine=build_engine(args),
        progress=not args.quiet, timing=args.timing, force=bool(getattr(args, "force", False)),
    )  # fmt: skip
