"""Worker process of `SubprocessEngine`: ``python -m harness.execution.worker JOB.json``
measures one cell, saving its record after every stage and its trajectory arrays at the
end into the job's private folder (never into the results folder: the parent writes that).

Thread settings come from the parent's environment, so they match across cells.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: prctl(2) option: the signal this process gets when its parent dies
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when the process that started it dies (a killed run
    leaves no orphaned worker); a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def measure_in_worker(job: Mapping[str, Any]) -> None:
    """Measure one cell, saving the record after every stage (status `failed` with the
    stage and a one-line reason when it raises) and the arrays when it ends."""
    from tqdm.auto import tqdm

    from harness.core.errors import one_line
    from harness.execution.measure import measure_cell
    from harness.planning.cell import Cell
    from harness.store.results import write_arrays, write_json_atomic

    record_path, arrays_path = Path(job["record_path"]), Path(job["arrays_path"])
    record: dict[str, Any] = dict(job["record"])
    save = lambda rec: write_json_atomic(record_path, rec)
    cell: Cell = job["cell"]
    iters = int(cell["train"]["iters"])
    bar = tqdm(
        total=iters,
        desc=f"train {cell['task']}/{cell['impl']}",
        unit="it",
        leave=False,
        disable=not job["progress"] or iters == 0,
        position=1,
    )

    def step(i: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"loss {loss:.3g}")

    try:
        arrays = measure_cell(
            cell, record, repeats=job["repeats"], memory=job["memory"], on_train_step=step, checkpoint=save
        )
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
        die_with_parent(int(job["parent_pid"]))
    from harness.core import registry

    registry.discover()
    measure_in_worker(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
