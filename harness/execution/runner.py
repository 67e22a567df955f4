"""Runs the matrix: decides which cells run, hands them to an engine, and stores what
comes back, one record per cell, as each cell ends.

The parent process is the only writer of the results folder: records and trajectory
arrays come back from the engine (`harness.execution.engine`), are judged against the
task's claims here and appended to the store.  Missing libraries and unsupported
combinations are `skipped` with a one-line reason, decided without importing any
framework.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tqdm.auto import tqdm

from harness.core import plugins, registry
from harness.core.claims import judge_record
from harness.execution.engine import Engine, Job, Outcome
from harness.execution.faults import FAULT_VARIABLE
from harness.execution.measure import measure_cell
from harness.execution.subprocess_engine import SubprocessEngine
from harness.planning.cell import Cell, cell_id
from harness.store.results import ResultsStore
from harness.store.schema import Record

__all__ = ["FAULT_VARIABLE", "base_record", "measure_cell", "run_cells", "skip_reason", "timing_pass"]


def base_record(cell: Cell, run_id: str, env: Mapping[str, Any]) -> Record:
    """The fields every record has, whatever happens to its cell."""
    return {
        "run_id": run_id,
        "cell_id": cell_id(cell),
        "task": cell["task"],
        "impl": cell["impl"],
        "params": {**cell["task_options"], **cell["solver"], **cell["impl_options"], **cell["train"]},
        "device": cell["device"],
        "dtype": cell["dtype"],
        "seed": cell["seed"],
        "status": "ok",
        "reason": None,
        "env": dict(env),
        "cell": dict(cell),  # what `harness.execution.predict` rebuilds the back-end from
        "sources": {
            "task": plugins.source_of(registry.get_task(cell["task"])),
            "impl": plugins.source_of(registry.get_backend(cell["impl"])),
        },
    }


def skip_reason(cell: Cell) -> str | None:
    """Why a cell cannot run (library missing, model or device unsupported), or None.

    Decided without importing any framework, in the parent process."""
    cls = registry.get_backend(cell["impl"])
    if missing := cls.missing():
        return f"unavailable ({', '.join(missing)} missing): {cls.install}"
    return cls.skip(registry.get_task(cell["task"])(**cell["task_options"]), cell["device"])


def _finish(outcome: Outcome, store: ResultsStore, replace: bool = False) -> Record:
    """Judge, attach the arrays and append one record (the parent's side of a cell);
    `replace`: the record takes the place of the cell's old one (`--retry-failed`)."""
    record = outcome.record
    cell = outcome.job.cell
    if outcome.arrays:
        record["trajectory_file"] = store.save_arrays(cell_id(cell), outcome.arrays)
    record["claims"] = judge_record(registry.get_task(cell["task"]).claims, record)
    store.append(record, replace=replace)
    return record


def _timing_of(record: Record) -> None:
    """Mark how the record's timing stage ran: `serial` (no other cell running) or
    `concurrent` (other cells ran at the same time on the engine)."""
    if record.get("status") == "ok":
        concurrency = int((record.get("execution") or {}).get("concurrency") or 1)
        record["timing"] = "serial" if concurrency <= 1 else "concurrent"


def run_cells(
    cells: Iterable[Cell],
    store: ResultsStore,
    *,
    run_id: str,
    env: Mapping[str, Any],
    repeats: int = 7,
    memory: bool = True,
    timeout: float = 1800.0,
    progress: bool = True,
    engine: Engine | None = None,
    retry_failed: bool = False,
    timing: str = "serial",
) -> list[Record]:
    """Measure every cell not yet in `store` on `engine` (default: each cell in a worker
    process of its own with `timeout`), appending each record to `store` as soon as its
    cell ends.  Skipped cells are recorded first, then the engine's cells as they finish.
    With `retry_failed`, cells recorded as `failed` run again and their new records
    replace the old ones.  With `timing="serial"`, the timing stage of every planned cell
    whose figures were taken concurrently (this run's or a resumed one's) runs again, one
    cell at a time, and its record is replaced by one with those figures (`timing_pass`).
    The folder's records are read (and validated) before any cell runs; the caller holds
    the folder's lock (`ResultsStore.lock`)."""
    engine = engine or SubprocessEngine(timeout=timeout)
    bars, lines = progress_modes(progress)
    env = {**env, **engine.describe()}
    done = store.finished_ids()
    retry = store.failed_ids() if retry_failed else set()
    planned = {cell_id(c): c for c in cells}  # a cell planned twice runs once
    todo = [c for cid, c in planned.items() if cid not in done - retry]
    records: list[Record] = []
    environment = engine.environment()
    jobs: list[Job] = []
    skipped: list[Outcome] = []
    for cell in todo:
        started = time.perf_counter()
        record = base_record(cell, run_id, env)
        job = Job(cell=cell, record=record, repeats=repeats, memory=memory, progress=bars,
                  environment=environment)  # fmt: skip
        if reason := skip_reason(cell):
            record.update(status="skipped", reason=reason, cell_time_s=time.perf_counter() - started)
            skipped.append(Outcome(job, record))
        else:
            jobs.append(job)
    engine.check(jobs)  # before anything is written
    outer = tqdm(total=len(todo), desc="matrix", unit="cell", disable=not bars, position=0)
    for outcome in skipped:
        records.append(_finish(outcome, store, cell_id(outcome.job.cell) in retry))
        outer.update(1)
        _log_line(lines, len(records), len(todo), records[-1])
    for outcome in engine.run(jobs):
        cell = outcome.job.cell
        outer.set_postfix_str(f"{cell['task']} / {cell['impl']} done")
        _timing_of(outcome.record)
        records.append(_finish(outcome, store, cell_id(cell) in retry))
        outer.update(1)
        _log_line(lines, len(records), len(todo), records[-1])
    outer.close()
    if timing == "serial":
        timing_pass(planned, store, engine, repeats=repeats, progress=progress, environment=environment)
    return records


def progress_modes(progress: bool, stream: Any = None) -> tuple[bool, bool]:
    """(bars, lines): progress bars on a terminal, a line per finished cell otherwise (a
    log file or a pipe would hold every redraw of every bar), neither without `progress`."""
    if not progress:
        return False, False
    tty = bool(getattr(stream or sys.stderr, "isatty", lambda: False)())
    return tty, not tty


def _log_line(enabled: bool, done: int, total: int, record: Mapping[str, Any]) -> None:
    """`[3/12] task / back-end (seed 0): ok, 12.3 s` (or the failure's reason) on stderr."""
    if not enabled:
        return
    seconds = record.get("cell_time_s")
    took = f", {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    why = f": {record.get('reason')}" if record.get("status") != "ok" and record.get("reason") else ""
    cell = f"{record['task']} / {record['impl']} (seed {record.get('seed')})"
    print(f"[{done}/{total}] {cell}: {record['status']}{took}{why}", file=sys.stderr, flush=True)


def timing_pass(
    planned: Mapping[str, Cell],
    store: ResultsStore,
    engine: Engine,
    *,
    repeats: int,
    progress: bool,
    environment: Mapping[str, str],
) -> int:
    """Run the timing stage again, one cell at a time, for every planned cell of `store`
    whose timing was taken concurrently; each new figure replaces the record (the
    concurrent figures kept under `timing_concurrent`).  A timing job that fails leaves
    the record as it was, with `timing_reason`.  Returns how many records were re-timed."""
    pending = [
        r
        for r in store.records()
        if r.get("status") == "ok" and r.get("timing") == "concurrent" and r.get("cell_id") in planned
    ]
    if not pending:
        return 0
    jobs = [
        Job(
            planned[str(r.get("cell_id"))], r, repeats, memory=False, stages="timing", environment=environment
        )
        for r in pending
    ]
    bars, lines = progress_modes(progress)
    if lines:
        print(f"timing {len(jobs)} cells again, one at a time", file=sys.stderr, flush=True)
    bar = tqdm(total=len(jobs), desc="timing, one cell at a time", unit="cell", disable=not bars)
    done = 0
    for outcome in engine.run(jobs, one_at_a_time=True):
        record: Record = outcome.record
        if record.get("status") == "ok":
            record["timing"] = "serial"
            done += 1
        else:  # keep what the concurrent run measured; say why it was not re-timed
            record = {**outcome.job.record, "timing_reason": record.get("reason")}
        _finish(Outcome(outcome.job, record), store, replace=True)
        bar.update(1)
    bar.close()
    return done
