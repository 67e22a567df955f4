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

from harness.core.models import Params
from harness.core.protocols import AbstractImplementation, TrainCallback, TrainResult
from harness.numerics.optim import SGD, StepDecay

__all__ = ["EpochCallback", "epoch_batches", "minibatch_sgd"]

#: ``on_epoch(epoch, params) -> metrics`` after every epoch (not timed as training)
EpochCallback = Callable[[int, Params], dict[str, float]]


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of the full mini-batches of one epoch over `n` examples in a random order;
    the last, partial batch is dropped (as torchdiffeq's example, `drop_last=True`), so that
    every batch has the same shape."""
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def minibatch_sgd(
    impl: AbstractImplementation,
    params: Params,
    *,
    x: np.ndarray,
    targets: np.ndarray,
    epochs: int,
    batch_size: int,
    schedule: StepDecay,
    momentum: float = 0.9,
    seed: int = 0,
    callback: TrainCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """`epochs` passes of SGD with momentum over mini-batches of (`x` (n, ...), `targets`
    (P, n, ...)), the learning rate from `schedule` per epoch, batches drawn by `seed`.

    `callback(i, loss)` runs after every step (training stops when it returns True: the
    harness's budget); `on_epoch(epoch, params)` after every epoch, outside the training
    clock (e.g. test accuracy).  `TrainResult.info` holds the per-epoch curves: `epoch_lr`,
    `epoch_time_s` (training time of each epoch), `epoch_loss` (the mean mini-batch loss of
    each whole epoch: `harness.numerics.driver.convergence`'s plateau) and, per key of `on_epoch`'s result,
    `epoch_<key>`.
    """
    if batch_size > len(x):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(x)} training examples")
    rng = np.random.default_rng(seed)
    sgd = SGD(momentum)
    history: list[float] = []
    info: dict[str, Any] = {"epoch_lr": [], "epoch_time_s": [], "epoch_loss": []}
    elapsed, stop = 0.0, False
    for epoch in range(epochs):
        lr = schedule(epoch, epochs)
        start = time.perf_counter()
        batches = epoch_batches(len(x), batch_size, rng)
        n_batches = len(batches)
        for idx in batches:
            batch = impl.load_batch(x[idx], targets[:, idx])
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
