"""The worker's test aid: faults injected at a stage of a cell's measurement, so that the
tests can check what the engines record when a back-end crashes, hangs, exhausts memory
or turns NaN.  The worker (`harness.execution.worker`) passes `stage_hook(cell)` to the
measurement as its `on_stage`; the measurement itself knows nothing of faults.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Mapping

import numpy as np

from harness.core.errors import UsageError, error_line
from harness.execution.measure import StageHook
from harness.planning.cell import Cell

__all__ = ["FAULT_VARIABLE", "check_fault_variable", "inject_fault", "stage_hook"]

#: test aid: ``HARNESS_FAULT="IMPL:MODE[:STAGE]"`` makes that back-end's worker, at STAGE:
#: crash (killed by SIGKILL), segfault (SIGSEGV), exit (status 3), hang, hang-child (hang
#: with a grandchild process that hangs too), memory (allocate until stopped), sleep (5 s,
#: then go on), or go on with NaN parameters from STAGE on (nan).  Default stage: train,
#: value_and_grad for nan.  Stages: reference, setup, value_and_grad, discrete (back-ends
#: with a `discrete_twin`), nfe, memory, train, metrics, trajectories; timing (`measure_timing`).
FAULT_VARIABLE = "HARNESS_FAULT"
_MODES = ("crash", "segfault", "exit", "hang", "hang-child", "memory", "sleep", "nan")
_DEFAULT_STAGE = {mode: "value_and_grad" if mode == "nan" else "train" for mode in _MODES}
#: the stages a fault may name
_STAGES = (
    "reference", "setup", "value_and_grad", "discrete", "nfe", "memory", "train", "metrics", "trajectories",
    "trained", "timing",
)  # fmt: skip


def check_fault_variable(backends: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """`HARNESS_FAULT`, when set, against its form: a known back-end, mode and stage; a
    typo is a one-line `UsageError` naming the part and its valid values (it used to run
    with no fault and no word)."""
    value = (os.environ if environ is None else environ).get(FAULT_VARIABLE)
    if value is None:
        return
    form = f"{FAULT_VARIABLE}={error_line(value)!r}"
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f"bad {form}: expected IMPL:MODE[:STAGE], e.g. rk4-unrolled:hang:train")
    impl, mode, *at = parts
    names = sorted(backends)
    if impl not in names:
        raise UsageError(f"bad {form}: unknown back-end '{impl}'; choose from: {', '.join(names)}")
    if mode not in _MODES:
        raise UsageError(f"bad {form}: unknown mode '{mode}'; choose from: {', '.join(_MODES)}")
    if at and at[0] not in _STAGES:
        raise UsageError(f"bad {form}: unknown stage '{at[0]}'; choose from: {', '.join(_STAGES)}")


def _fault_at(cell: Cell, stage: str) -> str | None:
    """The fault mode `HARNESS_FAULT` asks of this cell's back-end at `stage`, or None."""
    impl, _, rest = os.environ.get(FAULT_VARIABLE, "").partition(":")
    mode, _, at = rest.partition(":")
    if impl != cell["impl"] or mode not in _DEFAULT_STAGE or stage != (at or _DEFAULT_STAGE[mode]):
        return None
    return mode


def inject_fault(cell: Cell, stage: str) -> bool:
    """Crash, exit, hang or allocate here when asked; True when the parameters must turn
    NaN here."""
    mode = _fault_at(cell, stage)
    if mode in ("crash", "segfault"):
        os.kill(os.getpid(), signal.SIGKILL if mode == "crash" else signal.SIGSEGV)
    if mode == "exit":
        os._exit(3)
    if mode == "hang-child":
        import subprocess
        import sys

        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1e6)"])
    if mode in ("hang", "hang-child"):
        time.sleep(1e6)
    if mode == "memory":
        hoard = []
        while True:  # 64 MiB at a time, touched, until the engine's memory limit stops it
            hoard.append(np.ones(8 * 2**20))
            time.sleep(0.05)
    if mode == "sleep":
        time.sleep(5.0)
    return mode == "nan"


def stage_hook(cell: Cell) -> StageHook:
    """The measurement's `on_stage` for `cell`: `inject_fault` at each stage."""
    return lambda stage: inject_fault(cell, stage)
