"""Runs the matrix: decides which cells run, hands them to an engine, and stores what
comes back, one record per cell, as each cell ends.

The parent process is the only writer of the results folder: records and trajectory
arrays come back from the engine (`harness.execution.engine`), are judged against the
task's claims here and appended to the store.  Missing libraries and unsupported
combinations are `skipped` with a one-line reason, decided without importing any
framework.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from tqdm.auto import tqdm

from harness.core import registry
from harness.core.claims import judge_record
from harness.execution.engine import Engine, Job, Outcome
from harness.execution.measure import FAULT_VARIABLE, measure_cell
from harness.execution.subprocess_engine import SubprocessEngine
from harness.planning.cell import Cell, cell_id
from harness.store.results import ResultsStore

__all__ = ["FAULT_VARIABLE", "base_record", "measure_cell", "run_cells", "skip_reason"]


def base_record(cell: Cell, run_id: str, env: Mapping[str, Any]) -> dict[str, Any]:
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
    }


def skip_reason(cell: Cell) -> str | None:
    """Why a cell cannot run (library missing, model or device unsupported), or None.

    Decided without importing any framework, in the parent process."""
    cls = registry.get_implementation(cell["impl"])
    if missing := cls.missing():
        return f"unavailable ({', '.join(missing)} missing): {cls.install}"
    return cls.skip(registry.get_task(cell["task"])(**cell["task_options"]), cell["device"])


def _finish(outcome: Outcome, store: ResultsStore, replace: bool = False) -> dict[str, Any]:
    """Judge, attach the arrays and append one record (the parent's side of a cell);
    `replace`: the record takes the place of the cell's old one (`--retry-failed`)."""
    record = outcome.record
    cell = outcome.job.cell
    if outcome.arrays:
        record["trajectory_file"] = store.save_arrays(cell_id(cell), outcome.arrays)
    record["claims"] = judge_record(registry.get_task(cell["task"]).claims, record)
    store.append(record, replace=replace)
    return record


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
) -> list[dict[str, Any]]:
    """Measure every cell not yet in `store` on `engine` (default: each cell in a worker
    process of its own with `timeout`), appending each record to `store` as soon as its
    cell ends.  Skipped cells are recorded first, then the engine's cells as they finish.
    With `retry_failed`, cells recorded as `failed` run again and their new records
    replace the old ones.  The folder's records are read (and validated) before any cell
    runs; the caller holds the folder's lock (`ResultsStore.lock`)."""
    engine = engine or SubprocessEngine(timeout=timeout)
    env = {**env, **engine.describe()}
    done = store.finished_ids()
    retry = store.failed_ids() if retry_failed else set()
    # a cell planned twice runs once: the folder holds one record per cell
    todo = list({cell_id(c): c for c in cells if cell_id(c) not in done - retry}.values())
    records: list[dict[str, Any]] = []
    outer = tqdm(total=len(todo), desc="matrix", unit="cell", disable=not progress, position=0)
    jobs: list[Job] = []
    for cell in todo:
        started = time.perf_counter()
        record = base_record(cell, run_id, env)
        job = Job(cell=cell, record=record, repeats=repeats, memory=memory, progress=progress)
        if reason := skip_reason(cell):
            record.update(status="skipped", reason=reason, cell_time_s=time.perf_counter() - started)
            records.append(_finish(Outcome(job, record), store, cell_id(cell) in retry))
            outer.update(1)
        else:
            jobs.append(job)
    for outcome in engine.run(jobs):
        cell = outcome.job.cell
        outer.set_postfix_str(f"{cell['task']} / {cell['impl']} done")
        records.append(_finish(outcome, store, cell_id(cell) in retry))
        outer.update(1)
    outer.close()
    return records
