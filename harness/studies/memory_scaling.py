"""`memory-scaling`: peak memory against the integration horizon at fixed observation
spacing, each cell in its own process; fits memory ~ horizon^k per back-end (001: the
adjoint's O(1) memory in the horizon against backpropagation's O(horizon))."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.core import registry
from harness.core.errors import UsageError
from harness.planning.cell import Cell
from harness.planning.matrix import select
from harness.studies.base import AbstractStudy, floats, plan_cells, register_study

DEFAULT_HORIZONS = "10,20,40,80,160"


@register_study
class MemoryScaling(AbstractStudy):
    name = "memory-scaling"
    help = "peak memory against the integration horizon; fits memory ~ horizon^k"
    memory = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--horizons", default=DEFAULT_HORIZONS, help=f"t1 values ({DEFAULT_HORIZONS})")

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        cells: list[Cell] = []
        for task_name, _ in select("task", args.task):
            task = registry.get_task(task_name)()
            if not {"t1", "n_obs"} <= set(task.config):
                raise UsageError(f"task {task_name} has no t1 / n_obs options to scale")
            spacing = task.t1 / (task.n_obs - 1)
            for horizon in floats(args.horizons, "--horizons"):
                n_obs = round(horizon / spacing) + 1
                cells += plan_cells(f"{task_name}[t1={horizon},n_obs={n_obs}]", args.impl, args)
        return cells

    def summarise(self, out: Path) -> None:
        from tabulate import tabulate

        from harness.reporting.figures import memory_exponents
        from harness.store.results import load_records

        exponents = memory_exponents(load_records(out))
        rows = [
            {"task": t, "impl": i, "memory": kind, "k": f"{k:.2f}"}
            for (t, i, kind), k in sorted(exponents.items())
        ]
        print("\nmemory ~ horizon^k (least squares on log-log):")
        print(tabulate(rows, headers="keys", tablefmt="github"))
