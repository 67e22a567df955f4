"""The clusters the Dask engine runs on: a `LocalCluster` on this machine, a scheduler
already running somewhere (by address), or SLURM through dask-jobqueue.

Each cell still runs in a worker process of its own, started by a Dask worker, so a Dask
worker needs one thread (one cell at a time) and little memory of its own: the cells'
memory is bounded by `--memory-limit`, not by Dask's memory manager.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from typing import Any

from harness.core.errors import UsageError, one_line
from harness.core.ranges import integer

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


#: SLURM's time formats (sbatch --time): MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_WALLTIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")
#: a SLURM partition or account name: letters, digits, and `_ . -` (comma-separated list)
_NAME = re.compile(r"[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*")


def _check_value(key: str, value: str) -> str:
    """One `--cluster-option` value against its range; a one-line `UsageError` naming the
    key, the value and what is valid.  Nothing that can end a line reaches the job script."""
    if any(not (c.isprintable() or c == " ") for c in value):
        raise UsageError(
            f"bad --cluster-option {key}={value!r}: control characters (a newline) are not allowed"
        )
    if key in ("cores", "gpus"):
        valid = integer(1, 4096) if key == "cores" else integer(0, 64)
        return str(valid.parse(f"--cluster-option {key}", value))
    if key == "memory":
        from dask.utils import parse_bytes

        try:
            size = parse_bytes(value)
        except (ValueError, TypeError, OverflowError):  # 1e400GB overflows
            size = -1
        if size <= 0:
            raise UsageError(f"bad --cluster-option memory={value}: must be a size such as 8GB or 512MiB")
        return value
    if key == "walltime" and not _WALLTIME.fullmatch(value):
        raise UsageError(
            f"bad --cluster-option walltime={value}: must be SLURM time, MM, HH:MM:SS or D-HH:MM:SS"
        )
    if key in ("queue", "account") and not _NAME.fullmatch(value):
        raise UsageError(f"bad --cluster-option {key}={value}: must be a SLURM name (letters, digits, _ . -)")
    return value


def parse_cluster_options(pairs: Iterable[str]) -> dict[str, str]:
    """`--cluster-option KEY=VALUE` pairs, each checked against its range (`_check_value`);
    an unknown key is one line naming the valid ones."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise UsageError(f"bad --cluster-option {pair!r}: expected KEY=VALUE")
        if key not in SLURM_OPTIONS:
            raise UsageError(f"unknown --cluster-option {key!r}; valid keys: {', '.join(SLURM_OPTIONS)}")
        options[key] = _check_value(key, value.strip())
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


def slurm_cluster(options: dict[str, str], *, submit: bool = True) -> Any:
    """A `dask_jobqueue.SLURMCluster` whose jobs each run one Dask worker of one thread:
    `options` from `--cluster-option` (`SLURM_OPTIONS`), the rest from dask-jobqueue's own
    configuration (``~/.config/dask/jobqueue.yaml``, ``DASK_JOBQUEUE__SLURM__*``).  Its
    `job_script()` is what `--print-job-script` shows (`submit=False`); nothing is submitted
    until it scales.  With `submit`, `sbatch` must be on PATH (checked here: dask-jobqueue
    would print tornado tracebacks and blame the scheduler); an error dask-jobqueue raises
    is one line."""
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
    if submit and shutil.which("sbatch") is None:
        raise UsageError(
            "--cluster slurm needs SLURM's sbatch on PATH (run it on a SLURM login node; "
            "--print-job-script shows the job script without it)"
        )
    try:
        return SLURMCluster(**kwargs)
    except Exception as exc:  # dask-jobqueue's own checks, its configuration file
        raise UsageError(f"cannot set up --cluster slurm: {one_line(exc)}") from None
