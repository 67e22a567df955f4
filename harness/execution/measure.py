"""Measuring one cell, stage by stage (in a worker process, or in-process for tests).

For each cell: the task's reference gradient, first-call and steady-state timing,
gradient error, NFE, peak memory (in a further isolated process), a training run, the
task's metrics and the trajectories for the figures.  The record is handed to
`checkpoint` after every stage, so that a crash, a NaN or a timeout leaves a `failed`
record with its reason and everything measured before.  Nothing here writes into a
results folder: the arrays for the figures are returned to the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.core.protocols import AbstractTask, HasEnergy
from harness.execution.build import build_cell, build_task, build_twin
from harness.execution.measurement import measure_memory_isolated, relative_error, time_value_and_grad
from harness.execution.predict import WEIGHT_PREFIX
from harness.numerics.driver import convergence, gradient_norm
from harness.numerics.training import TrainingMonitor, train_cell
from harness.planning.cell import Cell
from harness.planning.config import STOP_KEY
from harness.store.schema import Record, merge

#: the figures of the timing stage (`measure_timing`)
TIMING_FIELDS = ("time_first_s", "time_median_s", "time_iqr_s", "repeats")

__all__ = ["StageHook", "energy_arrays", "measure_cell", "measure_timing"]

#: ``on_stage(stage) -> bool``: called as each stage starts (the worker's test aid,
#: `harness.execution.faults`); True turns the parameters NaN from there on
StageHook = Callable[[str], bool]


def _no_hook(stage: str) -> bool:
    return False


def energy_arrays(task: AbstractTask, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`H_true`, `H_pred` (first batch member, along `t`) for a task with `HasEnergy`, so that
    the energy figure is drawn from the results folder alone; else nothing."""
    if not isinstance(task, HasEnergy) or "y_true" not in arrays or "y_pred" not in arrays:
        return {}
    energy = lambda y: np.asarray(task.hamiltonian(np.asarray(y)[:, 0, :], np), dtype=float)
    return {"H_true": energy(arrays["y_true"]), "H_pred": energy(arrays["y_pred"])}


class InProgress(Record, total=False):
    """A record while its cell runs: `stage` names the stage under way, so that a failure
    is recorded with it (the engines pop it; it is never written)."""

    stage: str


def measure_timing(cell: Cell, record: InProgress, *, repeats: int, on_stage: StageHook = _no_hook) -> None:
    """The timing stage alone (first call and steady state of value-and-grad), into
    `record`: what `--timing serial` runs again, one cell at a time, after a concurrent
    run.  The concurrent figures are kept under `timing_concurrent`."""
    record["stage"] = "timing"
    on_stage("timing")
    _, _, params = build_task(cell)
    impl, _ = build_cell(cell)
    timing, _ = time_value_and_grad(impl, params, repeats=repeats)
    record["timing_concurrent"] = {k: record.get(k) for k in TIMING_FIELDS}
    record.update(time_first_s=timing.first_s, time_median_s=timing.median_s)
    record.update(time_iqr_s=timing.iqr_s, repeats=timing.repeats)
    del record["stage"]


def _whole_schedule(epoch_losses: list[float] | None, epochs: int) -> list[float] | None:
    """A mini-batch run's mean epoch losses where its schedule ran to the end, else None."""
    return epoch_losses if epoch_losses is not None and len(epoch_losses) == epochs else None


def _target_floor(task: AbstractTask, train: Mapping[str, Any]) -> tuple[float, str] | None:
    """The task's target as a convergence floor (`TrainingProtocol.converged_at_target`)."""
    target = float(train.get("target", 0.0))
    why = task.protocol.converged_at_target
    return (target, why) if why and target > 0 else None


def measure_cell(
    cell: Cell,
    record: InProgress,
    *,
    repeats: int,
    memory: bool,
    on_train_step: Callable[[int, float], None] | None = None,
    checkpoint: Callable[[InProgress], None] = lambda record: None,
    on_stage: StageHook = _no_hook,
) -> dict[str, np.ndarray] | None:
    """Fill `record` stage by stage, calling `checkpoint(record)` after each; returns the
    trajectory arrays of the trained model (None without training).  Raises on failure
    with `record["stage"]` naming the stage that failed."""

    def stage(name: str) -> None:
        nonlocal params
        record["stage"] = name
        checkpoint(record)
        if on_stage(name):
            params = {k: np.full_like(v, np.nan) for k, v in params.items()}

    task, data, params = build_task(cell)
    record["truth"] = "noise-free" if task.noise_free_truth else "observations"
    if task.state_names:
        record["state_names"] = list(task.state_names)

    stage("reference")
    _, ref_grad, how = task.reference_gradient(task.init_params(cell["seed"]), data)
    record["grad_reference"] = how

    stage("setup")
    impl, _ = build_cell(cell)
    record["resolved_params"] = {**task.config, **impl.solver, **impl.config, **cell["train"]}

    stage("value_and_grad")
    timing, out = time_value_and_grad(impl, params, repeats=repeats)
    loss, grad = impl.to_numpy(out)
    record.update(
        loss_init=loss,
        grad_rel_error=relative_error(grad, ref_grad),
        time_first_s=timing.first_s,
        time_median_s=timing.median_s,
        time_iqr_s=timing.iqr_s,
        repeats=timing.repeats,
    )
    if not (math.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grad.values())):
        raise FloatingPointError("non-finite loss or gradient at the initial parameters")

    if impl.discrete_twin is not None:
        stage("discrete")
        twin = build_twin(cell, task, data)
        record["discrete_twin"] = impl.discrete_twin
        if twin is not None:  # its gradient: that of the discrete solution this one approximates
            record["grad_rel_error_discrete"] = relative_error(grad, twin.value_and_grad(params)[1])

    stage("nfe")
    record["nfe_forward"], record["nfe_backward"] = impl.count_nfe(params)
    discrete = impl.composed.discrete  # a map is applied, not integrated: no solver figures
    record["solver_steps"] = None if discrete else impl.n_steps
    record["solver_checkpoints"] = None if discrete else impl.n_checkpoints

    if memory:
        stage("memory")
        merge(record, measure_memory_isolated(cell))

    stage("train")
    train = cell["train"]
    iters = int(train["iters"])
    record["train_iters"] = iters
    arrays = None
    if iters > 0 or int(train.get("polish", 0)) > 0:
        monitor = TrainingMonitor(
            target=float(train.get("target", 0.0)),
            budget_s=float(train.get("budget", 0.0)),
            stop_at_target=bool(train.get(STOP_KEY, True)),
            on_step=on_train_step,
        )
        result = train_cell(task, impl, params, train, monitor, gradient_norm(grad))
        history = [float(x) for x in result.loss_history]
        record.update(train_loss_history=history, train_time_s=result.time_s)
        merge(record, monitor.summary())
        merge(record, {f"train_{k}": v for k, v in result.info.items() if k.startswith("polish_")})
        record["train_phases"] = result.info.pop("phases", None)
        fitted = len(history) - int(result.info.get("polish_evals", 0))  # the polish rejects bad steps
        bad = next((i for i, x in enumerate(history[:fitted]) if not math.isfinite(x)), None)
        if bad is not None:
            raise FloatingPointError(f"training diverged: non-finite loss at iteration {bad}")
        final, final_grad = impl.value_and_grad(result.params)
        record["train_loss_final"] = final
        if not math.isfinite(final):
            raise FloatingPointError(f"training diverged: non-finite loss after {len(history)} iterations")
        verdict = convergence(
            final,
            gradient_norm(final_grad),
            gradient_norm(grad),
            float(train.get("gtol", 1e-6)),
            result.info.get("polish_message"),
            floor=_target_floor(task, train),
            epoch_losses=_whole_schedule(result.info.get("epoch_loss"), iters),
        )
        merge(record, verdict.fields())
        result.info = {k: v for k, v in result.info.items() if not k.startswith("polish_")}
        stage("metrics")
        trained = result.params
        predict = lambda t, y0: impl.predict(trained, t, y0)
        record["metrics"] = {**result.info, **task.metrics(predict, data, trained)}
        stage("trajectories")
        arrays = dict(task.trajectories(predict, data))
        arrays.update(energy_arrays(task, arrays))
        arrays.update({f"{WEIGHT_PREFIX}{k}": np.asarray(v, dtype=float) for k, v in trained.items()})
        stage("trained")  # cost and accuracy of a gradient where training ends, not only where it starts
        at_trained, out_trained = time_value_and_grad(impl, trained, repeats=repeats)
        nfe = impl.count_nfe(trained)
        _, ref_trained, _ = task.reference_gradient(trained, data)
        record.update(
            time_median_trained_s=at_trained.median_s,
            time_iqr_trained_s=at_trained.iqr_s,
            nfe_forward_trained=nfe[0],
            nfe_backward_trained=nfe[1],
            grad_rel_error_trained=relative_error(impl.to_numpy(out_trained)[1], ref_trained),
        )
    del record["stage"]
    checkpoint(record)
    return arrays
