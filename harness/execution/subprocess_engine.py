"""The first engine: each cell in a worker process of its own (`python -m
harness.execution.worker`), one at a time, with a timeout.

The worker saves the record after every stage into a private temporary folder, and the
trajectory arrays at the end; when it exits, crashes or is killed at the timeout, this
engine reads back what it left and returns it to the parent.  Workers start in a new
session (so that a timeout kills the whole process group, memory probe included) and die
with the parent (Linux `PR_SET_PDEATHSIG`), so that a killed run leaves no orphan behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.execution.engine import Engine, Job, Outcome

__all__ = ["SubprocessEngine"]


class SubprocessEngine(Engine):
    """One worker process per cell, sequentially; `timeout` seconds per cell."""

    name = "subprocess"

    def __init__(self, *, timeout: float = 1800.0) -> None:
        self.timeout = timeout

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "cell_timeout_s": self.timeout}

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        for job in jobs:
            yield self.run_one(job)

    def run_one(self, job: Job) -> Outcome:
        """Measure one job in a fresh worker process."""
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="harness-cell-") as tmp:
            folder = Path(tmp)
            spec = {
                "cell": job.cell,
                "record": job.record,
                "repeats": job.repeats,
                "memory": job.memory,
                "progress": job.progress,
                "record_path": str(folder / "record.json"),
                "arrays_path": str(folder / "arrays.npz"),
                "parent_pid": os.getpid(),
            }
            (folder / "job.json").write_text(json.dumps(spec))
            died = self._wait(folder / "job.json")
            record_path, arrays_path = folder / "record.json", folder / "arrays.npz"
            record = json.loads(record_path.read_text()) if record_path.is_file() else dict(job.record)
            arrays = None
            if arrays_path.is_file():
                with np.load(arrays_path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
        if died is not None:
            stage = record.pop("stage", "start")
            record.update(status="failed", reason=f"{stage}: {died}")
        record["cell_time_s"] = time.perf_counter() - started
        return Outcome(job=job, record=record, arrays=arrays)

    def _wait(self, job_path: Path) -> str | None:
        """Run the worker on `job_path`; why it died, or None when it exited cleanly."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.execution.worker", str(job_path)], start_new_session=True
        )
        try:
            code = proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return f"timed out after {self.timeout:g} s"
        except BaseException:
            _kill_group(proc)
            raise
        if code < 0:
            return f"crashed: killed by signal {signal.Signals(-code).name}"
        if code != 0:
            return f"crashed: worker exited with status {code}"
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's process group (its memory probe included) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
