"""The Dask engine (#13): the same cells on a Dask cluster give the same non-timing
results as the serial engine, say how they ran, keep the harness's isolation, timeout and
memory limit, and lose nothing to faults (a failing cell, a dying Dask worker, Ctrl-C, an
unreachable scheduler); a run goes on across engines with `--resume`.

Cells are cheap on purpose (task `linear`, 0-2 training iterations, no memory probe, one
timed repeat): what is checked is the engine, not the back-ends."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest.importorskip("distributed")

from harness.core.errors import UsageError
from harness.execution.dask_engine import DaskEngine
from harness.execution.engine import Job
from harness.execution.runner import base_record, run_cells
from harness.planning.matrix import plan
from harness.store.results import ResultsStore, load_records

ROOT = Path(__file__).resolve().parent.parent
MARKER = "HARNESS_TEST_MARKER"  # every cell process inherits it (Job.environment: HARNESS_*)
CHEAP = ["--task", "linear", "--repeats", "1", "--no-memory", "--quiet"]
#: `python -m harness ARGS` with SIGINT as at a terminal: a background job of a
#: non-interactive shell (`cmd &`, as CI may start the tests) inherits SIGINT ignored
AT_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = ['harness', *sys.argv[1:]]; runpy.run_module('harness', run_name='__main__')"
)


def _cells(impls: str, iters: int = 2, task: str = "linear") -> list[Any]:
    return plan(task, impls, sets={}, seeds=[0], iters=iters, device="cpu", dtype="float64")


def _marked(marker: str) -> list[psutil.Process]:
    """Live processes that carry `marker` in their environment."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _no_marked_process_within(marker: str, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := _marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def _cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[DaskEngine]:
    """One local cluster of two workers for the engine-level tests."""
    with DaskEngine(workers=2, timeout=120) as started:
        yield started


def _run(engine: DaskEngine, tmp_path: Path, cells: list[Any], **options: Any) -> dict[str, dict[str, Any]]:
    store = ResultsStore(tmp_path / "run")
    store.dir.mkdir(parents=True, exist_ok=True)
    run_cells(
        cells, store, run_id="test", env={}, repeats=1, memory=False, progress=False, engine=engine, **options
    )
    return {r["impl"]: r for r in store.records()}


# --- same results, and how they ran ----------------------------------------------------


def test_dask_gives_the_serial_results_and_says_how_it_ran(tmp_path: Path) -> None:
    """Two cells on two local workers: `compare --ignore-times` against the serial run says
    reproduced; each record names engine, worker, host, its own pinned core and the thread
    settings; value-and-grad times were taken again one cell at a time (`--timing serial`,
    the default), the concurrent ones kept; training times are marked concurrent."""
    common = [*CHEAP, "--impl", "numpy-adjoint,rk4-unrolled", "--iters", "3"]
    serial = _cli("run", *common, "--out", str(tmp_path / "serial"))
    dask = _cli("run", *common, "--engine", "dask", "--workers", "2", "--out", str(tmp_path / "dask"))
    assert serial.returncode == 0, serial.stderr
    assert dask.returncode == 0, dask.stderr
    compared = _cli("compare", str(tmp_path / "serial"), str(tmp_path / "dask"), "--ignore-times")
    assert compared.returncode == 0 and "2 of 2 cells reproduced" in compared.stdout, compared.stdout
    records = load_records(tmp_path / "dask")
    assert len(records) == 2
    cores = set()
    for rec in records:
        how = rec["execution"]
        assert how["engine"] == "dask" and how["workers"] == 2 and how["concurrency"] == 2
        assert how["worker"].startswith("tcp://") and how["host"]
        assert how["threads"]["OMP_NUM_THREADS"] == "1" and "XLA_FLAGS" in how["threads"]
        assert rec["timing"] == "serial" and how["timing"]["concurrency"] == 1
        assert set(rec["timing_concurrent"]) >= {"time_first_s", "time_median_s"}
        assert rec["env"]["engine"] == "dask"
        # Dask's Nanny sets MALLOC_TRIM_THRESHOLD_ in its workers: the cells must not inherit it
        assert "MALLOC_TRIM_THRESHOLD_" in how["environment_removed"]
        if len(os.sched_getaffinity(0)) >= 2:
            assert len(how["cpu_affinity"]) == 1
            cores.add(how["cpu_affinity"][0])
    if len(os.sched_getaffinity(0)) >= 2:
        assert len(cores) == 2, "each worker's cells run on a core of their own"
    assert "taken while up to 2 cells ran at once" in dask.stdout
    for rec in load_records(tmp_path / "serial"):
        assert rec["execution"]["engine"] == "serial" and rec["timing"] == "serial"


def test_a_cell_inherits_neither_the_nannys_variables_nor_loses_the_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.execution.dask_engine import nanny_environment
    from harness.execution.subprocess_engine import worker_environment

    assert {"MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"} <= nanny_environment()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as in a Dask worker
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env, removed = worker_environment({"OMP_NUM_THREADS": "2"}, nanny_environment())
    assert "MALLOC_TRIM_THRESHOLD_" not in env and "MALLOC_TRIM_THRESHOLD_" in removed
    assert env["OMP_NUM_THREADS"] == "2", "the run's thread settings win"
    env, removed = worker_environment({"MALLOC_TRIM_THRESHOLD_": "128"}, nanny_environment())
    assert env["MALLOC_TRIM_THRESHOLD_"] == "128", "a value the run itself sets is kept"
    assert "MALLOC_TRIM_THRESHOLD_" not in removed


def test_timing_concurrent_keeps_and_marks_the_concurrent_figures(engine: DaskEngine, tmp_path: Path) -> None:
    from harness.reporting.tables import format_records

    records = _run(engine, tmp_path, _cells("numpy-adjoint,rk4-unrolled", iters=0), timing="concurrent")
    for rec in records.values():
        assert rec["status"] == "ok" and rec["timing"] == "concurrent" and "timing_concurrent" not in rec
    table = format_records(list(records.values()), verdicts=False)
    assert "taken while up to 2 cells ran at once" in table and " *" in table


# --- faults: each a failed record with its reason; the other cell goes on ---------------

FAULTS = [
    ("nan", {}, "train: RuntimeError: numpy-adjoint: non-finite"),
    ("segfault", {}, "train: crashed: killed by signal SIGSEGV"),
    ("exit", {}, "train: crashed: worker exited with status 3"),
    # numpy-adjoint reaches the hanging child in about 2 s; the test waits the timeout out.
    # The timeout is every cell's: at 12 s the healthy rk4-unrolled cell (torch's import,
    # build, reference gradient) once timed out too, in CI beside the suite's other workers
    ("hang-child", {"timeout": 25.0}, "train: timed out after 25 s"),
    ("memory", {"memory_limit": 0.4 * 2**30}, "train: exceeded the memory limit of 410 MiB"),
]


@pytest.mark.parametrize(("mode", "limits", "reason"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failing_cell_is_a_failed_record_and_the_others_go_on(
    engine: DaskEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, limits: dict, reason: str
) -> None:
    marker = uuid.uuid4().hex
    monkeypatch.setenv(MARKER, marker)
    monkeypatch.setenv("HARNESS_FAULT", f"numpy-adjoint:{mode}:train")
    old = engine.timeout, engine.memory_limit
    engine.timeout = limits.get("timeout", engine.timeout)
    engine.memory_limit = limits.get("memory_limit")
    try:
        records = _run(engine, tmp_path, _cells("numpy-adjoint,rk4-unrolled"))
    finally:
        engine.timeout, engine.memory_limit = old
    assert records["numpy-adjoint"]["status"] == "failed"
    assert reason in records["numpy-adjoint"]["reason"]
    assert records["numpy-adjoint"]["loss_init"] is not None, "what was measured before the fault is kept"
    assert records["rk4-unrolled"]["status"] == "ok"
    assert not _no_marked_process_within(marker, 5), "a cell process (or its grandchild) was left running"


@pytest.mark.serial  # SIGKILL of a Dask worker; its cell gone within 5 s
@pytest.mark.parametrize("allowed_failures", [3, 0])
def test_a_dask_worker_killed_mid_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed_failures: int
) -> None:
    """SIGKILL of the Dask worker running a cell: its cell process dies with it; the
    scheduler runs the cell again on another worker (one record, `ok`), or, with no
    failures allowed, the cell is a `failed` record naming KilledWorker.  Never twice."""
    import dask.config

    marker = uuid.uuid4().hex
    monkeypatch.setenv(MARKER, marker)
    monkeypatch.setenv("HARNESS_FAULT", "numpy-adjoint:sleep:train")  # 5 s in training
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        eng = DaskEngine(workers=2, timeout=120)
        eng.__enter__()
    try:
        result: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: result.update(_run(eng, tmp_path, _cells("numpy-adjoint"))))
        thread.start()
        deadline = time.monotonic() + 60
        cell = []
        while not cell and time.monotonic() < deadline:
            time.sleep(0.2)
            cell = [p for p in _marked(marker) if "harness.execution.worker" in " ".join(p.cmdline())]
        assert cell, "the cell did not start"
        time.sleep(1.0)  # inside its 5 s sleep
        dask_worker = cell[0].parent()
        assert dask_worker is not None
        dask_worker.kill()
        _, alive = psutil.wait_procs([cell[0]], timeout=5)
        assert not alive, "the cell process outlived its Dask worker"
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        eng.__exit__(None, None, None)
    records = load_records(tmp_path / "run")
    assert len(records) == 1
    if allowed_failures:
        assert records[0]["status"] == "ok", records[0]["reason"]
        assert records[0]["execution"]["worker_name"] != ""
    else:
        assert records[0]["status"] == "failed" and "KilledWorker" in records[0]["reason"]


def test_identical_cells_never_collapse_or_repeat(engine: DaskEngine, tmp_path: Path) -> None:
    """Two identical jobs are two Dask tasks (own keys, not `pure`); the same cell planned
    twice is measured and recorded once."""
    cell = _cells("numpy-adjoint", iters=0)[0]
    jobs = [Job(cell=cell, record=base_record(cell, "t", {}), repeats=1, memory=False) for _ in range(2)]
    outcomes = list(engine.run(jobs))
    assert len(outcomes) == 2 and all(o.record["status"] == "ok" for o in outcomes)
    records = _run(engine, tmp_path, [cell, cell])
    assert len(load_records(tmp_path / "run")) == 1 and records["numpy-adjoint"]["status"] == "ok"


def test_a_gpu_cell_without_a_gpu_worker_fails_fast(engine: DaskEngine) -> None:
    cell = {**_cells("numpy-adjoint", iters=0)[0], "device": "cuda"}
    with pytest.raises(UsageError, match="no Dask worker offers one"):
        engine.check([Job(cell=cell, record={}, repeats=1, memory=False)])


# --- the command line: errors, Ctrl-C, resume across engines, a remote scheduler --------


def test_an_unreachable_scheduler_is_one_line_and_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = _cli("run", *CHEAP, "--impl", "numpy-adjoint", "--engine", "dask", "--scheduler",
                  "tcp://127.0.0.1:9", "--out", str(out), timeout=120)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot run on the Dask scheduler at tcp://127.0.0.1:9"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "2"], "--workers needs --engine dask"),
        (["--engine", "dask", "--workers", "0"], "bad --workers=0"),
        (["--memory-limit", "-1"], "bad --memory-limit=-1"),
        (["--engine", "dask", "--cluster-option", "queue=x"], "--cluster-option needs --cluster slurm"),
        (
            ["--engine", "dask", "--cluster", "slurm", "--cluster-option", "colour=red"],
            "unknown --cluster-option",
        ),
        (["--engine", "spark"], "invalid choice: 'spark'"),
    ],
)
def test_bad_engine_options_are_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    result = _cli("run", *CHEAP, "--impl", "numpy-adjoint", *argv, "--out", str(tmp_path / "x"), timeout=60)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.serial  # Ctrl-C to the run's process group
def test_ctrl_c_leaves_no_process_and_resume_finishes(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the run's process group, as a terminal sends it) while one cell
    hangs: exit 130, the finished cell kept, no process of the run left (Dask workers, cell
    processes); `--resume` runs the rest, each cell recorded once."""
    marker = uuid.uuid4().hex
    out = tmp_path / "run"
    env = {**os.environ, MARKER: marker, "HARNESS_FAULT": "rk4-unrolled:hang:train"}
    argv = ["run", *CHEAP, "--impl", "numpy-adjoint,rk4-unrolled", "--iters", "2", "--engine", "dask",
            "--workers", "2", "--out", str(out)]  # fmt: skip
    cmd = [sys.executable, "-c", AT_A_TERMINAL, *argv]
    run = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            (out / "records.jsonl").exists() and (out / "records.jsonl").read_text().strip()
        ):
            time.sleep(0.5)
        assert (out / "records.jsonl").exists(), "the healthy cell did not finish"
        os.killpg(run.pid, signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert not _no_marked_process_within(marker, 10), "a process of the interrupted run was left"
    assert [r["impl"] for r in load_records(out)] == ["numpy-adjoint"]
    resumed = _cli("run", *CHEAP, "--impl", "numpy-adjoint,rk4-unrolled", "--iters", "2", "--engine", "dask",
                   "--workers", "2", "--resume", str(out))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["impl"] for r in load_records(out)) == ["numpy-adjoint", "rk4-unrolled"]


class _NeverDone:
    def done(self) -> bool:
        return False


@pytest.mark.serial  # SIGINT raised in this process
def test_a_ctrl_c_that_a_gc_callback_swallows_still_stops_the_wait() -> None:
    """The flaky hang this guards against: SIGINT handled inside distributed's gc callback
    raised a KeyboardInterrupt that Python printed and dropped, and the run waited on."""
    from harness.execution.dask_engine import _completed, _interrupts_noted

    def interrupt_inside_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            signal.raise_signal(signal.SIGINT)
            sum(range(10))  # the handler runs here, inside the callback

    unraisablehook = sys.unraisablehook
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
    try:
        with _interrupts_noted() as interrupted:
            gc.callbacks.append(interrupt_inside_gc)
            try:
                gc.collect()  # the KeyboardInterrupt is raised and dropped inside the callback
            finally:
                gc.callbacks.remove(interrupt_inside_gc)
            assert interrupted.is_set()
            with pytest.raises(KeyboardInterrupt):
                next(_completed([_NeverDone()], interrupted))
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert sys.unraisablehook is unraisablehook  # and the dropped one was not shown
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.parametrize(("first", "then"), [("serial", "dask"), ("dask", "serial")])
def test_a_run_goes_on_across_engines(tmp_path: Path, first: str, then: str) -> None:
    out = tmp_path / "run"
    engine = {"serial": [], "dask": ["--engine", "dask", "--workers", "2"]}
    one = _cli("run", *CHEAP, "--impl", "numpy-adjoint", "--iters", "0", *engine[first], "--out", str(out))
    assert one.returncode == 0, one.stderr
    two = _cli("run", *CHEAP, "--impl", "numpy-adjoint,rk4-unrolled", "--iters", "0", *engine[then],
               "--resume", str(out))  # fmt: skip
    assert two.returncode == 0, two.stderr
    records = {r["impl"]: r for r in load_records(out)}
    assert len(load_records(out)) == 2
    assert records["numpy-adjoint"]["execution"]["engine"] == first
    assert records["rk4-unrolled"]["execution"]["engine"] == then


def test_a_separately_started_scheduler_and_workers(tmp_path: Path) -> None:
    """`dask scheduler` and `dask worker` processes on localhost, `--scheduler ADDR`: the
    cells run on those workers (not pinned: not this run's cluster)."""
    dask_cli = Path(sys.executable).with_name("dask")
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    scheduler = subprocess.Popen([str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 **quiet)  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([str(dask_cli), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard", "--host", "127.0.0.1"], **quiet)  # fmt: skip
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        result = _cli("run", *CHEAP, "--impl", "numpy-adjoint,rk4-unrolled", "--iters", "0",
                      "--engine", "dask", "--scheduler", address, "--out", str(tmp_path / "run"))  # fmt: skip
        assert result.returncode == 0, result.stderr
        records = load_records(tmp_path / "run")
        assert len(records) == 2
        for rec in records:
            assert rec["status"] == "ok" and rec["execution"]["scheduler"] == address
            assert rec["execution"]["workers"] == 2
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def test_slurm_job_script_is_built_not_submitted() -> None:
    pytest.importorskip("dask_jobqueue")
    result = _cli("run", "--task", "linear", "--engine", "dask", "--cluster", "slurm",
                  "--cluster-option", "queue=gpu", "--cluster-option", "gpus=1",
                  "--cluster-option", "walltime=01:00:00", "--cluster-option", "account=neuralode",
                  "--print-job-script", timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    script = result.stdout
    for expected in ("#SBATCH -p gpu", "#SBATCH -A neuralode", "#SBATCH -t 01:00:00", "#SBATCH --gres=gpu:1",
                     "--nthreads 1", "--resources GPU=1", sys.executable):  # fmt: skip
        assert expected in script, expected


def test_a_study_runs_on_dask(tmp_path: Path) -> None:
    result = _cli("study", "batch-scaling", "--task", "linear", "--impl", "numpy-adjoint", "--batches", "1,2",
                  "--repeats", "1", "--quiet", "--engine", "dask", "--workers", "2",
                  "--out", str(tmp_path / "study"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = load_records(tmp_path / "study")
    assert len(records) == 2 and {r["execution"]["engine"] for r in records} == {"dask"}


def test_resume_times_again_what_was_timed_concurrently(
    engine: DaskEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records timed concurrently (`--timing concurrent`, or a timing pass cut short) are
    re-timed one at a time by a later `--timing serial` run of the same folder; a timing
    job that fails leaves the record as it was, marked, with the reason."""
    cells = _cells("numpy-adjoint,rk4-unrolled", iters=0)
    first = _run(engine, tmp_path, cells, timing="concurrent")
    assert {r["timing"] for r in first.values()} == {"concurrent"}
    monkeypatch.setenv("HARNESS_FAULT", "rk4-unrolled:crash:timing")
    again = _run(engine, tmp_path, cells, timing="serial")
    assert len(load_records(tmp_path / "run")) == 2
    assert again["numpy-adjoint"]["timing"] == "serial"
    assert (
        again["numpy-adjoint"]["timing_concurrent"]["time_median_s"]
        == first["numpy-adjoint"]["time_median_s"]
    )
    assert again["rk4-unrolled"]["timing"] == "concurrent"
    assert "timing: crashed: killed by signal SIGKILL" in again["rk4-unrolled"]["timing_reason"]
    assert again["rk4-unrolled"]["time_median_s"] == first["rk4-unrolled"]["time_median_s"]
