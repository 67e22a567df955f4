"""`work-precision`: gradient error against time over solver tolerances (RK4: steps per
observation interval), no training (the work-precision diagrams of 004's benchmarks)."""

from __future__ import annotations

import argparse

from harness.core import registry
from harness.planning.cell import Cell
from harness.planning.matrix import select
from harness.studies.base import AbstractStudy, floats, plan_cells, register_study

DEFAULT_TOLS = "1e-3,1e-4,1e-5,1e-6,1e-7,1e-8,1e-9"
DEFAULT_SUBSTEPS = "1,2,4,8,16"


@register_study
class WorkPrecision(AbstractStudy):
    name = "work-precision"
    help = "gradient error against time over solver tolerances or RK4 steps"
    default_task = "lotka_volterra,double_pendulum"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tols", default=DEFAULT_TOLS, help=f"rtol = atol values ({DEFAULT_TOLS})")
        parser.add_argument(
            "--substeps",
            default=DEFAULT_SUBSTEPS,
            help=f"RK4 steps per observation interval ({DEFAULT_SUBSTEPS})",
        )

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        tols = floats(args.tols, "--tols")
        substeps = [int(k) for k in floats(args.substeps, "--substeps")]
        cells: list[Cell] = []
        for task_name, _ in select("task", args.task):
            task = registry.get_task(task_name)()
            spacing = (task.t1 - 0.0) / (task.n_obs - 1) if {"t1", "n_obs"} <= set(task.config) else None
            for impl, _ in select("impl", args.impl):
                solver = registry.get_backend(impl).solver_options
                if {"rtol", "atol"} <= set(solver):
                    grid = f"{impl}[tol={','.join(map(str, tols))}]"
                elif "dt" in solver and spacing is not None:
                    grid = f"{impl}[dt={','.join(repr(spacing / k) for k in substeps)}]"
                else:
                    grid = impl
                cells += plan_cells(task_name, grid, args)
        return cells
