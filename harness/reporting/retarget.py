"""Time and evaluations to any loss, after the fact, from the histories every record stores
(`train_loss_history`, `train_time_history`): `report DIR --target LOSS`.

The rule is the run's own (`harness.numerics.training.TrainingMonitor`): the first
evaluation from `train_target_from` on (0 unless continuum learning trained on shorter
windows first) whose loss is finite and at most the target; evaluations are counted from 1
and the time is the wall clock from the start of training at that evaluation.  So the
task's own target gives back what the run recorded, and a loss the run never reached is
"not reached" (training stopped at its target or budget before)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["at_target", "step_durations", "step_time_s", "to_target"]


def to_target(record: Mapping[str, Any], loss: float) -> tuple[int | None, float | None]:
    """(evaluations, seconds) to the first loss at most `loss`, or (None, None)."""
    losses = record.get("train_loss_history") or []
    times = record.get("train_time_history") or []
    if "train_target_from" in record and record["train_target_from"] is None:
        return None, None  # training stopped before its loss was over the whole window
    start = int(record.get("train_target_from") or 0)  # 0 in records that predate the field
    for i in range(start, min(len(losses), len(times))):
        value = losses[i]
        if value is not None and math.isfinite(value) and value <= loss:
            return i + 1, float(times[i])
    return None, None


def at_target(records: Sequence[Mapping[str, Any]], loss: float) -> list[dict[str, Any]]:
    """Copies of `records` whose target is `loss`: `train_target_loss`,
    `train_iters_to_target` and `train_time_to_target_s` recomputed from the histories
    (records without a loss history are copied as they are)."""
    out = []
    for record in records:
        copy = dict(record)
        if record.get("status") == "ok" and record.get("train_loss_history"):
            iters, seconds = to_target(record, loss)
            copy.update(train_target_loss=loss, train_iters_to_target=iters, train_time_to_target_s=seconds)
        out.append(copy)
    return out


def step_time_s(record: Mapping[str, Any]) -> float | None:
    """The median wall time of one training evaluation (the differences of
    `train_time_history`; its first entry, which holds the set-up, is left out), or None
    with fewer than three evaluations."""
    steps = step_durations(record)
    return statistics.median(steps) if steps else None


def step_durations(record: Mapping[str, Any]) -> list[float]:
    """The wall time of each training evaluation after the first (differences of
    `train_time_history`; the first entry holds the set-up)."""
    times = [float(t) for t in record.get("train_time_history") or [] if t is not None]
    return [b - a for a, b in itertools.pairwise(times[1:])]
