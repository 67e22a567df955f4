"""The clusters the Dask engine runs on: a `LocalCluster` on this machine, a scheduler
already running somewhere (by address), or SLURM through dask-jobqueue.

Each cell still runs in a worker process of its own, started by a Dask worker, so a Dask
worker needs one thread (one cell at a time) and little memory of its own: the cells'
memory is bounded by `--memory-limit`, not by Dask's memory manager.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.core.errors import UsageError

__all__ = ["CLUSTERS", "local_cluster", "parse_cluster_options", "slurm_cluster"]

#: the values of `--cluster`
CLUSTERS = ("local", "slurm")

#: `--cluster-option` keys for SLURM and what they become in `dask_jobqueue.SLURMCluster`
SLURM_OPTIONS = {
    "queue": "partition (sbatch -p)",
    "account": "account to charge (sbatch -A)",
    "walltime": "time limit of each worker job, HH:MM:SS",
    "memory": "memory of each worker job, e.g. 8GB",
    "cores": "CPU cores of each worker job (one cell at a time uses one; default 1)",
    "gpus": "GPUs of each worker job: --gres=gpu:N and the worker resource GPU=N",
    "python": "the Python on the compute nodes (default: this one)",
    "local_directory": "scratch folder on the compute nodes",
    "job_script_prologue": "a shell line run before the worker starts (repeatable: ';'-separated)",
}


def parse_cluster_options(pairs: Iterable[str]) -> dict[str, str]:
    """`--cluster-option KEY=VALUE` pairs; an unknown key is one line naming the valid ones."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise UsageError(f"bad --cluster-option {pair!r}: expected KEY=VALUE")
        if key not in SLURM_OPTIONS:
            raise UsageError(f"unknown --cluster-option {key!r}; valid keys: {', '.join(SLURM_OPTIONS)}")
        options[key] = value.strip()
    return options


def local_cluster(workers: int, *, gpus: int = 0) -> Any:
    """`LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)` on the
    loopback interface (dashboard on a free port); every worker offers `GPU=1` when this machine has a GPU
    (`gpus`), so that GPU cells go to them and a GPU cell never waits forever without one."""
    from distributed import LocalCluster

    options: dict[str, Any] = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        # the scheduler serves HTTP whatever is asked: a free port on loopback, never 8787
        "dashboard_address": "127.0.0.1:0",
        "host": "127.0.0.1",
        "memory_limit": 0,  # the cells' memory is `--memory-limit`'s business (subprocesses)
        "resources": {"GPU": 1} if gpus else None,
        "silence_logs": 40,  # logging.ERROR: the progress bar, not the cluster's chatter
    }
    return LocalCluster(**options)


def slurm_cluster(options: dict[str, str]) -> Any:
    """A `dask_jobqueue.SLURMCluster` whose jobs each run one Dask worker of one thread:
    `options` from `--cluster-option` (`SLURM_OPTIONS`), the rest from dask-jobqueue's own
    configuration (``~/.config/dask/jobqueue.yaml``, ``DASK_JOBQUEUE__SLURM__*``).  Its
    `job_script()` is what `--print-job-script` shows; nothing is submitted until it scales."""
    try:
        from dask_jobqueue.slurm import SLURMCluster
    except ImportError:
        raise UsageError(
            "--cluster slurm needs dask-jobqueue: pip install -c constraints.txt -e '.[hpc]'"
        ) from None
    gpus = int(options.get("gpus", "0"))
    kwargs: dict[str, Any] = {
        "cores": int(options.get("cores", "1")),
        "processes": 1,
        "memory": options.get("memory", "4GB"),
        "worker_extra_args": ["--nthreads", "1"] + (["--resources", f"GPU={gpus}"] if gpus else []),
        "job_extra_directives": [f"--gres=gpu:{gpus}"] if gpus else [],
        "scheduler_options": {"dashboard_address": None},
    }
    for key in ("queue", "account", "walltime", "python", "local_directory"):
        if key in options:
            kwargs[key] = options[key]
    if "job_script_prologue" in options:
        kwargs["job_script_prologue"] = [s.strip() for s in options["job_script_prologue"].split(";")]
    return SLURMCluster(**kwargs)
