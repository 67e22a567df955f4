"""Thread settings (before frameworks load) and provenance (what every record carries)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.core.devices import gpu_provenance

__all__ = [
    "THREAD_VARIABLES",
    "configure_threads",
    "cpu_affinity",
    "framework_threads",
    "job_environment",
    "provenance",
]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "array-api-compat",
    "torch",
    "torchdiffeq",
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optax",
    "torchode",
)


def configure_threads(n: int) -> None:
    """Pin BLAS/OpenMP/XLA thread pools to `n`; must run before NumPy, torch or JAX load.

    Two threads gave no gain on these small problems (SPEC measurement notes), so the
    command line defaults to one.
    """
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    flags = [
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if "multi_thread_eigen" not in f and "intra_op_parallelism_threads" not in f
    ]
    if n == 1:
        flags += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    os.environ["XLA_FLAGS"] = " ".join(flags)
    os.environ["HARNESS_THREADS"] = str(n)


def framework_threads(framework: str) -> None:
    """Set the thread count inside a framework that has its own pool (torch)."""
    n = int(os.environ.get("HARNESS_THREADS", "1"))
    if framework == "torch":
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _torch_info() -> dict[str, Any]:
    if "torch" not in sys.modules:
        return {}
    import torch

    return {"torch_threads": torch.get_num_threads()}


def provenance() -> dict[str, Any]:
    """Versions, hardware, thread settings, git commit and date of this process."""
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": {var: os.environ.get(var) for var in (*THREAD_VARIABLES, "XLA_FLAGS")},
        "versions": {p: v for p in PACKAGES if (v := _version(p))},
        **_torch_info(),
        "gpu": gpu_provenance(),
    }


def job_environment() -> dict[str, str]:
    """The variables a cell's worker process must see, from this (the parent) process:
    thread settings, the allocator's (`MALLOC_*`) and the harness's own (`HARNESS_*`:
    threads, plugins, test faults)."""
    keep = (*THREAD_VARIABLES, "XLA_FLAGS")
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith(("HARNESS_", "MALLOC_"))}


def cpu_affinity() -> list[int] | None:
    """The CPUs this thread may run on (Linux), else None."""
    getter = getattr(os, "sched_getaffinity", None)
    return sorted(getter(0)) if getter else None
