"""Measurements of one back-end on one task: gradient error, timing, memory, work.

Timing follows the benchopt contract: parameters are converted before the clock starts,
only `value_and_grad_native` runs inside it, and `block` waits for the device before the
clock is read.  The first call (compilation included) is reported apart from the steady
state, which is the median and interquartile range of `repeats` calls after one warm-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.models import Params, flatten
from harness.core.protocols import AbstractBackend

__all__ = ["Timing", "measure_memory_isolated", "relative_error", "time_value_and_grad"]


def relative_error(grad: Params, reference: Params) -> float:
    """||g - g_ref||_2 / ||g_ref||_2 over all parameters flattened together."""
    ref = flatten(reference)
    return float(np.linalg.norm(flatten(grad) - ref) / np.linalg.norm(ref))


@dataclasses.dataclass(frozen=True)
class Timing:
    first_s: float
    median_s: float
    iqr_s: float
    repeats: int
    samples_s: tuple[float, ...]


def time_value_and_grad(impl: AbstractBackend, params: Params, *, repeats: int) -> tuple[Timing, Any]:
    """First-call and steady-state time of one value-and-grad call; also returns its output."""
    native = impl.load(params)
    start = time.perf_counter()
    out = impl.block(impl.value_and_grad_native(native))
    first = time.perf_counter() - start
    impl.block(impl.value_and_grad_native(native))  # warm-up
    samples = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        impl.block(impl.value_and_grad_native(native))
        samples.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    timing = Timing(first, float(median), float(q3 - q1), len(samples), tuple(samples))
    return timing, out


# -- memory, in a process of its own ---------------------------------------------------


def _rss_bytes(field: str) -> int:
    """`VmRSS` or `VmHWM` (peak) of this process, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the peak RSS counter (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def probe_memory(impl: AbstractBackend, params: Params) -> dict[str, Any]:
    """Peak RSS over a baseline for the first call (compilation included) and for a
    steady-state call, plus the back-end's framework-level figure.  Meant to run in a
    fresh process (`measure_memory_isolated`), after imports and data."""
    native = impl.load(params)
    out: dict[str, Any] = {"rss_method": "VmHWM - VmRSS before the call (clear_refs reset)"}
    if not _reset_peak():
        out["rss_method"] = "ru_maxrss growth (peak could not be reset)"
    if all(os.environ.get(k) == v for k, v in MALLOC_SETTINGS.items()):
        out["rss_method"] += f"; {MALLOC_NOTE}"
    base = _rss_bytes("VmRSS")
    impl.block(impl.value_and_grad_native(native))
    out["peak_rss_first_call_bytes"] = max(_rss_bytes("VmHWM") - base, 0)
    _reset_peak()
    base = _rss_bytes("VmRSS")
    impl.block(impl.value_and_grad_native(native))
    out["peak_rss_bytes"] = max(_rss_bytes("VmHWM") - base, 0)
    impl.reset_device_peak()
    impl.block(impl.value_and_grad_native(native))
    out["peak_device_bytes"] = impl.device_peak_bytes()
    out["peak_framework_bytes"] = impl.framework_peak_bytes(params)
    out["peak_framework_method"] = impl.framework_memory
    return out


#: glibc malloc in the probe process: blocks of 64 KiB and more are mapped and unmapped
#: one by one, and freed memory is trimmed at once.  glibc's default moves the mmap
#: threshold up to the largest block freed so far, so after the first call the arrays of
#: a steady-state call come from memory the process already holds and its peak RSS shows
#: nothing (0.4 MB over the baseline for rk4-unrolled storing 173 MB); with these settings
#: the steady-state peak RSS follows the live memory (167 MB there).  Other allocators
#: ignore the variables.
MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_TOP_PAD_": "0"}
#: `rss_method` of a probe run with `MALLOC_SETTINGS`
MALLOC_NOTE = "glibc malloc: mmap threshold 64 KiB, no trim threshold or top pad"


def measure_memory_isolated(cell: Mapping[str, Any], *, timeout: float = 600.0) -> dict[str, Any]:
    """Run `python -m harness.execution.memprobe` on one cell in a fresh process, glibc
    malloc set up by `MALLOC_SETTINGS`; its JSON result.

    Raises RuntimeError with a one-line reason when the child fails or times out.
    """
    cmd = [sys.executable, "-m", "harness.execution.memprobe", json.dumps(dict(cell))]
    env = {**os.environ, **MALLOC_SETTINGS}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"memory probe timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory probe failed (exit {proc.returncode}): {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
