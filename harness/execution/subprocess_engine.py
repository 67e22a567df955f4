"""The serial engine: each cell in a worker process of its own (`python -m
harness.execution.worker`), one at a time, with a timeout and an optional memory limit.

The worker saves the record after every stage into a private temporary folder, and the
trajectory arrays at the end; when it exits, crashes or is killed (timeout, memory limit),
`run_job` reads back what it left and returns it.  Workers start in a new session (so that
a kill reaches the whole process group: memory probe and any grandchild included) and die
with the process that started them (Linux `PR_SET_PDEATHSIG`), so that a killed run leaves
no orphan behind.  `run_job` is also what the Dask engine runs on its workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import psutil

from harness.execution.engine import Engine, Job, Outcome
from harness.execution.environment import cpu_affinity

if TYPE_CHECKING:  # a type only: the parent never imports the measurement code here
    from harness.execution.measure import InProgress

__all__ = [
    "SubprocessEngine",
    "format_bytes",
    "run_job",
    "worker_environment",
]

#: seconds between two looks at a running worker (timeout, memory, cancellation)
POLL_S = 0.2


def worker_environment(
    job_env: Mapping[str, str], unset: Iterable[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """A cell's worker environment: this process's without `unset` (unless `job_env` sets
    them), then `job_env`; and the names removed."""
    drop = set(unset) - set(job_env)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **job_env}, sorted(drop & set(os.environ))


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def run_job(
    job: Job,
    *,
    timeout: float,
    memory_limit: float | None = None,
    execution: Mapping[str, Any] | None = None,
    on_start: Callable[[int], None] = lambda pid: None,
    unset: Iterable[str] = (),
) -> Outcome:
    """Measure one job in a fresh worker process: `timeout` seconds of wall time and, with
    `memory_limit`, that many bytes of resident memory (the worker's process group summed)
    before it is killed and recorded as `failed` with its reason.  `execution` is stored
    as the record's `execution` (how it ran; host, affinity and threads are added here);
    `on_start(pid)` learns the worker's process (group) id.  The worker's environment is
    this process's, without the variables in `unset` (unless the job sets them), with the
    job's."""
    started = time.perf_counter()
    env, removed = worker_environment(job.environment, unset)
    how = {
        **(execution or {}),
        "environment_removed": removed,
        "host": socket.gethostname(),
        "cpu_affinity": cpu_affinity(),
        "threads": {k: v for k, v in job.environment.items() if not k.startswith("HARNESS_")},
    }
    with tempfile.TemporaryDirectory(prefix="harness-cell-") as tmp:
        folder = Path(tmp)
        spec = {
            "cell": job.cell,
            "record": job.record,
            "repeats": job.repeats,
            "memory": job.memory,
            "progress": job.progress,
            "stages": job.stages,
            "record_path": str(folder / "record.json"),
            "arrays_path": str(folder / "arrays.npz"),
            "parent_pid": os.getpid(),
        }
        (folder / "job.json").write_text(json.dumps(spec))
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.execution.worker", str(folder / "job.json")],
            start_new_session=True,
            env=env,
        )
        on_start(proc.pid)
        died = _wait(proc, timeout, memory_limit)
        record_path, arrays_path = folder / "record.json", folder / "arrays.npz"
        # the worker's last record (`stage`: where it was when it died), else a copy of the job's
        saved = json.loads(record_path.read_text()) if record_path.is_file() else dict(job.record)
        record = cast("InProgress", saved)
        arrays = None
        if arrays_path.is_file():
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
    if died is not None:
        stage = record.pop("stage", "start" if job.stages == "all" else job.stages)
        record.update(status="failed", reason=f"{stage}: {died}")
    if job.stages == "all":
        record["cell_time_s"] = time.perf_counter() - started
        record["execution"] = how
    else:
        record["execution"] = {**(record.get("execution") or {}), "timing": how}
    return Outcome(job=job, record=record, arrays=arrays)


def _group_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _wait(proc: subprocess.Popen[bytes], timeout: float, memory_limit: float | None) -> str | None:
    """Wait for the worker; why it died (or was killed), or None when it exited cleanly."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                code = proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                _kill_group(proc)
                return f"timed out after {timeout:g} s"
            if memory_limit and (rss := _group_rss(proc.pid)) > memory_limit:
                _kill_group(proc)
                limit, used = format_bytes(memory_limit), format_bytes(rss)
                return f"exceeded the memory limit of {limit} (resident {used})"
    except BaseException:
        _kill_group(proc)
        raise
    if code < 0:
        return f"crashed: killed by signal {signal.Signals(-code).name}"
    if code != 0:
        return f"crashed: worker exited with status {code}"
    return None


def kill_group(pid: int) -> None:
    """SIGKILL a worker's process group (its memory probe and grandchildren included)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    kill_group(proc.pid)
    proc.wait()


class SubprocessEngine(Engine):
    """One worker process per cell, sequentially; `timeout` seconds per cell and, with
    `memory_limit`, that many resident bytes."""

    name = "serial"

    def __init__(self, *, timeout: float = 1800.0, memory_limit: float | None = None) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit

    def describe(self) -> dict[str, Any]:
        limits = {"cell_timeout_s": self.timeout, "cell_memory_limit_bytes": self.memory_limit}
        return {"engine": self.name, **limits}

    def run(self, jobs: Sequence[Job], *, one_at_a_time: bool = False) -> Iterator[Outcome]:
        how = {"engine": self.name, "workers": 1, "concurrency": 1, "worker": "local"}
        for job in jobs:
            yield run_job(job, timeout=self.timeout, memory_limit=self.memory_limit, execution=how)
