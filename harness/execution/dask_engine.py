"""The Dask engine: the matrix's cells on a Dask cluster (a `LocalCluster`, a remote
scheduler by address, or SLURM through dask-jobqueue), each cell still in a worker process
of its own with the harness's own timeout and memory limit (`run_job`), so that isolation,
memory figures and timeouts mean what they mean serially.

Facts designed around: Dask cannot stop a running task and has no per-task timeout (the
cell's process is killed by `run_job`, or by `_kill_cells` through `Client.run` on
Ctrl-C); a Dask worker that dies mid-cell makes the scheduler retry the cell elsewhere, up
to `distributed.scheduler.allowed-failures`, then `KilledWorker`, which becomes a `failed`
record; `submit` is `pure=True` by default, so every cell gets a key of its own; a task no
worker can satisfy waits forever, so GPU cells are refused up front where no worker offers
a `GPU` resource (and a local cluster sets `no-workers-timeout`).  Records and trajectories
come back through Dask to the parent, the only writer: no shared filesystem is assumed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from harness.core.errors import UsageError, one_line
from harness.execution.engine import Engine, Job, Outcome
from harness.execution.environment import cpu_affinity, job_environment
from harness.execution.scheduler_address import check_address, new_client, probe_scheduler
from harness.execution.subprocess_engine import kill_group, run_job
from harness.planning.cell import cell_id
from harness.store.schema import Record

__all__ = ["DaskEngine"]

#: worker-side: cell processes running in this Dask worker, by the run's token
_RUNNING: dict[str, set[int]] = {}


def _kill_cells(token: str) -> int:
    """Worker-side (through `Client.run`): SIGKILL the process groups of this run's cells."""
    pids = _RUNNING.pop(token, set())
    for pid in pids:
        kill_group(pid)
    return len(pids)


def _measure_on_worker(job: Job, token: str, how: dict[str, Any], cores: list[int] | None, timeout: float,
                       memory_limit: float | None) -> Outcome:  # fmt: skip
    """The Dask task of one cell: pin this thread (and so the cell's processes) to the
    worker's own core on a local cluster, then `run_job`."""
    from distributed import get_worker

    worker = get_worker()
    if cores and hasattr(os, "sched_setaffinity"):
        index = int(worker.name) if str(worker.name).isdigit() else 0
        try:
            os.sched_setaffinity(0, {cores[index % len(cores)]})
        except OSError:
            pass  # the OS refused: the record's cpu_affinity says what it was
    running = _RUNNING.setdefault(token, set())
    pids: list[int] = []

    def started(pid: int) -> None:
        pids.append(pid)
        running.add(pid)

    try:
        return run_job(
            job,
            timeout=timeout,
            memory_limit=memory_limit,
            execution={**how, "worker": worker.address, "worker_name": str(worker.name)},
            on_start=started,
            unset=nanny_environment(),
        )
    finally:
        running.difference_update(pids)


def nanny_environment() -> set[str]:
    """The variables a Dask Nanny sets in its worker's environment (`distributed.nanny.
    pre-spawn-environ` and `environ`).  A cell must not inherit them: they are Dask's
    choices for its own workers, not the run's (`MALLOC_TRIM_THRESHOLD_=65536` made the
    large-batch cells 2.5-3 times slower here, e.g. odenet_digits torch-adjoint 0.52 s ->
    1.5 s per gradient); the run's own thread settings come with the job."""
    import dask.config
    import distributed  # noqa: F401 (loads distributed's configuration defaults)

    names = {"PYTHONHASHSEED"}  # the Nanny sets it too, outside its configuration
    for key in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ"):
        names |= set(dask.config.get(key, default={}) or {})
    return names


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Start the local cluster's processes with SIGINT ignored (inherited through exec), so
    that Ctrl-C at a terminal (SIGINT to the whole process group) reaches this process
    alone: it stops the run and closes the cluster, and no worker prints a traceback."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def _interrupts_noted() -> Iterator[threading.Event]:
    """While the engine waits for cells, SIGINT is noted as well as raised: Python drops a
    `KeyboardInterrupt` raised inside a gc callback (distributed installs one, `distributed.
    gc.GCDiagnosis`; it printed "Exception ignored in ... KeyboardInterrupt" and the run
    waited on for its hung cell), so `_completed` raises it again from the noted flag, and
    the dropped one is not printed."""
    noted = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield noted  # SIGINT ignored or left to the OS: nothing to note
        return

    def note(signum: int, frame: Any) -> None:
        noted.set()
        previous(signum, frame)  # the default handler raises KeyboardInterrupt

    def unraisable(info: Any) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):
            shown(info)

    shown = sys.unraisablehook
    signal.signal(signal.SIGINT, note)
    sys.unraisablehook = unraisable
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = shown


def _completed(futures: Sequence[Any], interrupted: threading.Event, poll: float = 0.05) -> Iterator[Any]:
    """`futures` as they finish; `KeyboardInterrupt` as soon as `interrupted` is set."""
    pending = list(futures)
    while pending:
        if interrupted.is_set():
            raise KeyboardInterrupt
        done = [f for f in pending if f.done()]
        if not done:
            time.sleep(poll)
        for future in done:
            pending.remove(future)
            yield future


class DaskEngine(Engine):
    """Cells on a Dask cluster, `workers` at a time.

    **Arguments:**

    - `workers`: Dask workers to start (local cluster, SLURM jobs); ignored with `scheduler`.
    - `scheduler`: address of a running scheduler (``tcp://HOST:PORT``); None starts a
      cluster of `cluster` kind.
    - `cluster`: ``"local"`` (default) or ``"slurm"`` (`harness.execution.clusters`).
    - `cluster_options`: the SLURM job's settings (`--cluster-option`).
    - `timeout`, `memory_limit`: per cell, as the serial engine.
    - `connect_timeout`: seconds to reach the scheduler and see a worker.
    """

    name = "dask"

    def __init__(
        self,
        *,
        workers: int = 2,
        scheduler: str | None = None,
        cluster: str = "local",
        cluster_options: dict[str, str] | None = None,
        timeout: float = 1800.0,
        memory_limit: float | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self.cluster_kind = cluster
        self.cluster_options = cluster_options or {}
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.connect_timeout = connect_timeout
        self.token = secrets.token_hex(4)
        self._cluster: Any = None
        self._client: Any = None
        self._environment: dict[str, str] | None = None
        self._before: dict[str, str | None] = {}

    # --- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> DaskEngine:
        import dask.config

        # the run's environment, before a local cluster's Nannies write theirs into this
        # process's os.environ (they do, at every worker start: MALLOC_TRIM_THRESHOLD_ ...)
        self._environment = job_environment()
        self._before = {k: os.environ.get(k) for k in nanny_environment()}
        try:
            if self.scheduler is not None:
                address = check_address(self.scheduler)
                probe_scheduler(address, self.connect_timeout)  # bounded: nothing else is
                self._client = new_client(address, timeout=self.connect_timeout)
            else:
                with dask.config.set({"distributed.scheduler.no-workers-timeout": "60s"}), _sigint_ignored():
                    self._cluster = self._make_cluster()
                self._client = new_client(self._cluster, timeout=self.connect_timeout)
            self._client.wait_for_workers(1, timeout=self.connect_timeout)
            self._restore_environment()
        except UsageError:
            self.__exit__(None, None, None)
            raise
        except Exception as exc:  # unreachable address, bad address, no worker
            self.__exit__(None, None, None)
            where = f"the Dask scheduler at {self.scheduler}" if self.scheduler else "a Dask cluster"
            raise UsageError(f"cannot run on {where}: {one_line(exc)}") from None
        return self

    def _make_cluster(self) -> Any:
        from harness.core.devices import gpu_provenance
        from harness.execution.clusters import local_cluster, slurm_cluster

        if self.cluster_kind == "slurm":
            cluster = slurm_cluster(self.cluster_options)
            cluster.scale(jobs=self.workers)
            return cluster
        return local_cluster(self.workers, gpus=len(gpu_provenance() or []))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            try:
                client.close(timeout=self.connect_timeout)
            except Exception:  # a scheduler already gone: nothing left to close
                pass
        if cluster is not None:
            try:
                cluster.close()
            except Exception:  # a cluster already gone: nothing left to close
                pass
        self._restore_environment()

    def _restore_environment(self) -> None:
        """Undo what the local cluster's Nannies wrote into this process's os.environ (they
        write at every worker (re)start)."""
        for key, value in self._before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def environment(self) -> dict[str, str]:
        """The run's variables as they are now, except those a Nanny may have written into
        this process, which are as they were before the cluster started."""
        now = job_environment()
        if self._environment is None:
            return now
        nanny = nanny_environment()
        kept = {k: v for k, v in now.items() if k not in nanny}
        return {**kept, **{k: v for k, v in self._environment.items() if k in nanny}}

    # --- what the records say ----------------------------------------------------
    def _worker_info(self) -> dict[str, Any]:
        return self._client.scheduler_info(n_workers=-1)["workers"] if self._client else {}

    @staticmethod
    def _slots(workers: Mapping[str, Any]) -> int:
        return sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1

    @property
    def concurrency(self) -> int:
        return self._slots(self._worker_info())

    def describe(self) -> dict[str, Any]:
        workers = self._worker_info()
        return {
            "engine": self.name,
            "scheduler": self.scheduler or self.cluster_kind,
            "workers": len(workers),
            "concurrency": self._slots(workers),
            "cell_timeout_s": self.timeout,
            "cell_memory_limit_bytes": self.memory_limit,
        }

    def check(self, jobs: Sequence[Job]) -> None:
        gpu_jobs = [j for j in jobs if j.cell["device"] != "cpu"]
        if not gpu_jobs:
            return
        offered = sum(float(w.get("resources", {}).get("GPU", 0)) for w in self._worker_info().values())
        if offered <= 0:
            raise UsageError(
                f"{len(gpu_jobs)} cells need a GPU ({gpu_jobs[0].cell['device']}) and no Dask worker offers "
                "one: start workers with --resources GPU=1 (or run on cpu)"
            )

    # --- running -------------------------------------------------------------------
    def run(self, jobs: Sequence[Job], *, one_at_a_time: bool = False) -> Iterator[Outcome]:
        if self._client is None:
            raise RuntimeError("DaskEngine.run outside its `with` block")
        workers = self._worker_info()
        concurrency = 1 if one_at_a_time else min(self._slots(workers), len(jobs))
        how = {
            "engine": self.name,
            "scheduler": self.scheduler or self.cluster_kind,
            "workers": len(workers),
            "concurrency": concurrency,
        }
        # on a local cluster, worker i's cells run on the i-th core this process may use
        cores = cpu_affinity() if self.scheduler is None and self.cluster_kind == "local" else None
        futures: dict[Any, Job] = {}
        try:
            with _interrupts_noted() as interrupted:
                if one_at_a_time:
                    for job in jobs:
                        future = self._submit(job, how, cores)
                        futures[future] = job
                        for _ in _completed([future], interrupted):
                            yield self._outcome(future, futures.pop(future))
                else:
                    futures = {self._submit(job, how, cores): job for job in jobs}
                    for future in _completed(list(futures), interrupted):
                        yield self._outcome(future, futures.pop(future))
        finally:
            if futures:  # interrupted (Ctrl-C) or abandoned: nothing may go on running
                self._client.cancel(list(futures), force=True)
                try:
                    self._client.run(_kill_cells, self.token)
                except Exception:  # workers already gone: their cells died with them
                    pass

    def _submit(self, job: Job, how: dict[str, Any], cores: list[int] | None) -> Any:
        # a key of its own per cell and run (pure=False): identical cells never collapse
        key = f"harness-{job.stages}-{cell_id(job.cell)}-{self.token}-{secrets.token_hex(2)}"
        return self._client.submit(
            _measure_on_worker, job, self.token, how, cores, self.timeout, self.memory_limit,
            key=key, pure=False, resources={"GPU": 1} if job.cell["device"] != "cpu" else None,
        )  # fmt: skip

    def _outcome(self, future: Any, job: Job) -> Outcome:
        """The cell's outcome, or a `failed` record when Dask itself could not run it."""
        try:
            return future.result()
        except Exception as exc:
            from distributed import KilledWorker

            if isinstance(exc, KilledWorker):
                why = "the Dask workers running it died (KilledWorker: retried up to allowed-failures)"
            else:
                why = f"Dask could not run it: {one_line(exc)}"
            record: Record = {**job.record, "status": "failed", "reason": f"{job.stages}: {why}"}
            return Outcome(job=job, record=record)
