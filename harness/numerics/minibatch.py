"""Mini-batch training, the same loop on every back-end (003 §3.2: "Stochastic Gradient
Descent (SGD) with momentum ... the `lr_decay` function adjusts the learning rate").

The back-end computes each mini-batch's loss and gradient (`load_batch`,
`value_and_grad_batch`: same shapes every step, so a compiled back-end does not recompile);
the update is NumPy's (`harness.numerics.optim.SGD`), so every back-end takes the same
steps from the same weights and the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.core.labelled import ClassificationData
from harness.core.models import Params
from harness.core.protocols import AbstractBackend, TrainCallback, TrainResult
from harness.numerics.optim import SGD, StepDecay

__all__ = ["EpochCallback", "minibatch_sgd"]

#: ``on_epoch(epoch, params) -> metrics`` after every epoch (not timed as training)
EpochCallback = Callable[[int, Params], dict[str, float]]


def minibatch_sgd(
    impl: AbstractBackend,
    params: Params,
    *,
    data: ClassificationData,
    epochs: int,
    batch_size: int,
    schedule: StepDecay,
    momentum: float = 0.9,
    seed: int = 0,
    callback: TrainCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """`epochs` passes of SGD with momentum over mini-batches of `data.train`
    (`Examples.batches`, the last partial batch dropped), the learning rate from `schedule`
    per epoch, batches drawn by `seed`.

    `callback(i, loss)` runs after every step (training stops when it returns True: the
    harness's budget); `on_epoch(epoch, params)` after every epoch, outside the training
    clock (e.g. test accuracy).  `TrainResult.info` holds the per-epoch curves: `epoch_lr`,
    `epoch_time_s` (training time of each epoch), `epoch_loss` (the mean mini-batch loss of
    each whole epoch: `harness.numerics.driver.convergence`'s plateau) and, per key of `on_epoch`'s result,
    `epoch_<key>`.
    """
    if batch_size > len(data.train):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(data.train)} training examples")
    rng = np.random.default_rng(seed)
    sgd = SGD(momentum)
    history: list[float] = []
    info: dict[str, Any] = {"epoch_lr": [], "epoch_time_s": [], "epoch_loss": []}
    elapsed, stop = 0.0, False
    for epoch in range(epochs):
        lr = schedule(epoch, epochs)
        start = time.perf_counter()
        batches = list(data.train.batches(batch_size, rng))
        n_batches = len(batches)
        for examples in batches:
            batch = impl.load_batch(examples.x, data.observe(examples))
            loss, grad = impl.to_numpy(impl.block(impl.value_and_grad_batch(impl.load(params), batch)))
            params = sgd.step(params, grad, lr)
            history.append(float(loss))
            if not np.isfinite(loss) or (callback is not None and callback(len(history) - 1, float(loss))):
                stop = True
                break
        if not stop:  # the mean over a whole epoch (a cut one's is not comparable)
            info["epoch_loss"].append(float(np.mean(history[-n_batches:])))
        info["epoch_lr"].append(lr)
        info["epoch_time_s"].append(time.perf_counter() - start)
        elapsed += info["epoch_time_s"][-1]
        if on_epoch is not None:
            for key, value in on_epoch(epoch, params).items():
                info.setdefault(f"epoch_{key}", []).append(value)
        if stop:
            break
    return TrainResult(
        params={k: np.asarray(v) for k, v in params.items()}, loss_history=history, time_s=elapsed, info=info
    )
