"""`memory-scaling`: peak memory against the size of the solve, two sweeps, each cell in
its own process (002 §1.3: backpropagation through the solver stores its intermediate
states, the adjoint does not; 000 §2: method (A) stores the forward solution).

- `steps`: the horizon t1 grows at the task's fixed number of observations, so the solver
  takes more steps and the observations stay; memory ~ steps^k, steps counted as the
  measured forward evaluations (proportional to steps for every solver here).
- `observations`: t1 grows at fixed observation spacing, n_obs with it (the adjoints
  restart at every observation, so cost per observation is a dimension of its own);
  memory ~ n_obs^k.

Each sweep runs into its own folder, `OUT/steps` and `OUT/observations`, with its own
report; the study writes the exponents to `OUT/memory_scaling.json` and the figure of both
sweeps to `OUT/figures/memory_sweeps.png`.  The default problem is `linear` (000 §3.1) with
256 trajectories and its MLP 2-64-2: a stored step of an unrolled method is then a few
hundred kB, far above the allocator's noise in process-level peak memory.  jax-checkpoint
also runs with fixed checkpoint counts (`--checkpoints`): its memory is set by them, not
by the steps.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core import registry
from harness.core.errors import UsageError
from harness.planning.cell import Cell
from harness.planning.matrix import select
from harness.studies.base import AbstractStudy, floats, plan_cells, register_study, run_session

__all__ = ["SWEEPS", "MemoryScaling", "exponent_rows"]

DEFAULT_HORIZONS = "2,4,8,16,32"
DEFAULT_CHECKPOINTS = "4,16"


def _n_obs(record: Mapping[str, Any]) -> Any:
    return (record.get("resolved_params") or record["params"]).get("n_obs")


#: sweep -> (what grows, x axis label, x of a record)
SWEEPS: dict[str, tuple[str, str, Callable[[Mapping[str, Any]], Any]]] = {
    "steps": ("solver steps", "forward evaluations (proportional to steps)", lambda r: r.get("nfe_forward")),
    "observations": ("observations", "observations n_obs", _n_obs),
}


def _grid_text(point: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


@register_study
class MemoryScaling(AbstractStudy):
    name = "memory-scaling"
    help = "peak memory against solver steps (fixed observations) and observations; fits memory ~ x^k"
    default_task = "linear[batch=256]"
    memory = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--horizons", default=DEFAULT_HORIZONS, help=f"t1 values ({DEFAULT_HORIZONS})")
        parser.add_argument(
            "--sweeps", default=",".join(SWEEPS), help=f"which sweeps, comma-separated ({','.join(SWEEPS)})"
        )
        parser.add_argument(
            "--checkpoints",
            default=DEFAULT_CHECKPOINTS,
            help=f"jax-checkpoint also at these checkpoint counts ({DEFAULT_CHECKPOINTS}; none: not)",
        )

    def sweeps(self, args: argparse.Namespace) -> list[str]:
        names = [s.strip() for s in str(args.sweeps).split(",") if s.strip()]
        for name in names:
            if name not in SWEEPS:
                raise UsageError(f"bad --sweeps={args.sweeps}: {name!r} is not one of {', '.join(SWEEPS)}")
        if not names:
            raise UsageError(f"bad --sweeps={args.sweeps}: choose from {', '.join(SWEEPS)}")
        return names

    def _impls(self, args: argparse.Namespace) -> list[str]:
        """The `--impl` selection, plus jax-checkpoint at each `--checkpoints` count."""
        impls = [args.impl]
        if str(args.checkpoints).strip().lower() == "none":
            return impls
        counts = [int(c) for c in floats(args.checkpoints, "--checkpoints")]
        if "jax-checkpoint" in {name for name, _ in select("impl", args.impl)}:
            impls.append(f"jax-checkpoint[checkpoints={','.join(map(str, counts))}]")
        return impls

    def sweep_cells(self, args: argparse.Namespace, sweep: str) -> list[Cell]:
        """The cells of one sweep: every task point at every horizon."""
        cells: list[Cell] = []
        for task_name, points in select("task", args.task or self.default_task):
            options = registry.get_task(task_name).options
            if not {"t1", "n_obs"} <= set(options):
                raise UsageError(f"task {task_name} has no t1 / n_obs options to scale")
            for point in points or [{}]:
                merged: dict[str, Any] = {**options, **point}
                t1, base_obs = float(merged["t1"]), int(merged["n_obs"])
                spacing = t1 / (base_obs - 1)
                extra = {k: v for k, v in point.items() if k not in ("t1", "n_obs")}
                for horizon in floats(args.horizons, "--horizons"):
                    n_obs = base_obs if sweep == "steps" else round(horizon / spacing) + 1
                    spec = _grid_text({**extra, "t1": f"{horizon:g}", "n_obs": str(n_obs)})
                    for impl in self._impls(args):
                        cells += plan_cells(f"{task_name}[{spec}]", impl, args)
        return cells

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        return [cell for sweep in self.sweeps(args) for cell in self.sweep_cells(args, sweep)]

    def run(self, args: argparse.Namespace, out: Path) -> int:
        """Each sweep into its own folder, then the summary of both."""
        codes = []
        for sweep in self.sweeps(args):
            cells = self.sweep_cells(args, sweep)
            codes.append(run_session(cells, out / sweep, args, memory=True, label=f"{self.name}-{sweep}"))
            if codes[-1] not in (0, 1):
                return codes[-1]
        self.summarise(out)
        return max(codes)

    def summarise(self, out: Path) -> None:
        from tabulate import tabulate

        from harness.reporting.figures.memory_scaling import memory_sweeps_figure
        from harness.store.atomic import atomic_file
        from harness.store.results import load_records

        sweeps = {s: load_records(out / s) for s in SWEEPS if (out / s).is_dir()}
        rows = exponent_rows(sweeps)
        with atomic_file(out / "memory_scaling.json") as fh:
            fh.write(json.dumps({"exponents": rows}, indent=2).encode())
        print("\nmemory ~ x^k (least squares on log-log), x: solver steps or observations")
        print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f"))
        panels = [(*SWEEPS[name][:3], records) for name, records in sweeps.items()]
        figure = memory_sweeps_figure(panels, out / "figures")
        if figure is not None:
            print(f"\nfigure: {figure}")


def exponent_rows(sweeps: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (task, back-end label): the exponent k of each memory kind in each
    sweep, the range of x it was fitted over and the checkpoint count where there is one."""
    from harness.reporting.figures.exponents import MEMORY_KINDS, sweep_exponents

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for sweep, records in sweeps.items():
        for (task, label), fit in sweep_exponents(records, SWEEPS[sweep][2]).items():
            row = rows.setdefault((task, label), {"task": task, "back-end": label})
            for kind in MEMORY_KINDS:
                row[f"k {sweep} ({kind})"] = fit.get(kind)
            row[f"{sweep} range"] = f"{fit['x_min']:g}-{fit['x_max']:g}"
            if fit.get("checkpoints") is not None:
                row["checkpoints"] = fit["checkpoints"]
    return list(rows.values())
