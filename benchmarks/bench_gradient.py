"""Value-and-grad of every back-end on every task: steady-state time, process peak memory
and the first call (compilation included).

The timed region is the harness's own (`harness.execution.measurement`): parameters are converted
before the clock starts, `value_and_grad_native` runs inside it and `block` waits for the
device.  Parameters: every registered task × every registered back-end.
"""

from __future__ import annotations

from typing import Any

from benchmarks import common

with common.safe_import():  # as a module: asv would take a `time_*` function for a benchmark
    from harness.execution import measurement


class ValueAndGrad(common.RegistryBenchmark):
    """Steady state: the first call (compilation, caches) happens in `setup`, untimed."""

    def setup(self, task: str, impl: str) -> None:
        self.impl, params = common.build(task, impl)
        self.native: Any = self.impl.load(params)
        self.impl.block(self.impl.value_and_grad_native(self.native))

    def time_value_and_grad(self, task: str, impl: str) -> None:
        """Seconds per steady-state value-and-grad call (`python -m harness run`'s
        `time_median_s` measures the same call)."""
        self.impl.block(self.impl.value_and_grad_native(self.native))

    def peakmem_value_and_grad(self, task: str, impl: str) -> None:
        """Peak RSS of the whole benchmark process (interpreter, imports, data, JAX
        compilation in `setup`, then one call): an upper bound.  The precise figure is the
        harness's isolated-process probe (`peak_rss_bytes`: growth over a baseline taken
        after imports and data) and its framework-level `peak_framework_bytes`."""
        self.impl.block(self.impl.value_and_grad_native(self.native))


class FirstCall:
    """The first value-and-grad call of a freshly set-up back-end, compilation included
    (asv runs every parameter combination in a process of its own)."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 300.0

    def setup(self, task: str, impl: str) -> None:
        self.impl, self.params = common.build(task, impl)

    def track_first_call_time(self, task: str, impl: str) -> float:
        """`time_first_s` of the harness: seconds of the first call after `setup`."""
        timing, _ = measurement.time_value_and_grad(self.impl, self.params, repeats=1)
        return timing.first_s

    track_first_call_time.unit = "seconds"  # type: ignore[attr-defined]
