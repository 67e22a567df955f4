"""Hamiltonian neural networks (000 §4, eqs. 4.1-4.2; Greydanus et al. 2019, ref. [3] of 000).

The network models the Hamiltonian, H(q, p) = NN(q, p; theta) (4.1), and the vector field is
Hamilton's equations (3.6) for it, f = J grad H with J = [[0, I], [-I, 0]] (4.2):
dq/dt = dH/dp, dp/dt = -dH/dq.

The gradient dH/dy is written out by hand as explicit array-API operations (backpropagation
through the MLP, no autodiff call inside `rhs`).  So every framework sees an ordinary vector
field made of matmuls and tanh, and its own reverse mode through `rhs` differentiates the
gradient once more: the second-order derivatives of the network that an HNN needs in the
backward pass (000 §4: "we need first order derivatives in the forward pass ... and then take
derivatives one more time in the backward pass").  The hand-written NumPy adjoint gets them
from `HamiltonianMLP.vjp_numpy`, Hessian-vector products of the MLP written out.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from harness.core.models import MLP, AbstractVectorField, Params

__all__ = ["HamiltonianMLP"]


@dataclasses.dataclass(frozen=True)
class HamiltonianMLP(AbstractVectorField):
    """H(y) = W_L tanh(... tanh(y W_0 + b_0) ...), a scalar per state; f = J grad H.

    **Arguments:**

    - `sizes`: layer widths, the state dimension N = 2n first (q then p, n each), the
      output width 1 last; `(4, 64, 1)` is 000 §3's one hidden layer of 64 tanh units on the
      double pendulum's (theta1, theta2, p_theta1, p_theta2).  Any number of hidden layers.
    - `init_scale`: as for `harness.core.models.MLP` (1 gives PyTorch's default initialisation).

    Parameters are `W0, b0, ..., W_L` with `W_i` of shape (in, out), initialised exactly as
    the MLP of the same sizes, less the output bias `b_L`: it would shift H by a constant,
    never move the field, and have no gradient (autodiff frameworks reject a parameter
    that the computation does not use).
    Only tanh is offered: the field needs the activation's derivative, the backward pass its
    second derivative, and ReLU's vanishes (the HNN field would be piecewise constant).
    """

    sizes: tuple[int, ...] = (4, 64, 1)
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or self.sizes[-1] != 1:
            raise ValueError(f"a Hamiltonian MLP maps the state to one number: sizes {self.sizes}")
        if self.sizes[0] % 2:
            raise ValueError(f"the state (q, p) needs an even dimension, not {self.sizes[0]}")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @functools.cached_property
    def _keys(self) -> tuple[tuple[str, str], ...]:
        return tuple((f"W{i}", f"b{i}") for i in range(self.n_layers))

    def init_params(self, seed: int) -> Params:
        params = MLP(sizes=self.sizes, activation="tanh", init_scale=self.init_scale).init_params(seed)
        del params[f"b{self.n_layers - 1}"]
        return params

    # -- array API: H, grad H, J grad H ---------------------------------------------------

    def hamiltonian(self, params: Params, y: Any, xp: Any) -> Any:
        """H(y) for a batch `y` (B, N): shape (B,)."""
        *hidden, (w_last, _) = self._keys
        h = y
        for w, b in hidden:
            h = xp.tanh(h @ params[w] + params[b])
        return (h @ params[w_last])[:, 0]

    def grad_h(self, params: Params, y: Any, xp: Any) -> Any:
        """dH/dy (B, N) by backpropagation through the MLP written as array-API operations."""
        *hidden, (w_last, _) = self._keys
        hs, h = [], y
        for w, b in hidden:
            h = xp.tanh(h @ params[w] + params[b])
            hs.append(h)
        g = params[w_last][:, 0]  # dH/dh of the last hidden layer, broadcast over the batch
        for (w, _), h in zip(reversed(hidden), reversed(hs), strict=True):
            g = (g * (1.0 - h * h)) @ params[w].T
        return g

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        """Hamilton's equations (3.6) / (4.2): (dH/dp, -dH/dq) for y = (q, p)."""
        g = self.grad_h(params, y, xp)
        n = self.sizes[0] // 2
        return xp.concat([g[:, n:], -g[:, :n]], axis=1)

    # -- NumPy: the vector-Jacobian product, Hessian-vector products written out -----------

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        """`(a^T df/dy, a^T df/dtheta)` of f = J grad H, the second summed over the batch.

        a . f = c . grad H with c = J^T a = (-a_p, a_q), so the VJP is the gradient (in y and
        theta) of phi = sum_b c_b . grad H(y_b), the derivative of H along c.  Forward: the
        network and its tangent along c (z_i = h_i W_i + b_i, dz_i = dh_i W_i, h_{i+1} =
        tanh z_i, dh_{i+1} = (1 - h_{i+1}^2) dz_i, dh_0 = c, phi = sum dh_L W_L).  Backward:
        reverse mode over both, alpha the cotangent of the tangents dh_i and beta that of the
        states h_i; tanh'' = -2 h (1 - h^2) is where the Hessian enters.  For one hidden layer
        with w = W1[:, 0], u = c W0, s = 1 - h^2 and r = -2 h s w u:
        dW0 = c^T (w s) + y^T r, db0 = sum r, dW1 = sum (u s), dy = r W0^T.
        """
        keys = self._keys
        n = self.sizes[0] // 2
        c = np.concatenate([-a[:, n:], a[:, :n]], axis=1)
        # forward: states h_i and tangents dh_i
        hs, dhs = [y], [c]
        for w, b in keys[:-1]:
            h = np.tanh(hs[-1] @ params[w] + params[b])
            dhs.append((1.0 - h * h) * (dhs[-1] @ params[w]))
            hs.append(h)
        w_last = keys[-1][0]
        grads: Params = {w_last: dhs[-1].sum(axis=0)[:, None]}
        # backward
        alpha = np.broadcast_to(params[w_last][:, 0], dhs[-1].shape)  # d phi / d dh_L
        beta = np.zeros_like(hs[-1])  # d phi / d h_L: phi depends on h_L through dh_L only
        for i in range(len(keys) - 2, -1, -1):
            w, b = keys[i]
            h = hs[i + 1]
            s = 1.0 - h * h
            dz = dhs[i] @ params[w]
            a_dz = alpha * s
            a_z = (beta - 2.0 * h * alpha * dz) * s
            grads[w] = dhs[i].T @ a_dz + hs[i].T @ a_z
            grads[b] = a_z.sum(axis=0)
            alpha = a_dz @ params[w].T
            beta = a_z @ params[w].T
        return beta, {k: grads[k] for k in params}
