"""The execution seam: any `Engine` plugs into `run_cells`; the parent alone writes the
results folder; a worker dies with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import psutil
import pytest

from harness.core.errors import one_line
from harness.execution.engine import Engine, Job, Outcome
from harness.execution.measure import measure_cell
from harness.execution.runner import run_cells
from harness.planning.matrix import plan
from harness.store.results import ResultsStore, load_records
from harness.store.schema import FIELDS


class InProcessEngine(Engine):
    """A test engine: every cell measured in this process, in reverse order."""

    name = "in-process-test"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def run(self, jobs: Sequence[Job], *, one_at_a_time: bool = False) -> Iterator[Outcome]:
        for job in reversed(jobs):
            self.seen.append(job.cell["impl"])
            record = dict(job.record)
            try:
                arrays = measure_cell(job.cell, record, repeats=job.repeats, memory=job.memory)
            except Exception as exc:
                record.update(status="failed", reason=f"{record.pop('stage', 'run')}: {one_line(exc)}")
                arrays = None
            yield Outcome(job=job, record=record, arrays=arrays)


def _cells(impls: str) -> list:
    return plan("linear_adjoint", impls, sets={}, seeds=[0], iters=2, device="cpu", dtype="float64")


def test_an_engine_plugs_in_and_the_parent_writes_everything(tmp_path: Path) -> None:
    engine = InProcessEngine()
    store = ResultsStore(tmp_path / "run", {"x": 1})
    records = run_cells(
        _cells("numpy-adjoint,jax-checkpoint"), store, run_id="r", env={}, repeats=1, memory=False,
        progress=False, engine=engine,
    )  # fmt: skip
    assert engine.seen == ["jax-checkpoint", "numpy-adjoint"]
    assert {r["impl"]: r["status"] for r in records} == {"jax-checkpoint": "ok", "numpy-adjoint": "ok"}
    saved = load_records(tmp_path / "run")
    assert [r["impl"] for r in saved] == ["jax-checkpoint", "numpy-adjoint"]  # as they finished
    for rec in saved:
        assert set(rec) <= set(FIELDS), f"fields the schema lacks: {set(rec) - set(FIELDS)}"
        assert rec["env"]["engine"] == "in-process-test"
        assert rec["claims"] and rec["resolved_params"]["iters"] == 2
        with np.load(tmp_path / "run" / rec["trajectory_file"]) as arrays:
            assert {"t", "y_true", "y_pred"} <= set(arrays.files)


def test_subprocess_workers_write_nothing_into_the_results_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    store = ResultsStore(out, {"x": 1})
    before = set()
    records = run_cells(
        _cells("numpy-adjoint"), store, run_id="r", env={}, repeats=1, memory=False, progress=False
    )
    assert records[0]["status"] == "ok" and records[0]["env"]["engine"] == "serial"
    written = {p.relative_to(out).as_posix() for p in out.rglob("*")} - before
    assert written == {
        "env.json",
        "records.jsonl",
        "summary.csv",
        "trajectories",
        records[0]["trajectory_file"],
    }


def _descendants_named_worker(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "harness.execution.worker" in " ".join(c.cmdline())]


@pytest.mark.serial  # signals and a 5 s deadline for process exit
def test_killing_the_parent_kills_its_worker(tmp_path: Path) -> None:
    """SIGKILL of a running parent: within 5 s no worker is left, nor its temporary folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "HARNESS_FAULT": "numpy-adjoint:hang:reference", "TMPDIR": str(scratch)}
    cmd = [sys.executable, "-m", "harness", "run", "--task", "linear_adjoint", "--impl", "numpy-adjoint",
           "--iters", "1", "--repeats", "1", "--no-memory", "--quiet",
           "--out", str(tmp_path / "run")]  # fmt: skip
    parent = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while not workers and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = _descendants_named_worker(parent.pid)
        assert workers, "no worker started within 60 s"
        worker = workers[0]
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs([worker], timeout=5)
        assert not alive, f"worker {worker.pid} outlived its parent by 5 s"
        assert not list(scratch.glob("harness-cell-*")), "the worker's temporary folder was left"
    finally:
        if parent.poll() is None:
            parent.kill()
        for w in _descendants_named_worker(parent.pid):
            w.kill()


@pytest.mark.parametrize("bad", ["", "x"])
def test_one_line_of_an_exception(bad: str) -> None:
    line = one_line(ValueError(f"{bad}\nsecond line"))
    assert "\n" not in line and line.startswith("ValueError")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("plain", "RuntimeError: plain"),
        ("", "RuntimeError"),
        ("\n\nreal cause here\nmore", "RuntimeError: real cause here"),
        (
            '------------\nAbove is the stack outside of JIT.\n  File "x.py", line 1\nmax_steps reached',
            "RuntimeError: max_steps reached",
        ),
        ("solver failed:\n  step size underflow\n", "RuntimeError: solver failed: step size underflow"),
    ],
)
def test_the_reason_keeps_the_informative_line(message: str, expected: str) -> None:
    assert one_line(RuntimeError(message)) == expected


@pytest.mark.serial  # signals and a 5 s deadline for process exit
def test_sigterm_ends_a_run_in_one_line_keeping_finished_cells(tmp_path: Path) -> None:
    """numpy-adjoint finishes, rk4-unrolled hangs; SIGTERM: exit 130, one line, the finished
    record kept, no worker and no temporary folder left."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "HARNESS_FAULT": "rk4-unrolled:hang:reference", "TMPDIR": str(scratch)}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "run", "--task", "linear_adjoint", "--impl",
           "numpy-adjoint,rk4-unrolled", "--iters", "1", "--repeats", "1", "--no-memory", "--quiet",
           "--out", str(out)]  # fmt: skip
    parent = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "records.jsonl").is_file():
            time.sleep(0.5)
        assert (out / "records.jsonl").is_file(), "the first cell did not finish within 120 s"
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and not workers:
            time.sleep(0.5)
            workers = _descendants_named_worker(parent.pid)
        assert workers
        parent.send_signal(signal.SIGTERM)
        _, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
    assert [r["impl"] for r in load_records(out)] == ["numpy-adjoint"]
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    assert not list(scratch.glob("harness-cell-*"))


def test_progress_off_a_terminal_is_a_line_per_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redirected to a file, a run wrote 17,539 lines of progress bars (#26): off a terminal
    each finished cell is one line, and bars are left to terminals."""
    from harness.execution.runner import progress_modes

    cells = plan(
        "linear_adjoint", "numpy-adjoint", sets={}, seeds=[0, 1], iters=2, device="cpu", dtype="float64"
    )
    run_cells(
        cells, ResultsStore(tmp_path / "run", {}), run_id="r", env={}, repeats=1, memory=False, progress=True,
        engine=InProcessEngine(),
    )  # fmt: skip
    err = capsys.readouterr().err
    assert err.splitlines() == [  # the test engine runs the cells in reverse
        "[1/2] linear_adjoint / numpy-adjoint (seed 1): ok",
        "[2/2] linear_adjoint / numpy-adjoint (seed 0): ok",
    ]

    class Terminal:
        def isatty(self) -> bool:
            return True

    assert progress_modes(True, Terminal()) == (True, False)
    assert progress_modes(True, sys.stderr) == (False, True)
    assert progress_modes(False, Terminal()) == (False, False)
