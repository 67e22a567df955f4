"""Training control shared by every back-end: time to target, a wall-clock safety net,
continuum learning.

The driver (`harness.numerics.driver`) calls `callback(i, loss)` after every gradient
evaluation and stops when it returns True.  `TrainingMonitor` is that callback: it records
the wall-clock time of every evaluation, notes the first one whose loss reaches the task's
target, and asks to stop there (unless told to go on: a polish phase follows) or when the
wall-clock safety net is spent.  Budgets are counts of evaluations (the phases' own); the
safety net only guards against a run that would never end.  Its clock starts when it is
built, just before `fit` is called, so time to target includes what a user waits for.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.core.protocols import AbstractBackend, AbstractTask, Dataset, TrainCallback, TrainResult
from harness.numerics import driver

__all__ = [
    "TrainingMonitor",
    "curriculum_fit",
    "curriculum_stages",
    "fit",
    "head",
    "offset_callback",
    "train_cell",
]


@dataclasses.dataclass
class TrainingMonitor:
    """Callback that records time to target and stops training at the target or the budget.

    **Arguments:**

    - `target`: the loss at or below which the task's claims are expected to hold
      (0 or less: no target).
    - `budget_s`: wall-clock seconds after which training stops (0 or less: none), a
      safety net: the phases' budgets count gradient evaluations.
    - `stop_at_target`: stop at the first step that reaches the target.
    - `on_step`: a further callback (progress bars), called with the same arguments.
    """

    target: float = 0.0
    budget_s: float = 0.0
    stop_at_target: bool = True
    on_step: Callable[[int, float], Any] | None = None
    start: float = dataclasses.field(default_factory=time.perf_counter)
    times: list[float] = dataclasses.field(default_factory=list)
    iters_to_target: int | None = None
    time_to_target_s: float | None = None
    stopped: str = "iters"
    #: whether a loss can reach the target (off while continuum learning trains on a
    #: shorter window, whose loss is over fewer points)
    armed: bool = True
    #: the index of the first evaluation whose loss could reach the target
    armed_from: int | None = None

    def __call__(self, i: int, loss: float) -> bool:
        elapsed = time.perf_counter() - self.start
        self.times.append(elapsed)
        if self.armed and self.armed_from is None:
            self.armed_from = len(self.times) - 1
        if self.on_step is not None:
            self.on_step(i, loss)
        reached = self.armed and self.target > 0 and math.isfinite(loss) and loss <= self.target
        if self.iters_to_target is None and reached:
            self.iters_to_target, self.time_to_target_s = len(self.times), elapsed
            if self.stop_at_target:
                self.stopped = "target"
        if self.stopped == "iters" and self.budget_s > 0 and elapsed >= self.budget_s:
            self.stopped = "budget"
        return self.stopped != "iters"

    def summary(self) -> dict[str, Any]:
        """The record's training fields (see `harness.store.results.RECORD_FIELDS`)."""
        return {
            "train_target_loss": self.target if self.target > 0 else None,
            "train_budget_s": self.budget_s if self.budget_s > 0 else None,
            "train_stopped": self.stopped,
            "train_iters_run": len(self.times),
            "train_evals": len(self.times),
            "train_iters_to_target": self.iters_to_target,
            "train_time_to_target_s": self.time_to_target_s,
            "train_target_from": self.armed_from,
            "train_wall_s": time.perf_counter() - self.start,
            "train_time_history": list(self.times),
        }


def curriculum_stages(n_obs: int, step: int) -> list[int]:
    """Continuum learning (004, "Tricks-of-the-trade for nODEs": "first 5 time points, then
    10, then 15"): the numbers of leading time points to train on in turn, `step`,
    2 `step`, ... and finally all `n_obs` (at least 2: the initial state and one
    observation); `[n_obs]` when `step` is 0."""
    if step <= 0:
        return [n_obs]
    stages = [max(2, k) for k in range(step, n_obs, step)]
    return [*sorted(set(stages)), n_obs]


def head(data: Dataset, k: int) -> Dataset:
    """The first `k` time points of `data` (extrapolation windows dropped)."""
    return Dataset(t=data.t[:k], y=data.y[:k], y0=data.y0, y_true=data.y_true[:k], truth=data.truth)


def offset_callback(callback: TrainCallback, offset: int) -> TrainCallback:
    """`callback` with its iteration shifted by `offset` (a later stage continues the count)."""
    return lambda i, loss: callback(offset + i, loss)


def curriculum_fit(
    task: AbstractTask,
    impl: AbstractBackend,
    params: Any,
    *,
    iters: int,
    lr: float,
    step: int,
    callback: TrainCallback | None = None,
) -> TrainResult:
    """Adam on the first `step`, 2 `step`, ... observations in turn, then on all of them.

    Each stage but the last gets `iters // (number of stages)` steps on a back-end of
    `impl`'s kind rebuilt for the shorter window (`impl.rebuild`), the last stage the
    rest; the loss history runs on across stages.  The task's target is tested on every
    stage's loss only on the full window: earlier stages' losses are over fewer points, so a
    `TrainingMonitor` is disarmed for them (its budget still applies).
    """
    stages = curriculum_stages(impl.data.n_obs, step)[-max(iters, 1) :]
    share = [iters // len(stages)] * len(stages)
    share[-1] += iters - sum(share)
    history: list[float] = []
    time_s = 0.0
    for k, n in zip(stages, share, strict=True):
        last = k == impl.data.n_obs
        backend = impl if last else impl.rebuild(task, head(impl.data, k))
        cb = None if callback is None else offset_callback(callback, len(history))
        if isinstance(callback, TrainingMonitor):
            callback.armed = last
        result = driver.adam(backend, params, iters=n, lr=lr, callback=cb)
        history.extend(float(x) for x in result.loss_history)
        time_s += result.time_s
        params = result.params
        if len(result.loss_history) < n:  # stopped by the budget
            break
    if isinstance(callback, TrainingMonitor):
        callback.armed = True
    return TrainResult(params=params, loss_history=history, time_s=time_s, info={"curriculum_stages": stages})


def fit(
    task: AbstractTask,
    impl: AbstractBackend,
    params: Any,
    *,
    iters: int,
    lr: float,
    callback: TrainCallback | None = None,
    curriculum: int = 0,
) -> TrainResult:
    """The task's own `fit` where it has one, else the driver's Adam on the back-end's loss
    (`curriculum` > 0 needs a task that trains by continuum learning)."""
    if type(task).fit is not AbstractTask.fit:
        return task.fit(impl, params, iters=iters, lr=lr, callback=callback, curriculum=curriculum)
    if curriculum > 0:
        raise ValueError(f"task {task.name} does not train by continuum learning (curriculum=0)")
    return driver.adam(impl, params, iters=iters, lr=lr, callback=callback)


def train_cell(
    task: AbstractTask,
    impl: AbstractBackend,
    params: Any,
    train: Mapping[str, Any],
    monitor: TrainingMonitor,
    grad_norm_init: float,
) -> TrainResult:
    """A cell's training protocol (`task.phases()`, `harness.core.training_protocol`), the same
    on every back-end: its first phase (the driver's Adam, or the task's own `fit`) for
    `train["iters"]` evaluations, stopping at the target when `monitor` says so; then, when
    the protocol has the polish and `train["polish"]` > 0, the guarded L-BFGS polish of the
    back-end's loss (`harness.numerics.driver.lbfgs`) for at most that many evaluations,
    until the gradient norm is at most `train["gtol"]` x `grad_norm_init` (the convergence
    criterion) or L-BFGS-B stops by itself.  A target reached by the fit ends the fit only
    (and the polish too where reaching it is convergence: `TrainingProtocol.converged_at_target`).
    `monitor.stopped` ends as "converged" (the polish's stop), "target" (no polish), "iters"
    (evaluations spent) or "budget" (the wall-clock safety net); `info["polish_*"]` say how
    the polish went, `info["phases"]` what each declared phase took (the record's
    `train_phases`)."""
    first, *rest = task.phases()
    iters, polish = int(train["iters"]), int(train.get("polish", 0))
    result = TrainResult(params=params, loss_history=[], time_s=0.0)
    if iters > 0:
        result = fit(
            task,
            impl,
            params,
            iters=iters,
            lr=float(train["lr"]),
            callback=monitor,
            curriculum=int(train.get("curriculum", 0)),
        )
    taken = [first.as_dict(train, len(result.loss_history))]
    result.info["phases"] = taken + [phase.as_dict(train, 0) for phase in rest]
    if not rest or polish <= 0 or monitor.stopped == "budget":
        return result
    if task.protocol.converged_at_target and monitor.iters_to_target is not None:
        monitor.stopped = "converged"  # the fit reached the floor: no polish below it
        return result
    monitor.stopped = "iters"  # the target ended the first phase, not training
    # nor does it end the polish (it is still recorded), unless reaching it is convergence
    monitor.stop_at_target = bool(task.protocol.converged_at_target)
    polished = driver.lbfgs(
        impl,
        result.params,
        max_evals=polish,
        gtol=float(train.get("gtol", 0.0)) * grad_norm_init,
        callback=monitor,
        offset=len(result.loss_history),
    )
    if polished.info["message"].startswith(("gradient norm", *driver.OWN_STOPS)):
        monitor.stopped = "converged"
    elif monitor.stopped == "target":  # the floor of `converged_at_target`
        monitor.stopped = "converged"
    taken.append(rest[0].as_dict(train, polished.info["evals"]))
    info = {**result.info, "phases": taken, **{f"polish_{k}": v for k, v in polished.info.items()}}
    return TrainResult(
        params=polished.params,
        loss_history=[*result.loss_history, *polished.loss_history],
        time_s=result.time_s + polished.time_s,
        info=info,
    )
