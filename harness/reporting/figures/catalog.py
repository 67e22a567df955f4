"""The figure registry: each figure of a report registers its name, its caption and its
drawing function; the HTML report and the `report` command iterate the registry, so a
new figure is one new module that calls `register`.

A figure is drawn once per task (`per_task`, named `<name>-<task>`) or once for the whole
folder (named `<name>`); its drawing function returns the PNG it wrote, or None when the
records hold no data for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.reporting.figures.records import Record, unique

__all__ = ["FIGURES", "Draw", "FigureInput", "FigureSpec", "PlannedFigure", "figure_plan", "register"]


@dataclasses.dataclass(frozen=True)
class FigureInput:
    """What a drawing function gets: the records, the results folder (for trajectory
    files), the folder to write into and, for a per-task figure, the task."""

    records: Sequence[Record]
    run_dir: Path
    out_dir: Path
    task: str = ""


#: a drawing function: the PNG written, or None without data
Draw = Callable[[FigureInput], Path | None]


@dataclasses.dataclass(frozen=True)
class FigureSpec:
    """One registered figure.

    - `name`: the figure's name in the report (and its key in `write_report`'s result);
      a per-task figure is named `<name>-<task>`.
    - `caption`: one paragraph, shown under the figure (after `<task>: ` when per task).
    - `draw`: the drawing function.
    - `per_task`: drawn once per task of the folder rather than once.
    - `order`: place in the report (lower first), among the per-task figures of a task
      or among the figures of the whole folder; registration order breaks ties.
    - `describe`: the caption for the records at hand, when what the figure shows depends
      on what was measured (no memory panels after `--no-memory`); default `caption`.
    """

    name: str
    caption: str
    draw: Draw
    per_task: bool = False
    order: float = 100.0
    describe: Callable[[Sequence[Record]], str] | None = None

    def caption_for(self, records: Sequence[Record]) -> str:
        """The caption of the figure drawn from `records`."""
        return self.describe(records) if self.describe is not None else self.caption


@dataclasses.dataclass(frozen=True)
class PlannedFigure:
    """One figure a report tries: its name, caption, and a call that draws it."""

    name: str
    caption: str
    draw: Callable[[], Path | None]


#: the registered figures, by name, in registration order
FIGURES: dict[str, FigureSpec] = {}


def register(spec: FigureSpec) -> FigureSpec:
    """Add a figure to the registry (a name registered twice is an error)."""
    if not spec.name or not spec.caption.strip():
        raise ValueError(f"figure {spec.name!r}: a figure needs a name and a caption")
    if spec.name in FIGURES and FIGURES[spec.name] != spec:
        raise ValueError(f"figure {spec.name!r} is registered already")
    FIGURES[spec.name] = spec
    return spec


def _planned(spec: FigureSpec, data: FigureInput) -> PlannedFigure:
    caption = spec.caption_for(data.records)
    if spec.per_task:
        return PlannedFigure(f"{spec.name}-{data.task}", f"{data.task}: {caption}", lambda: spec.draw(data))
    return PlannedFigure(spec.name, caption, lambda: spec.draw(data))


def figure_plan(records: Sequence[Record], run_dir: Path, out_dir: Path) -> list[PlannedFigure]:
    """Every figure a report of `records` tries, in report order: the per-task figures,
    task by task, then the figures of the whole folder."""
    specs = sorted(FIGURES.values(), key=lambda spec: spec.order)
    plan = [
        _planned(spec, FigureInput(records, Path(run_dir), Path(out_dir), task))
        for task in unique(str(r["task"]) for r in records)
        for spec in specs
        if spec.per_task
    ]
    whole = FigureInput(records, Path(run_dir), Path(out_dir))
    return plan + [_planned(spec, whole) for spec in specs if not spec.per_task]
