"""`determinism`: the same cells twice in fresh processes; how exactly do the loss
histories repeat?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.planning.cell import Cell
from harness.studies.base import AbstractStudy, plan_cells, register_study, run_session


def _history(record: dict | None) -> Any:
    import numpy as np

    return np.asarray((record or {}).get("train_loss_history") or [], dtype=float)


@register_study
class Determinism(AbstractStudy):
    name = "determinism"
    help = "the same cells twice in fresh processes: do the loss histories repeat?"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--iters", type=int, default=20, help="training iterations (default 20)")

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        return plan_cells(args.task, args.impl, args, iters=args.iters)

    def run(self, args: argparse.Namespace, out: Path) -> int:
        cells = self.cells(args)
        worst = 0
        for sub in ("a", "b"):
            code = run_session(cells, out / sub, args, memory=False, label=self.name)
            if code not in (0, 1):  # 1: a cell failed; it is compared as "not comparable"
                return code
            worst = max(worst, code)
        self.summarise(out)
        return worst

    def summarise(self, out: Path) -> None:
        import numpy as np
        from tabulate import tabulate

        from harness.store.results import load_records

        first = {r.get("cell_id"): r for r in load_records(out / "a")}
        rows = []
        for rec in load_records(out / "b"):
            other = first.get(rec.get("cell_id"))
            ha, hb = (
                np.asarray((r or {}).get("train_loss_history") or [], dtype=float) for r in (other, rec)
            )
            if ha.size == 0 or ha.shape != hb.shape:
                verdict = f"not comparable ({rec['status']})"
            elif np.array_equal(ha, hb):
                verdict = "bitwise identical"
            else:
                verdict = f"max relative difference {np.max(np.abs(ha - hb) / np.abs(ha)):.2e}"
            rows.append(
                {"task": rec["task"], "impl": rec["impl"], "iterations": ha.size, "same seed twice": verdict}
            )
        print("\nDeterminism (two runs, fresh processes, same seed):")
        print(tabulate(rows, headers="keys", tablefmt="github"))
