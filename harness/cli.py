"""Command line: `list`, `run` and `report` (see `python -m harness --help`)."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from pathlib import Path

from harness.core import plugins, registry
from harness.core.devices import check_device
from harness.core.errors import OneLineParser, UsageError, error_line
from harness.core.training_protocol import Phase
from harness.store.paths import path_argument, writer_lock
from harness.store.schema import Record
from harness.studies import add_study_parser, run_study
from harness.studies.session import add_session_options, build_engine, execute, print_job_script, write_report

__all__ = ["main"]


#: an argument parser whose errors are one line and exit with status 2
_Parser = OneLineParser


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
    reproduce.add_argument(
        "--confirm",
        action="store_true",
        help="train every FAIL and KNOWN FAIL cell again with 10x the budgets (into OUT/confirm) "
        "and say whether each verdict held or flipped",
    )
    _matrix_options(reproduce)

    report = sub.add_parser("report", help="print the table of a results folder")
    report.add_argument("directory", type=path_argument)
    report.add_argument("--format", default="table", choices=("table", "csv", "json"))
    report.add_argument("--no-figures", action="store_true", help="print the table only")
    report.add_argument(
        "--target",
        type=float,
        default=None,
        metavar="LOSS",
        help="time and evaluations to this training loss, from the stored histories (table and "
        "time-to-target figures in DIR/figures/target-LOSS/; the folder's report is left as it is)",
    )
    predict = sub.add_parser("predict", help="the trained model of one cell of a results folder, as CSV")
    predict.add_argument("directory", type=path_argument)
    predict.add_argument("cell_id", help="the cell (its cell_id in the folder's summary.csv)")
    predict.add_argument("--times", default=None, help="T0,T1,... (default: the cell's observation times)")
    compare = sub.add_parser("compare", help="does results folder B reproduce A? (exit 1 if not)")
    compare.add_argument("a", type=path_argument)
    compare.add_argument("b", type=path_argument)
    compare.add_argument("--ignore-times", action="store_true", help="compare accuracy and work only")
    compare.add_argument(
        "--common",
        action="store_true",
        help="compare only the cells both runs hold and say how many each lacks (default: missing differs)",
    )

    add_study_parser(sub, _Parser)
    for command in {id(p): p for p in sub.choices.values()}.values():
        _plugin_option(command)
        for nested in _subcommands(command):  # `study --plugin F NAME` and `study NAME --plugin F`
            _plugin_option(nested, dest="plugin_after_name")
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The sub-commands of a command (the studies of `study`), none for the others."""
    return [
        nested
        for action in parser._actions  # argparse keeps its sub-commands there only
        if isinstance(action, argparse._SubParsersAction)
        for nested in {id(p): p for p in action.choices.values()}.values()
    ]


def _plugin_option(parser: argparse.ArgumentParser, dest: str = "plugin") -> None:
    """`--plugin`, on every command: tasks and back-ends from outside the tree.

    A sub-command's own `--plugin` has its own `dest`: argparse lets a sub-parser's
    defaults overwrite the values its parent parsed, so one list would lose those.
    """
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        dest=dest,
        metavar="MODULE_OR_FILE",
        help="load tasks or back-ends from a module or a .py file (repeatable; also HARNESS_PLUGINS)",
    )


def _matrix_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `reproduce` share: the back-ends, the cells and how they run."""
    add_session_options(parser)
    parser.add_argument("--seeds", default=None, help="several seeds, e.g. 0,1,2 (each its own cell)")
    parser.add_argument(
        "--iters",
        type=int,
        default=None,
        help="N training iterations in all, a short run: the task's first phase (Adam; epochs on MNIST) "
        "and no L-BFGS polish unless --set polish=M (--set iters=N keeps the task's polish)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task, solver or back-end option, e.g. --set rtol=1e-6 (repeatable)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the isolated-process memory probe")
    parser.add_argument(
        "--resume",
        type=path_argument,
        default=None,
        metavar="DIR",
        help="go on with an interrupted run in DIR, skipping its finished cells",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run the cells recorded as failed again (their new records replace the old)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="start the --out folder over: its old records, trajectories, figures and reports are removed",
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


def _unit(phase: Phase) -> str:
    """ " epochs" where a phase's budget counts something other than gradient evaluations."""
    return "" if phase.unit == "gradient evaluations" else f" {phase.unit}"


def cmd_list() -> int:
    from tabulate import tabulate

    registry.discover()
    tasks = [
        {
            "task": name,
            "model": (task := cls()).model.label,
            "training (budgets)": " -> ".join(
                f"{phase.kind} ({cls.protocol.settings().get(phase.budget, 0)}{_unit(phase)})"
                for phase in task.phases()
            ),
            "source": cls.source,
        }
        for name, cls in sorted(registry.TASKS.items())
    ]
    print(tabulate(tasks, headers="keys", tablefmt="github"))
    print()
    impls = []
    for name, cls in sorted(registry.BACKENDS.items()):
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
    from harness.planning.config import parse_seeds

    return [args.seed] if args.seeds is None else parse_seeds(args.seeds)


def cmd_run(args: argparse.Namespace, *, judge: bool = False) -> int:
    """`run` (and `reproduce`, with `judge`: exit status 1 when a claim FAILs or a cell
    gives no result; `reproduce` runs each task's defaults, the cells its claims need)."""
    from harness.planning.config import check_session, parse_sets
    from harness.planning.matrix import plan

    check_session(args)  # the process-level numbers, before anything is read or written
    seeds = _seeds(args)
    if args.retry_failed and args.resume is None:
        raise UsageError("--retry-failed needs --resume DIR (the run whose failed cells to retry)")
    if args.force and args.resume is not None:
        raise UsageError("give --resume DIR (go on) or --force (start over), not both")
    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            raise UsageError("give --resume DIR or --out DIR, not both")
        from harness.store.results import load_records

        if not args.resume.is_dir():
            raise UsageError(f"no results folder at '{args.resume}' to resume")
        if (args.resume / "records.jsonl").exists():
            load_records(args.resume)  # a corrupt or foreign file: one line naming it
    check_device(args.device)
    if args.print_job_script:
        return print_job_script(args)
    engine = build_engine(args)  # option conflicts in one line, before planning
    cells = plan(
        args.task,
        args.impl,
        sets=parse_sets(args.sets),
        seeds=seeds,
        iters=args.iters,
        device=args.device,
        dtype=args.dtype,
        budget=args.train_budget,
        stop_at_target=not args.train_past_target,
    )
    out = args.resume or args.out
    confirm = judge and getattr(args, "confirm", False)
    if confirm and out is None:  # the confirmation goes into <out>/confirm
        from harness.store.results import new_run_id

        out = Path("results") / new_run_id(
            cells[0]["task"] if len({c["task"] for c in cells}) == 1 else "matrix"
        )
    status = execute(
        cells,
        out=out,
        resume=args.resume is not None,
        force=args.force,
        retry_failed=args.retry_failed,
        label=cells[0]["task"] if len({c["task"] for c in cells}) == 1 else "matrix",
        repeats=args.repeats,
        memory=not args.no_memory,
        engine=engine,
        progress=not args.quiet,
        timing=args.timing,
        judge=judge,
    )
    if not confirm or out is None or status == 130:
        return status
    return _confirm(args, cells, out)


def _confirm(args: argparse.Namespace, cells: list, out: Path) -> int:
    """`reproduce --confirm`: the FAIL and KNOWN FAIL cells of `out` trained again with 10x
    the budgets into `out/confirm`, and whether each verdict held (`harness.studies.confirm`);
    exit status 1 when a cell failed or a FAIL held."""
    from tabulate import tabulate

    from harness.store.results import load_records
    from harness.studies.confirm import FACTOR, confirm_cells, confirm_folder, confirmation_rows

    claims_of = lambda task: registry.get_task(task).claims
    first = load_records(out)
    failed_cells = any(r.get("status") == "failed" for r in first)
    pairs = confirm_cells(cells, first, claims_of)
    if not pairs:
        print("\n--confirm: no FAIL or KNOWN FAIL to confirm")
        return 1 if failed_cells else 0
    print(
        f"\n--confirm: {len(pairs)} cell(s) with a FAIL or KNOWN FAIL, trained again"
        f" with {FACTOR}x the budgets"
    )
    folder = confirm_folder(out)
    status = execute(
        list(pairs.values()),
        out=folder,
        resume=args.resume is not None and (folder / "records.jsonl").exists(),
        force=args.force,
        label="confirm",
        repeats=args.repeats,
        memory=not args.no_memory,
        engine=build_engine(args),
        progress=not args.quiet,
        timing=args.timing,
        judge=True,
    )
    rows = confirmation_rows(first, load_records(folder), pairs, claims_of)
    print(f"\nDo the failures hold with {FACTOR}x the training?\n")
    print(tabulate(rows, headers="keys", tablefmt="github"))
    return 1 if failed_cells or status == 1 else status


def cmd_report(args: argparse.Namespace) -> int:
    from harness.store.results import load_records

    records = load_records(args.directory)
    if args.format != "table" or args.no_figures:
        return _report(args, records)  # the table alone: nothing written
    hint = "--no-figures prints the table only"
    with writer_lock(args.directory, "the report", hint):  # never while a run writes there
        return _report(args, records)


def _report(args: argparse.Namespace, records: list[Record]) -> int:
    """`report` once the folder's lock is held (when it writes)."""
    from harness.reporting.tables import Verdicts, format_records

    if args.target is not None:
        return _report_at_target(args, records)
    # the claims as declared now re-judge the folder's verdicts (reporting imports no registry)
    registry.discover()
    tasks = registry.TASKS.items()
    verdicts = Verdicts.of(
        records,
        {name: cls.claims for name, cls in tasks},
        {name: cls.cross_claims for name, cls in tasks if cls.cross_claims},
    )
    print(format_records(records, args.format, verdicts=verdicts))
    if args.format == "table" and not args.no_figures:
        try:
            written = write_report(args.directory, records, verdicts)
        except OSError as exc:
            raise UsageError(
                f"cannot write the report into '{args.directory}': {exc.strerror or exc}"
            ) from None
        if written:
            print(f"\nreport: {written}")
    return 0


def _report_at_target(args: argparse.Namespace, records: list[Record]) -> int:
    """`report DIR --target LOSS`: the table with time and evaluations to LOSS recomputed
    from the stored histories, and the time-to-target figures for it."""
    import math

    from harness.reporting.retarget import at_target
    from harness.reporting.tables import format_records

    if not (math.isfinite(args.target) and args.target > 0):
        raise UsageError(f"--target must be a positive training loss, not {args.target}")
    retargeted = at_target(records, args.target)
    print(format_records(retargeted, args.format, verdicts=False))
    if args.format != "table" or args.no_figures or importlib.util.find_spec("matplotlib") is None:
        return 0
    from harness.reporting.figures.time_to_target import time_to_target_figure

    out = args.directory / "figures" / f"target-{args.target:g}"
    try:
        drawn = [
            time_to_target_figure(retargeted, out, task)
            for task in dict.fromkeys(r["task"] for r in retargeted)
        ]
    except OSError as exc:
        raise UsageError(f"cannot write the figures into '{out}': {exc.strerror or exc}") from None
    written = [str(p) for p in drawn if p is not None]
    print(
        f"\ntime to loss {args.target:g}: "
        + (", ".join(written) if written else "no training history to draw")
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """`predict DIR CELL_ID`: the trained model's states at the cell's observation times (or
    `--times`), one CSV row per time and batch member."""
    from harness.execution.predict import predict

    times = None
    if args.times is not None:
        try:
            times = [float(part) for part in args.times.split(",")]
        except ValueError:
            raise UsageError(f"--times must be numbers separated by commas, not '{args.times}'") from None
    t, states = predict(args.directory, args.cell_id, times)
    names = [f"y{i}" for i in range(states.shape[-1])]
    print(",".join(["t", "member", *names]))
    for i, time in enumerate(t):
        for b, row in enumerate(states[i]):
            print(",".join([repr(float(time)), str(b), *(repr(float(v)) for v in row)]))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.store.compare import TOLERANCES, compare_runs
    from harness.store.results import load_records

    verdicts = compare_runs(load_records(args.a), load_records(args.b), times=not args.ignore_times)
    left_out = {run: sum(v.missing_in == run for v in verdicts) for run in "AB"} if args.common else {}
    verdicts = [v for v in verdicts if not (args.common and v.missing_in)]
    rows = [
        {
            "task": v.task,
            "impl": v.impl,
            "cell": v.cell.split("__", 2)[-1],
            "verdict": v.label,
            "differences": "; ".join([*v.differences, *([v.note] if v.note else [])]),
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
    bound = sum(v.label == "budget-bound" for v in verdicts)
    path = sum(v.label == "path-bound" for v in verdicts)
    print(
        f"{len(verdicts) - bad - bound - path} of {len(verdicts)} cells reproduced"
        + (f", {bound} budget-bound (everything else reproduced)" if bound else "")
        + (
            f", {path} path-bound (target reached by another path; everything else reproduced)"
            if path
            else ""
        )
        + (f", {bad} differ" if bad else "")
        + "".join(f"; {n} not compared (missing in {run})" for run, n in left_out.items() if n)
    )
    if not verdicts:
        print("no cell in common: nothing was compared", file=sys.stderr)
        return 1
    return 1 if bad else 0


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends a run as Ctrl-C does: finished cells kept, one line, no traceback."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options; `--plugin` gathered from before and after a study's name."""
    args = _parser().parse_args(argv)
    args.plugin = [*args.plugin, *getattr(args, "plugin_after_name", [])]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.plugin:
            # through the environment, so worker and memory-probe processes load them too
            plugins.add_to_environment(args.plugin)
            registry.discover()
        if args.command == "list":
            return cmd_list()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "reproduce":
            return cmd_run(args, judge=True)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "study":
            return run_study(args)
        if args.command == "predict":
            return cmd_predict(args)
        return cmd_report(args)
    except UsageError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # outside a run's cells (planning, the report)
        print(
            f"interrupted ({error_line(exc) or 'SIGINT'}): nothing is lost of what was written",
            file=sys.stderr,
        )
        return 130
