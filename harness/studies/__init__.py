"""Studies: predefined sweeps over the same cells as `run`.

- `work-precision`: gradient error against time over solver tolerances (RK4: steps per
  observation interval), no training.
- `memory-scaling`: peak memory against the integration horizon at fixed observation
  spacing, each cell in its own process; fits memory ~ horizon^k per back-end.
- `determinism`: the same cells twice in fresh processes; how exactly do the loss
  histories repeat?
- `batch-scaling`: many initial conditions at once (`batch` = 1 ... 4096 on
  `linear_adjoint`): time per trajectory against batch size, on `--device cpu` or `cuda`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError

__all__ = ["add_study_parser", "run_study"]

DEFAULT_TOLS = "1e-3,1e-4,1e-5,1e-6,1e-7,1e-8,1e-9"
DEFAULT_SUBSTEPS = "1,2,4,8,16"
DEFAULT_HORIZONS = "10,20,40,80,160"
DEFAULT_BATCHES = "1,4,16,64,256,1024,4096"


def add_study_parser(sub: Any) -> None:
    study = sub.add_parser("study", help="work-precision, memory-scaling or determinism sweeps")
    study.add_argument("name", choices=("work-precision", "memory-scaling", "determinism", "batch-scaling"))
    study.add_argument("--task", default=None, help="tasks (default: lotka_volterra[,double_pendulum])")
    study.add_argument("--impl", default="all", help="back-ends (default: all)")
    study.add_argument(
        "--tols", default=DEFAULT_TOLS, help=f"work-precision: rtol = atol values ({DEFAULT_TOLS})"
    )
    study.add_argument(
        "--substeps",
        default=DEFAULT_SUBSTEPS,
        help=f"work-precision: RK4 steps per observation interval ({DEFAULT_SUBSTEPS})",
    )
    study.add_argument(
        "--horizons", default=DEFAULT_HORIZONS, help=f"memory-scaling: t1 values ({DEFAULT_HORIZONS})"
    )
    study.add_argument(
        "--batches", default=DEFAULT_BATCHES, help=f"batch-scaling: batch sizes ({DEFAULT_BATCHES})"
    )
    study.add_argument("--iters", type=int, default=20, help="determinism: training iterations (default 20)")
    study.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    study.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    study.add_argument("--repeats", type=int, default=5)
    study.add_argument("--seed", type=int, default=0)
    study.add_argument("--out", type=Path, default=None)
    study.add_argument("--timeout", type=float, default=1800.0)
    study.add_argument("--threads", type=int, default=1)
    study.add_argument("--quiet", action="store_true")


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"bad {what} '{text}': expected numbers separated by commas") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"bad {what} '{text}': expected positive numbers")
    return values


def _plan(task: str, impl: str, args: argparse.Namespace, iters: int = 0) -> list[Any]:
    from harness.planning.matrix import plan

    return plan(task, impl, sets={}, seeds=[args.seed], iters=iters, device=args.device, dtype=args.dtype)


def _impl_names(spec: str) -> list[str]:
    from harness.planning.matrix import select

    return [name for name, _ in select("impl", spec)]


def work_precision_cells(args: argparse.Namespace) -> list[Any]:
    from harness.core import registry
    from harness.planning.matrix import select

    tols = _floats(args.tols, "--tols")
    substeps = [int(k) for k in _floats(args.substeps, "--substeps")]
    cells = []
    for task_name, _ in select("task", args.task):
        task = registry.get_task(task_name)()
        spacing = (task.t1 - 0.0) / (task.n_obs - 1) if {"t1", "n_obs"} <= set(task.config) else None
        for impl in _impl_names(args.impl):
            solver = registry.get_implementation(impl).solver_options
            if {"rtol", "atol"} <= set(solver):
                grid = f"{impl}[tol={','.join(map(str, tols))}]"
            elif "dt" in solver and spacing is not None:
                grid = f"{impl}[dt={','.join(repr(spacing / k) for k in substeps)}]"
            else:
                grid = impl
            cells += _plan(task_name, grid, args)
    return cells


def memory_scaling_cells(args: argparse.Namespace) -> list[Any]:
    from harness.core import registry
    from harness.planning.matrix import select

    cells = []
    for task_name, _ in select("task", args.task):
        task = registry.get_task(task_name)()
        if not {"t1", "n_obs"} <= set(task.config):
            raise UsageError(f"task {task_name} has no t1 / n_obs options to scale")
        spacing = task.t1 / (task.n_obs - 1)
        for horizon in _floats(args.horizons, "--horizons"):
            n_obs = round(horizon / spacing) + 1
            cells += _plan(f"{task_name}[t1={horizon},n_obs={n_obs}]", args.impl, args)
    return cells


def batch_scaling_cells(args: argparse.Namespace) -> list[Any]:
    from harness.core import registry
    from harness.planning.matrix import select

    cells = []
    for task_name, _ in select("task", args.task):
        if "batch" not in registry.get_task(task_name).options:
            raise UsageError(f"task {task_name} has no batch option to scale")
        for batch in _floats(args.batches, "--batches"):
            cells += _plan(f"{task_name}[batch={int(batch)}]", args.impl, args)
    return cells


def _print_per_trajectory(out: Path) -> None:
    from tabulate import tabulate

    from harness.store.results import load_records

    rows = []
    for rec in load_records(out):
        if rec["status"] != "ok":
            continue
        batch = rec["params"]["batch"]
        rows.append(
            {
                "impl": rec["impl"],
                "device": rec["device"],
                "dtype": rec["dtype"],
                "batch": batch,
                "ms per trajectory": f"{rec['time_median_s'] * 1e3 / batch:.4g}",
                "grad rel err": f"{rec['grad_rel_error']:.1e}",
                "device MB": "-"
                if rec.get("peak_device_bytes") is None
                else f"{rec['peak_device_bytes'] / 1e6:.1f}",
            }
        )
    print("\ntime per trajectory against batch size:")
    print(tabulate(rows, headers="keys", tablefmt="github"))


def _execute(cells: list[Any], out: Path, *, memory: bool, args: argparse.Namespace, label: str) -> int:
    from harness.cli import execute

    return execute(
        cells,
        out=out,
        label=label,
        repeats=args.repeats,
        memory=memory,
        timeout=args.timeout,
        progress=not args.quiet,
    )


def _print_exponents(out: Path) -> None:
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


def _determinism(args: argparse.Namespace, out: Path) -> int:
    import numpy as np
    from tabulate import tabulate

    from harness.store.results import load_records

    cells = _plan(args.task, args.impl, args, iters=args.iters)
    for sub in ("a", "b"):
        code = _execute(cells, out / sub, memory=False, args=args, label="determinism")
        if code:
            return code
    first = {r["cell_id"]: r for r in load_records(out / "a")}
    rows = []
    for rec in load_records(out / "b"):
        other = first.get(rec["cell_id"])
        ha, hb = (np.asarray((r or {}).get("train_loss_history") or [], dtype=float) for r in (other, rec))
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
    return 0


def run_study(args: argparse.Namespace) -> int:
    from harness.store.results import new_run_id

    if args.repeats < 1:
        raise UsageError(f"bad --repeats {args.repeats}: must be at least 1")
    from harness.core.devices import check_device

    check_device(args.device)
    defaults = {"work-precision": "lotka_volterra,double_pendulum", "batch-scaling": "linear_adjoint"}
    args.task = args.task or defaults.get(args.name, "lotka_volterra")
    out = args.out or Path("results") / new_run_id(args.name)
    if args.name == "determinism":
        return _determinism(args, out)
    if args.name == "work-precision":
        return _execute(work_precision_cells(args), out, memory=False, args=args, label=args.name)
    if args.name == "batch-scaling":
        code = _execute(batch_scaling_cells(args), out, memory=True, args=args, label=args.name)
        if code == 0:
            _print_per_trajectory(out)
        return code
    code = _execute(memory_scaling_cells(args), out, memory=True, args=args, label=args.name)
    if code == 0:
        _print_exponents(out)
    return code
