"""Training in phases (each on its own variant of a task) over growing windows of leading
time points (continuum learning, 004 "Tricks-of-the-trade for nODEs"), one loss history."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.core.models import Params
from harness.core.protocols import AbstractBackend, AbstractTask, TrainCallback
from harness.numerics import driver
from harness.numerics.training import head, offset_callback

__all__ = ["PhasedTraining"]


@dataclasses.dataclass
class PhasedTraining:
    """Loss history and training time accumulated over the phases of a task's `fit`;
    `callback` sees one iteration count running through all of them."""

    callback: TrainCallback | None
    history: list[float] = dataclasses.field(default_factory=list)
    time_s: float = 0.0
    lengths: dict[str, int] = dataclasses.field(default_factory=dict)

    def train(
        self,
        impl: AbstractBackend,
        task: AbstractTask,
        params: Params,
        *,
        label: str,
        iters: int,
        lr: float,
        stages: Sequence[int],
    ) -> Params:
        """`iters` Adam steps of `task` on back-end `impl`'s kind, spread over the stages
        (leading time points) as evenly as possible, the remainder going to the last."""
        self.lengths[label] = iters
        if iters <= 0:
            return params
        stages = [k for k in stages if k <= impl.data.n_obs][-iters:]
        share = [iters // len(stages)] * len(stages)
        share[-1] += iters - sum(share)
        for k, n in zip(stages, share, strict=True):
            data = impl.data if k == impl.data.n_obs else head(impl.data, k)
            cb = None if self.callback is None else offset_callback(self.callback, len(self.history))
            result = driver.adam(impl.rebuild(task, data), params, iters=n, lr=lr, callback=cb)
            self.history.extend(float(x) for x in result.loss_history)
            self.time_s += result.time_s
            params = result.params
        return params
