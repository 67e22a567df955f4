"""`batch-scaling`: many initial conditions at once (`batch` = 1 ... 4096 on
`linear_adjoint`): time per trajectory against batch size, on `--device cpu` or `cuda`."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.core import registry
from harness.core.errors import UsageError
from harness.planning.cell import Cell
from harness.planning.matrix import select
from harness.studies.base import AbstractStudy, floats, plan_cells, register_study

DEFAULT_BATCHES = "1,4,16,64,256,1024,4096"


@register_study
class BatchScaling(AbstractStudy):
    name = "batch-scaling"
    help = "time per trajectory against batch size"
    default_task = "linear_adjoint"
    memory = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--batches", default=DEFAULT_BATCHES, help=f"batch sizes ({DEFAULT_BATCHES})")

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        cells: list[Cell] = []
        for task_name, _ in select("task", args.task):
            if "batch" not in registry.get_task(task_name).options:
                raise UsageError(f"task {task_name} has no batch option to scale")
            for batch in floats(args.batches, "--batches"):
                cells += plan_cells(f"{task_name}[batch={int(batch)}]", args.impl, args)
        return cells

    def summarise(self, out: Path) -> None:
        from tabulate import tabulate

        from harness.store.results import load_records

        rows = []
        for rec in load_records(out):
            if rec["status"] != "ok":
                continue
            batch = (rec.get("params") or {})["batch"]
            device_bytes = rec.get("peak_device_bytes")
            rows.append(
                {
                    "impl": rec["impl"],
                    "device": rec.get("device"),
                    "dtype": rec.get("dtype"),
                    "batch": batch,
                    "ms per trajectory": f"{(rec.get('time_median_s') or float('nan')) * 1e3 / batch:.4g}",
                    "grad rel err": f"{rec.get('grad_rel_error') or float('nan'):.1e}",
                    "device MB": "-" if device_bytes is None else f"{device_bytes / 1e6:.1f}",
                }
            )
        print("\ntime per trajectory against batch size:")
        print(tabulate(rows, headers="keys", tablefmt="github"))
