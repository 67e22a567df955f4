"""Command line: `list`, `run` and `report` (see `python -m harness --help`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from harness.core import registry
from harness.core.devices import check_device
from harness.core.errors import UsageError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description="Neural ODE gradient benchmark harness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="tasks and back-ends, which are available and how to install the others")

    run = sub.add_parser("run", help="measure back-ends on tasks and write a results folder")
    run.add_argument("--task", required=True, help="NAME[,NAME...] or all; grids: NAME[key=v1,v2]")
    _matrix_options(run)
    reproduce = sub.add_parser(
        "reproduce",
        help="run the cells the documents' claims need and judge them (exit 1 if a claim fails)",
    )
    reproduce.add_argument("--task", default="all", help="NAME[,NAME...] or all (default)")
    _matrix_options(reproduce)

    report = sub.add_parser("report", help="print the table of a results folder")
    report.add_argument("directory", type=Path)
    report.add_argument("--format", default="table", choices=("table", "csv", "json"))
    report.add_argument("--no-figures", action="store_true", help="print the table only")
    compare = sub.add_parser("compare", help="does results folder B reproduce A? (exit 1 if not)")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)
    compare.add_argument("--ignore-times", action="store_true", help="compare accuracy and work only")

    from harness.studies import add_study_parser

    add_study_parser(sub)
    return parser


def _matrix_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `reproduce` share: the back-ends, the cells and how they run."""
    parser.add_argument(
        "--impl", default="all", help="NAME[,NAME...] or all (default); grids: NAME[rtol=1e-3,1e-6]"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--seed", type=int, default=0, help="data and initial-weight seed (default: 0)")
    parser.add_argument("--seeds", default=None, help="several seeds, e.g. 0,1,2 (each its own cell)")
    parser.add_argument("--iters", type=int, default=None, help="training iterations (default: the task's)")
    parser.add_argument("--repeats", type=int, default=7, help="timed value-and-grad repeats after warm-up")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<run-id>)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task, solver or back-end option, e.g. --set rtol=1e-6 (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per framework (default: 1)")
    parser.add_argument("--no-memory", action="store_true", help="skip the isolated-process memory probe")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per cell before it is failed")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="go on with an interrupted run in DIR, skipping its finished cells",
    )
    parser.add_argument(
        "--train-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock seconds of training per cell (default: the task's)",
    )
    parser.add_argument(
        "--train-past-target",
        action="store_true",
        help="go on training after the task's target loss is reached (default: stop there)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_list() -> int:
    from tabulate import tabulate

    registry.discover()
    tasks = [
        {"task": name, "model": cls().model.label, "source": cls.source}
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
                "builds": ", ".join(b.__name__ for b in cls.builds),
                "devices": ", ".join(cls.devices),
                "status": "available" if not missing else f"unavailable: {cls.install}",
            }
        )
    print(tabulate(impls, headers="keys", tablefmt="github"))
    return 0


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds is None:
        return [args.seed]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"bad --seeds '{args.seeds}': expected integers such as 0,1,2") from None
    if not seeds:
        raise UsageError("bad --seeds: no seed given")
    return seeds


def cmd_run(args: argparse.Namespace, *, judge: bool = False) -> int:
    """`run` (and `reproduce`, with `judge`: exit status 1 when a claim FAILs or a cell
    gives no result; `reproduce` runs each task's defaults, the cells its claims need)."""
    from harness.planning.config import parse_sets
    from harness.planning.matrix import plan

    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            raise UsageError("give --resume DIR or --out DIR, not both")
        from harness.store.results import load_records

        if (args.resume / "records.jsonl").is_file():
            load_records(args.resume)  # a corrupt or foreign file: one line naming it
        elif not args.resume.is_dir():
            raise UsageError(f"no results folder at '{args.resume}' to resume")
    check_device(args.device)
    if args.repeats < 1:
        raise UsageError(f"bad --repeats {args.repeats}: must be at least 1")
    if args.iters is not None and args.iters < 0:
        raise UsageError(f"bad --iters {args.iters}: must not be negative")
    if not args.timeout > 0:
        raise UsageError(f"bad --timeout {args.timeout}: must be positive")
    if args.train_budget is not None and not args.train_budget > 0:
        raise UsageError(f"bad --train-budget {args.train_budget}: must be a positive number of seconds")
    cells = plan(
        args.task,
        args.impl,
        sets=parse_sets(args.sets),
        seeds=_seeds(args),
        iters=args.iters,
        device=args.device,
        dtype=args.dtype,
        budget=args.train_budget,
        stop_at_target=not args.train_past_target,
    )
    return execute(
        cells,
        out=args.resume or args.out,
        label=cells[0]["task"] if len({c["task"] for c in cells}) == 1 else "matrix",
        repeats=args.repeats,
        memory=not args.no_memory,
        timeout=args.timeout,
        progress=not args.quiet,
        judge=judge,
    )


def execute(
    cells: list,
    *,
    out: Path | None,
    label: str,
    repeats: int,
    memory: bool,
    timeout: float,
    progress: bool,
    judge: bool = False,
) -> int:
    """Run `cells` into `out` (default results/<run-id>), print the table, write the report;
    with `judge`, count the claims' verdicts and exit with 1 when one is failing."""
    from harness.execution.environment import provenance
    from harness.execution.runner import run_cells
    from harness.reporting.tables import format_records
    from harness.store.results import ResultsStore, load_records, new_run_id

    run_id = new_run_id(label)
    out = out if out is not None else Path("results") / run_id
    env = provenance()
    store = ResultsStore(out, env)
    try:
        run_cells(
            cells,
            store,
            run_id=run_id,
            env=env,
            repeats=repeats,
            memory=memory,
            timeout=timeout,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished cells are in {out}/records.jsonl; --resume {out} goes on",
            file=sys.stderr,
        )
        return 130
    records = load_records(out)
    print(format_records(records))
    written = _write_report(out, records)
    print(f"\nresults: {out}/records.jsonl, {out}/summary.csv" + (f", {written}" if written else ""))
    if not judge:
        return 0
    from harness.core.claims import FAILING
    from harness.reporting.tables import verdict_counts

    counts = verdict_counts(records)
    print("verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return 1 if any(counts.get(v) for v in FAILING) else 0


def _write_report(directory: Path, records: list) -> str:
    """Figures, report.md and report.html when the report libraries are installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return ""
    try:
        from harness.reporting.html_report import write_report
    except ImportError:
        return ""
    paths = write_report(directory, records)
    return ", ".join(str(p) for p in paths.values() if str(p).endswith((".html", ".md")))


def cmd_report(args: argparse.Namespace) -> int:
    from harness.reporting.tables import format_records
    from harness.store.results import load_records

    records = load_records(args.directory)
    print(format_records(records, args.format))
    if args.format == "table" and not args.no_figures:
        written = _write_report(args.directory, records)
        if written:
            print(f"\nreport: {written}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.store.compare import TOLERANCES, compare_runs
    from harness.store.results import load_records

    verdicts = compare_runs(load_records(args.a), load_records(args.b), times=not args.ignore_times)
    rows = [
        {
            "task": v.task,
            "impl": v.impl,
            "cell": v.cell.split("__", 2)[-1],
            "verdict": "reproduced" if v.reproduced else "differs",
            "differences": "; ".join(v.differences),
        }
        for v in verdicts
    ]
    print(tabulate(rows, headers="keys", tablefmt="github"))
    print(
        "\ntolerances: "
        + "; ".join(
            f"{k} {t.describe()}"
            for k, t in TOLERANCES.items()
            if not (args.ignore_times and k.startswith("time_"))
        )
    )
    bad = sum(not v.reproduced for v in verdicts)
    print(f"{len(verdicts) - bad} of {len(verdicts)} cells reproduced" + (f", {bad} differ" if bad else ""))
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "reproduce":
            return cmd_run(args, judge=True)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "study":
            from harness.studies import run_study

            return run_study(args)
        return cmd_report(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
