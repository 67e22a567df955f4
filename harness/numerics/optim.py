"""Optimisers in plain NumPy, for back-ends that use no framework (e.g. `numpy-adjoint`)."""

from __future__ import annotations

import numpy as np

from harness.core.models import Params

__all__ = ["Adam"]


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
