"""Training control: stop at the target loss, stop at the budget, continuum learning.

The back-ends' loops must honour a callback that asks them to stop; each is checked on
`linear_adjoint` (a few milliseconds a step) with a target every step reaches.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.core import registry
from harness.execution.build import build_cell
from harness.numerics.training import TrainingMonitor, curriculum_fit, curriculum_stages, head

registry.discover()


def _cell(task: str, impl: str) -> dict:
    return {
        "task": task,
        "impl": impl,
        "task_options": {},
        "solver": {},
        "impl_options": {},
        "train": {},
        "device": "cpu",
        "dtype": "float64",
        "seed": 0,
    }


def test_monitor_stops_at_the_target_and_records_when() -> None:
    monitor = TrainingMonitor(target=1.0)
    assert not monitor(0, 3.0)
    assert monitor(1, 0.5)
    summary = monitor.summary()
    assert summary["train_stopped"] == "target"
    assert summary["train_iters_to_target"] == 2
    assert summary["train_time_to_target_s"] == monitor.times[1]
    assert summary["train_iters_run"] == 2


def test_monitor_goes_on_past_the_target_when_asked() -> None:
    monitor = TrainingMonitor(target=1.0, stop_at_target=False)
    assert not monitor(0, 0.5)
    assert not monitor(1, 0.2)
    assert monitor.iters_to_target == 1
    assert monitor.stopped == "iters"


def test_monitor_stops_at_the_budget() -> None:
    monitor = TrainingMonitor(budget_s=0.01)
    assert not monitor(0, 1.0)
    time.sleep(0.02)
    assert monitor(1, 1.0)
    assert monitor.summary()["train_stopped"] == "budget"
    assert monitor.summary()["train_budget_s"] == 0.01


def test_monitor_ignores_non_finite_losses_and_no_target() -> None:
    monitor = TrainingMonitor(target=0.0)
    assert not monitor(0, 0.0)
    assert TrainingMonitor(target=1.0)(0, float("nan")) is False


@pytest.mark.parametrize("impl_name", sorted(registry.BACKENDS))
def test_every_backend_stops_when_the_callback_says_so(impl_name: str) -> None:
    cls = registry.get_backend(impl_name)
    if not cls.available():
        pytest.skip(f"{impl_name} unavailable: {cls.install}")
    task = registry.get_task("linear_adjoint")()
    if cls.skip(task, "cpu"):
        pytest.skip(cls.skip(task, "cpu"))
    impl, params = build_cell(_cell("linear_adjoint", impl_name))  # type: ignore[arg-type]
    monitor = TrainingMonitor(target=1e6)  # the first step's loss is below it
    result = task.fit(impl, params, iters=50, lr=0.05, callback=monitor)
    assert len(result.loss_history) == 1
    assert monitor.stopped == "target"


def test_curriculum_stages() -> None:
    """004: "first 5 time points, then 10, then 15"; the full window last."""
    assert curriculum_stages(21, 5) == [5, 10, 15, 20, 21]
    assert curriculum_stages(20, 5) == [5, 10, 15, 20]
    assert curriculum_stages(21, 0) == [21]
    assert curriculum_stages(7, 1) == [2, 3, 4, 5, 6, 7]


def test_curriculum_fit_trains_on_growing_windows() -> None:
    task = registry.get_task("linear_adjoint")()
    impl, params = build_cell(_cell("linear_adjoint", "numpy-adjoint"))  # type: ignore[arg-type]
    first = head(impl.data, 4)
    assert first.n_obs == 4 and np.array_equal(first.t, impl.data.t[:4])
    monitor = TrainingMonitor(target=1e6)  # would stop at once on the full window
    result = task.fit(impl, params, iters=30, lr=0.05, callback=monitor, curriculum=4)
    assert result.info["curriculum_stages"] == [4, 8, 11]
    # 10 + 10 steps on the shorter windows (the target is not tested there), then one
    assert len(result.loss_history) == 21
    assert monitor.iters_to_target == 21 and monitor.armed


def test_curriculum_stops_at_the_budget_in_an_early_stage() -> None:
    task = registry.get_task("linear_adjoint")()
    impl, params = build_cell(_cell("linear_adjoint", "numpy-adjoint"))  # type: ignore[arg-type]
    monitor = TrainingMonitor(budget_s=1e-9)
    result = curriculum_fit(task, impl, params, iters=30, lr=0.05, step=4, callback=monitor)
    assert len(result.loss_history) == 1
    assert monitor.stopped == "budget"


def test_every_safety_net_stops_training_before_the_cell_timeout() -> None:
    """A task's wall-clock safety net (`budget`) leaves its cell time to finish under the
    engines' default timeout, so that a slow machine ends training as NOT CONVERGED with its
    figures, not as a killed cell (odenet_mnist's 2400 s budget once lost a record at 1800 s)."""
    import inspect

    from harness.execution.dask_engine import DaskEngine
    from harness.execution.subprocess_engine import SubprocessEngine

    timeout = min(
        inspect.signature(engine.__init__).parameters["timeout"].default
        for engine in (DaskEngine, SubprocessEngine)
    )
    registry.discover()
    for name, task in registry.TASKS.items():
        budget = task.protocol.settings()["budget"]
        assert budget <= timeout - 300, (name, budget, timeout)
