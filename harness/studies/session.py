"""A session: a planned set of cells run into a results folder, its table printed and its
report written.  `run`, `reproduce` and every study go through `execute`; the options
every session takes are declared once, in `add_session_options`."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from harness.core.devices import DTYPES
from harness.execution.clusters import CLUSTERS
from harness.store.paths import path_argument

#: the values of `--engine`
ENGINES = ("serial", "dask")

__all__ = ["ENGINES", "add_session_options", "build_engine", "execute", "print_job_script", "write_report"]

#: timed value-and-grad calls after the warm-up call, for `run` and the studies alike
DEFAULT_REPEATS = 7


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """The options `run`, `reproduce` and `study` share: back-ends, device, dtype, seed,
    repeats, results folder, timeout, threads, progress."""
    parser.add_argument(
        "--impl", default="all", help="NAME[,NAME...] or all (default); grids: NAME[rtol=1e-3,1e-6]"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--dtype", default="float64", choices=DTYPES)
    parser.add_argument("--seed", type=int, default=0, help="data and initial-weight seed (default: 0)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"timed value-and-grad repeats after warm-up (default: {DEFAULT_REPEATS})",
    )
    parser.add_argument(
        "--out", type=path_argument, default=None, help="results folder (default: results/<run-id>)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per cell before it is failed")
    parser.add_argument("--threads", type=int, default=1, help="threads per framework (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=None,
        metavar="GIB",
        help="resident memory per cell, in GiB, before it is failed (default: none)",
    )
    _engine_options(parser)


def _engine_options(parser: argparse.ArgumentParser) -> None:
    """Where the cells run: one after another here, or on a Dask cluster."""
    group = parser.add_argument_group("engine (where the cells run)")
    group.add_argument(
        "--engine",
        default="serial",
        choices=ENGINES,
        help="serial: one cell at a time here (default); dask: many at once on a Dask cluster",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        help="dask: workers to start (default: the CPUs this run may use)",
    )
    group.add_argument(
        "--scheduler", default=None, metavar="ADDR", help="dask: a running scheduler, e.g. tcp://host:8786"
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="dask: seconds to reach the scheduler and see a worker (default: 10)",
    )
    group.add_argument(
        "--cluster", default="local", choices=CLUSTERS, help="dask, no --scheduler: local (default), slurm"
    )
    group.add_argument(
        "--cluster-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dask --cluster slurm: queue, account, walltime, memory, cores, gpus, python, ... (repeatable)",
    )
    group.add_argument(
        "--print-job-script",
        action="store_true",
        help="dask --cluster slurm: print the job script, run nothing",
    )
    group.add_argument(
        "--timing",
        default=None,
        choices=("serial", "concurrent"),
        help="dask: serial (default) times every cell again one at a time after the parallel run; "
        "concurrent keeps the figures taken with other cells running (marked in the report)",
    )


def build_engine(args: argparse.Namespace) -> Any:
    """The engine the session options ask for (not started: it is a context manager)."""
    from harness.core import registry
    from harness.core.errors import UsageError
    from harness.execution.clusters import parse_cluster_options
    from harness.execution.faults import check_fault_variable

    registry.discover()
    check_fault_variable(registry.BACKENDS)  # a typo would run with no fault and no word
    memory = None if args.memory_limit is None else args.memory_limit * 2**30
    if args.engine == "serial":
        dask_only = [
            flag
            for flag, given in (
                ("--workers", args.workers is not None),
                ("--scheduler", args.scheduler is not None),
                ("--cluster", args.cluster != "local"),
                ("--cluster-option", bool(args.cluster_option)),
                ("--print-job-script", args.print_job_script),
                ("--timing", args.timing is not None),
                ("--connect-timeout", args.connect_timeout is not None),
            )
            if given
        ]
        if dask_only:
            raise UsageError(f"{', '.join(dask_only)} needs --engine dask")
        from harness.execution.subprocess_engine import SubprocessEngine

        return SubprocessEngine(timeout=args.timeout, memory_limit=memory)
    if importlib.util.find_spec("distributed") is None:
        raise UsageError("--engine dask needs dask distributed: pip install -c constraints.txt -e '.[dask]'")
    if args.scheduler is not None and (args.cluster != "local" or args.cluster_option):
        raise UsageError("give --scheduler ADDR (a running cluster) or --cluster slurm, not both")
    if args.cluster_option and args.cluster != "slurm":
        raise UsageError("--cluster-option needs --cluster slurm")
    from harness.execution.dask_engine import DaskEngine
    from harness.execution.environment import cpu_affinity

    return DaskEngine(
        workers=args.workers or len(cpu_affinity() or range(os.cpu_count() or 1)),
        scheduler=args.scheduler,
        cluster=args.cluster,
        cluster_options=parse_cluster_options(args.cluster_option),
        timeout=args.timeout,
        memory_limit=memory,
        connect_timeout=10.0 if args.connect_timeout is None else args.connect_timeout,
    )


def print_job_script(args: argparse.Namespace) -> int:
    """`--print-job-script`: the SLURM job script of one Dask worker, nothing submitted."""
    from harness.core.errors import UsageError
    from harness.execution.clusters import parse_cluster_options, slurm_cluster

    if args.engine != "dask" or args.cluster != "slurm":
        raise UsageError("--print-job-script needs --engine dask --cluster slurm")
    cluster = slurm_cluster(parse_cluster_options(args.cluster_option), submit=False)
    try:
        print(cluster.job_script())
    finally:
        cluster.close()
    return 0


def execute(
    cells: list[Any],
    *,
    out: Path | None,
    label: str,
    repeats: int,
    memory: bool,
    engine: Any,
    progress: bool,
    timing: str | None = "serial",
    judge: bool = False,
    resume: bool = False,
    force: bool = False,
    retry_failed: bool = False,
) -> int:
    """Run `cells` into `out` (default results/<run-id>), print the table, write the report;
    exit status 1 when a cell failed (0 when every cell ran or was skipped for a stated
    reason); with `judge`, count the claims' verdicts and exit with 1 when one is failing.

    The session is the folder's only writer: it holds the folder's lock from before it
    reads the folder until the report is written (a second writer: one line, exit 2).  A
    folder that already holds records is refused unless `resume` (go on, skipping its
    finished cells; with `retry_failed` its failed cells run again) or `force` (its old
    results are removed first).  Filesystem errors are one line, never a traceback.

    `engine` (`harness.execution.engine.Engine`, from `build_engine`) is started before
    the folder is touched, so that an unreachable cluster is one line and no folder."""
    from harness.store.lock import folder_lock
    from harness.store.results import new_run_id, prepare_folder

    run_id = new_run_id(label)
    timing = timing or "serial"  # `--timing` not given
    out = out if out is not None else Path("results") / run_id
    with engine:
        prepare_folder(out)
        with folder_lock(out):
            return _locked_session(
                cells, out, run_id, repeats=repeats, memory=memory, engine=engine, progress=progress,
                timing=timing, judge=judge, resume=resume, force=force, retry_failed=retry_failed,
            )  # fmt: skip


def _locked_session(
    cells: list[Any],
    out: Path,
    run_id: str,
    *,
    repeats: int,
    memory: bool,
    engine: Any,
    progress: bool,
    timing: str,
    judge: bool,
    resume: bool,
    force: bool,
    retry_failed: bool,
) -> int:
    """`execute` once the folder's lock is held."""
    from harness.core.claims import FAILING
    from harness.core.errors import UsageError
    from harness.execution.environment import provenance
    from harness.execution.runner import run_cells
    from harness.reporting.tables import format_records
    from harness.store.results import ResultsStore, load_records

    held = ResultsStore(out).records()  # validated before anything is measured
    if held and not resume and not force:
        raise UsageError(
            f"{out} already holds {len(held)} records: --resume {out} to go on, --force to start over"
        )
    store = ResultsStore(out)
    if force:
        store.clear()
    env = provenance()
    store = ResultsStore(out, env)
    try:
        run_cells(
            cells, store, run_id=run_id, env=env, repeats=repeats, memory=memory, engine=engine,
            progress=progress, retry_failed=retry_failed, timing=timing,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished cells are in {out}/records.jsonl; --resume {out} goes on",
            file=sys.stderr,
        )
        return 130
    records = load_records(out)
    verdicts = current_verdicts(records)
    print(format_records(records, verdicts=verdicts))
    try:
        written = write_report(out, records, verdicts)
    except OSError as exc:
        raise UsageError(f"cannot write the report into '{out}': {exc.strerror or exc}") from None
    print(f"\nresults: {out}/records.jsonl, {out}/summary.csv" + (f", {written}" if written else ""))
    failed = sum(r.get("status") == "failed" for r in records)
    if failed:
        print(f"{failed} of {len(records)} cells failed (reasons in the table above)", file=sys.stderr)
    if not judge:
        return 1 if failed else 0
    counts = verdicts.counts()
    print("verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return 1 if failed or any(counts.get(v) for v in FAILING) else 0


def current_verdicts(records: list[Any]) -> Any:
    """The verdicts the records hold, and those of the claims over two tasks
    (`AbstractTask.cross_claims`) on the pairs of records present."""
    from harness.core import registry
    from harness.reporting.tables import Verdicts

    registry.discover()
    cross = {name: cls.cross_claims for name, cls in registry.TASKS.items() if cls.cross_claims}
    return Verdicts.of(records, None, cross)


def write_report(directory: Path, records: list[Any], verdicts: Any = None) -> str:
    """Figures, report.md and report.html when the report libraries are installed; the
    files written, for the closing line.  `verdicts`: `harness.reporting.tables.Verdicts`
    (default: those the records carry)."""
    if importlib.util.find_spec("matplotlib") is None:
        return ""
    try:
        from harness.reporting.html_report import write_report as write_html
    except ImportError:
        return ""
    paths = write_html(directory, records, verdicts=verdicts)
    return ", ".join(str(p) for p in paths.values() if str(p).endswith((".html", ".md")))
