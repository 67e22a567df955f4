"""Optimisers in plain NumPy, for back-ends that use no framework (e.g. `numpy-adjoint`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.core.models import Params

__all__ = ["SGD", "Adam", "StepDecay"]


class Adam:
    """Adam (Kingma & Ba) on dictionaries of NumPy arrays, with PyTorch's update
    p <- p - lr * m_hat / (sqrt(v_hat) + eps), m_hat and v_hat the bias-corrected moments.

    **Arguments:**

    - `lr`: learning rate.
    - `betas`: decay rates of the first and second moments.
    - `eps`: added to sqrt(v_hat) in the denominator.

    `step` returns new arrays and leaves its inputs alone; the moments are kept per key
    and in each parameter's dtype.
    """

    def __init__(
        self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.lr = float(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.t = 0
        self.m: Params = {}
        self.v: Params = {}

    def step(self, params: Params, grads: Params) -> Params:
        """One update: the parameters after a step along `grads`."""
        self.t += 1
        bias1 = 1.0 - self.beta1**self.t
        bias2 = 1.0 - self.beta2**self.t
        out: Params = {}
        for key, p in params.items():
            p = np.asarray(p)
            g = np.asarray(grads[key], dtype=p.dtype)
            m = self.m.setdefault(key, np.zeros_like(p))
            v = self.v.setdefault(key, np.zeros_like(p))
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            denom = np.sqrt(v) / np.sqrt(bias2) + self.eps
            out[key] = p - (self.lr / bias1) * m / denom
        return out


class SGD:
    """Stochastic gradient descent with momentum on dictionaries of NumPy arrays, with
    PyTorch's `torch.optim.SGD` update (no dampening, no weight decay, not Nesterov):
    b <- momentum * b + g (b = g at the first step), p <- p - lr * b.

    `step` takes the learning rate of this step (a schedule sets it), returns new arrays and
    leaves its inputs alone.
    """

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum = float(momentum)
        self.buffers: Params = {}

    def step(self, params: Params, grads: Params, lr: float) -> Params:
        out: Params = {}
        for key, p in params.items():
            p = np.asarray(p)
            g = np.asarray(grads[key], dtype=p.dtype)
            buf = self.buffers.get(key)
            if buf is None:
                buf = self.buffers[key] = g.copy()
            else:
                buf *= self.momentum
                buf += g
            out[key] = p - lr * buf
        return out


@dataclasses.dataclass(frozen=True)
class StepDecay:
    """A piecewise-constant learning rate: `lr` times `rates[k]` from the `boundaries[k-1]`-th
    fraction of the epochs on (torchdiffeq's `examples/odenet_mnist.py`: 0.1 x batch/128,
    times 1, 0.1, 0.01, 0.001 from epochs 60, 100, 140 of 160, i.e. fractions 0.375, 0.625,
    0.875, so that a shorter run decays at the same points of its course)."""

    lr: float
    boundaries: tuple[float, ...] = (0.375, 0.625, 0.875)
    rates: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)

    def __call__(self, epoch: int, n_epochs: int) -> float:
        """The learning rate of (0-based) `epoch` of `n_epochs`."""
        passed = sum(epoch >= b * n_epochs for b in self.boundaries)
        return self.lr * self.rates[min(passed, len(self.rates) - 1)]
