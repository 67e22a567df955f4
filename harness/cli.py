"""Command line: `list`, `run` and `report` (see `python -m harness --help`)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NoReturn

from harness import registry
from harness.errors import UsageError

__all__ = ["main"]

DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description="Neural ODE gradient benchmark harness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="tasks and back-ends, which are available and how to install the others")

    run = sub.add_parser("run", help="measure back-ends on tasks and write a results folder")
    run.add_argument("--task", required=True, help="NAME[,NAME...] or all")
    run.add_argument("--impl", default="all", help="NAME[,NAME...] or all (default: all)")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    run.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    run.add_argument("--seed", type=int, default=0, help="data and initial-weight seed (default: 0)")
    run.add_argument("--iters", type=int, default=None, help="training iterations (default: the task's)")
    run.add_argument("--repeats", type=int, default=7, help="timed value-and-grad repeats after warm-up")
    run.add_argument("--out", type=Path, default=None, help="results folder (default: results/<run-id>)")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task, solver or back-end option, e.g. --set rtol=1e-6 (repeatable)",
    )
    run.add_argument("--threads", type=int, default=1, help="threads per framework (default: 1)")
    run.add_argument("--no-memory", action="store_true", help="skip the isolated-process memory probe")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    report = sub.add_parser("report", help="print the table of a results folder")
    report.add_argument("directory", type=Path)
    report.add_argument("--format", default="table", choices=("table", "csv", "json"))
    return parser


def cmd_list() -> int:
    from tabulate import tabulate

    registry.discover()
    tasks = [
        {"task": name, "model": cls().model.kind, "source": cls.source}
        for name, cls in sorted(registry.TASKS.items())
    ]
    print(tabulate(tasks, headers="keys", tablefmt="github"))
    print()
    impls = []
    for name, cls in sorted(registry.IMPLEMENTATIONS.items()):
        missing = cls.missing()
        impls.append(
            {
                "back-end": name,
                "framework": cls.framework,
                "models": ", ".join(sorted(cls.model_kinds)),
                "devices": ", ".join(cls.devices),
                "status": "available" if not missing else f"unavailable: {cls.install}",
            }
        )
    print(tabulate(impls, headers="keys", tablefmt="github"))
    return 0


def _check_device(device: str) -> None:
    if not DEVICE_RE.match(device):
        raise UsageError(f"unknown device '{device}'; choose from: cpu, cuda, cuda:N")
    if device == "cpu":
        return
    import importlib.util

    found = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        index = int(device.partition(":")[2] or 0)
        found = torch.cuda.is_available() and index < torch.cuda.device_count()
    if not found:
        raise UsageError(f"no CUDA device '{device}' on this machine; use --device cpu")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import parse_sets, split_options, validate_keys

    task_names = registry.select("task", args.task)
    impl_names = registry.select("impl", args.impl)
    _check_device(args.device)
    if args.repeats < 1:
        raise UsageError(f"bad --repeats {args.repeats}: must be at least 1")
    if args.iters is not None and args.iters < 0:
        raise UsageError(f"bad --iters {args.iters}: must not be negative")
    sets = parse_sets(args.sets)
    task_classes = [registry.get_task(n) for n in task_names]
    impl_classes = [registry.get_implementation(n) for n in impl_names]
    validate_keys(sets, task_classes, impl_classes)
    cells = []
    for task_cls in task_classes:
        for impl_cls in impl_classes:
            cfg = split_options(sets, task_cls, impl_cls, iters=args.iters)
            cells.append(
                {
                    "task": task_cls.name,
                    "impl": impl_cls.name,
                    "task_options": cfg.task,
                    "solver": cfg.solver,
                    "impl_options": cfg.impl,
                    "train": cfg.train,
                    "device": args.device,
                    "dtype": args.dtype,
                    "seed": args.seed,
                }
            )

    from harness.environment import provenance
    from harness.reporting import format_records
    from harness.results import ResultsStore, new_run_id
    from harness.runner import run_cells

    label = task_names[0] if len(task_names) == 1 else "matrix"
    run_id = new_run_id(label)
    out = args.out if args.out is not None else Path("results") / run_id
    env = provenance()
    store = ResultsStore(out, env)
    try:
        records = run_cells(
            cells,
            store,
            run_id=run_id,
            env=env,
            repeats=args.repeats,
            memory=not args.no_memory,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells are in {out}/records.jsonl", file=sys.stderr)
        return 130
    print(format_records(records))
    print(f"\nresults: {out}/records.jsonl, {out}/summary.csv")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.reporting import format_records
    from harness.results import load_records

    print(format_records(load_records(args.directory), args.format))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "run":
            return cmd_run(args)
        return cmd_report(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
