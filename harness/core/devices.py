"""Device and dtype names (``--device cpu|cuda|cuda:N``, ``--dtype float64|float32``): the one
parser every layer and back-end uses, and GPU provenance.

Nothing here imports a framework unless a GPU is asked for, so CPU runs stay light.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from typing import Any

from harness.core.errors import UsageError

__all__ = ["DTYPES", "check_device", "gpu_provenance", "parse_device", "parse_dtype"]

#: floating-point precisions a run can ask for; float64 is the default for accuracy work
DTYPES = ("float64", "float32")

_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def parse_device(device: str) -> tuple[str, int]:
    """``"cuda:1"`` -> ``("cuda", 1)``; an unknown name is a one-line `UsageError`."""
    match = _DEVICE.match(device)
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise UsageError(f"unknown device '{device}'; choose from: cpu, cuda, cuda:N")
    return match.group(1), int(match.group(2) or 0)


def parse_dtype(dtype: str) -> str:
    """`dtype` itself when it is one of `DTYPES`; else a one-line `UsageError`."""
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype '{dtype}'; choose from: {', '.join(DTYPES)}")
    return dtype


def _torch_gpus() -> int:
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _jax_gpus() -> int:
    if importlib.util.find_spec("jax") is None:
        return 0
    import jax

    try:
        return len(jax.devices("gpu"))
    except RuntimeError:
        return 0


def check_device(device: str) -> None:
    """A GPU device must be visible to torch or JAX; else one line, exit status 2.

    A back-end whose own framework cannot see it then fails its cell with its own reason.
    """
    kind, index = parse_device(device)
    if kind == "cpu":
        return
    visible = max(_torch_gpus(), _jax_gpus())
    if index >= visible:
        seen = f"{visible} CUDA device(s)" if visible else "no CUDA device"
        raise UsageError(
            f"no CUDA device '{device}' on this machine (torch and JAX see {seen}); use --device cpu"
        )


def gpu_provenance() -> dict[str, Any]:
    """GPU name, driver, memory (nvidia-smi), CUDA and cuDNN (torch), JAX devices; empty
    where no NVIDIA GPU is present."""
    info: dict[str, Any] = {}
    if shutil.which("nvidia-smi"):
        query = "name,driver_version,memory.total"
        try:
            cmd = ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
            fields = ("name", "driver", "memory")
            info["gpus"] = [
                dict(zip(fields, (p.strip() for p in line.split(",")), strict=False))
                for line in out.strip().splitlines()
            ]
        except (OSError, subprocess.SubprocessError):
            pass
    if not info:
        return info
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            info.update(
                torch_cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                torch_gpu=torch.cuda.get_device_name(0),
                torch_gpu_memory_bytes=torch.cuda.get_device_properties(0).total_memory,
            )
    return info
