"""Worker process of the engines: ``python -m harness.execution.worker JOB.json`` measures
one cell (or, for `--timing serial`, its timing stage alone), saving its record after
every stage and its trajectory arrays at the end into the job's private folder (never
into the results folder: the parent writes that).

Thread settings come from the parent's environment, so they match across cells.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

#: prctl(2) option: the signal this process gets when its parent dies
_PR_SET_PDEATHSIG = 1


def _abandon(folder: Path) -> None:
    """The parent is gone: remove this job's private folder and end the worker's process
    group (the worker and its memory probe) at once."""
    shutil.rmtree(folder, ignore_errors=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def die_with_parent(parent: int, folder: Path) -> None:
    """Linux: when the process that started this worker dies, remove the job's folder and
    end the worker and its children (a killed run leaves no orphan and no temporary folder).

    The kernel sends SIGTERM on the parent's death (`PR_SET_PDEATHSIG`), whose handler does
    it; a watchdog thread that polls the parent does the same when the handler cannot run
    (the main thread inside a long native call).  A no-op elsewhere than Linux."""
    if not sys.platform.startswith("linux"):
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: _abandon(folder))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        _abandon(folder)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        _abandon(folder)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def measure_in_worker(job: Mapping[str, Any]) -> None:
    """Measure one cell, saving the record after every stage (status `failed` with the
    stage and a one-line reason when it raises) and the arrays when it ends."""
    from tqdm.auto import tqdm

    from harness.core.errors import one_line
    from harness.execution.faults import stage_hook
    from harness.execution.measure import InProgress, measure_cell, measure_timing
    from harness.planning.cell import Cell
    from harness.store.results import write_arrays, write_json_atomic

    record_path, arrays_path = Path(job["record_path"]), Path(job["arrays_path"])
    record = cast(InProgress, dict(job["record"]))  # the parent's `Record`, through JSON
    save = lambda rec: write_json_atomic(record_path, rec)
    cell: Cell = job["cell"]
    # at most: Adam's iterations and the polish's evaluations (both end early when done)
    iters = int(cell["train"]["iters"]) + int(cell["train"].get("polish", 0))
    bar = tqdm(
        total=iters,
        desc=f"train {cell['task']}/{cell['impl']}",
        unit="eval",
        leave=False,
        disable=not job["progress"] or iters == 0,
        position=1,
    )

    def step(i: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"loss {loss:.3g}")

    try:
        if job.get("stages") == "timing":
            measure_timing(cell, record, repeats=job["repeats"], on_stage=stage_hook(cell))
            save(record)
            return
        arrays = measure_cell(
            cell, record, repeats=job["repeats"], memory=job["memory"], on_train_step=step, checkpoint=save,
            on_stage=stage_hook(cell),
        )  # fmt: skip
        if arrays:
            write_arrays(arrays_path, arrays)
    except Exception as exc:  # a failing back-end is a result, not a crash
        record.update(status="failed", reason=f"{record.pop('stage', 'run')}: {one_line(exc)}")
        save(record)
    finally:
        bar.close()


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    if "parent_pid" in job:
        die_with_parent(int(job["parent_pid"]), Path(argv[0]).parent)
    from harness.core import registry

    registry.discover()
    measure_in_worker(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
