"""Figures of a results folder (SPEC "Reports"): PNG files drawn with matplotlib's Agg
renderer in seaborn's style, one module per figure behind a small registry
(`catalog.FIGURES`: name, caption, drawing function).

Every figure function takes the records of a folder (and the folder itself where it reads
trajectory files), writes one PNG atomically and returns its path, or returns None when
the records hold no data for that figure.  Only `ok` records are drawn, and only from
what the folder records: no task and no task registry is imported.

- `records`: selection, grouping and labels; `style`: styling and saving;
  `exponents`: the memory-exponent analysis (`fit_exponent`, `memory_exponents`);
- per task: `trajectory`, `time_to_target`, `energy` (the Hamiltonian figure);
- per folder: `accuracy` (per-epoch test accuracy of mini-batch classifiers), `loss`, `bars`,
  `work_precision`, `memory_scaling`, `horizon_error`, `pareto`.

Importing the package registers every figure (`catalog.register`, each with its place).
"""

from __future__ import annotations

from harness.reporting.figures import (
    accuracy,
    bars,
    energy,
    horizon_error,
    loss,
    memory_scaling,
    pareto,
    time_to_target,
    trajectory,
    work_precision,
)
from harness.reporting.figures.accuracy import accuracy_figure
from harness.reporting.figures.bars import bars_figure
from harness.reporting.figures.catalog import FIGURES, FigureInput, FigureSpec, figure_plan, register
from harness.reporting.figures.energy import hamiltonian_figure, has_energy
from harness.reporting.figures.exponents import fit_exponent, memory_exponents
from harness.reporting.figures.horizon_error import horizon_error_figure
from harness.reporting.figures.loss import loss_figure, mean_band
from harness.reporting.figures.memory_scaling import memory_scaling_figure
from harness.reporting.figures.pareto import pareto_figure
from harness.reporting.figures.records import effective_settings, group_labels, group_records, ok_records
from harness.reporting.figures.style import palette, save_figure
from harness.reporting.figures.time_to_target import time_to_target_figure
from harness.reporting.figures.trajectory import trajectory_figure
from harness.reporting.figures.work_precision import work_precision_figure

__all__ = [
    "FIGURES",
    "FigureInput",
    "FigureSpec",
    "accuracy",
    "accuracy_figure",
    "bars",
    "bars_figure",
    "effective_settings",
    "energy",
    "figure_plan",
    "fit_exponent",
    "group_labels",
    "group_records",
    "hamiltonian_figure",
    "has_energy",
    "horizon_error",
    "horizon_error_figure",
    "loss",
    "loss_figure",
    "mean_band",
    "memory_exponents",
    "memory_scaling",
    "memory_scaling_figure",
    "ok_records",
    "palette",
    "pareto",
    "pareto_figure",
    "register",
    "save_figure",
    "time_to_target",
    "time_to_target_figure",
    "trajectory",
    "trajectory_figure",
    "work_precision",
    "work_precision_figure",
]
