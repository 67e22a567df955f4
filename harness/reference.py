"""Reference gradients that share no code path with any back-end's gradient algorithm.

`forward_sensitivity_gradient` integrates the forward sensitivity equations
dS/dt = (df/dy) S + df/dparams alongside the state with SciPy's DOP853 at tight tolerance;
the Jacobians are assembled row by row from the model's NumPy vector-Jacobian product
(itself tested against finite differences).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from harness.models import AbstractModel, Params, flatten, unflatten
from harness.protocols import Dataset, mse_loss, mse_loss_cotangent

__all__ = ["forward_sensitivity_gradient", "jacobians"]


def jacobians(model: AbstractModel, params: Params, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """df/dy (N, N) and df/dparams (N, M) at one state `y` of shape (N,)."""
    n = y.shape[-1]
    rows_y, rows_p = [], []
    for j in range(n):
        a = np.zeros((1, n))
        a[0, j] = 1.0
        a_y, a_p = model.vjp_numpy(params, y.reshape(1, n), a)
        rows_y.append(a_y[0])
        rows_p.append(flatten(a_p))
    return np.array(rows_y), np.array(rows_p)


def forward_sensitivity_gradient(
    model: AbstractModel, params: Params, data: Dataset, *, rtol: float = 1e-12, atol: float = 1e-12
) -> tuple[float, Params, str]:
    """Loss and gradient of the MSE loss by forward sensitivities (DOP853).

    **Returns:** `(loss, grad, how)`.
    """
    n_batch, n = data.y0.shape
    m = flatten(params).size
    preds, sens = [], []
    for b in range(n_batch):

        def rhs(_t: float, z: np.ndarray) -> np.ndarray:
            y, s = z[:n], z[n:].reshape(n, m)
            f = np.asarray(model.rhs(params, y.reshape(1, n), np))[0]
            jy, jp = jacobians(model, params, y)
            return np.concatenate([f, (jy @ s + jp).ravel()])

        z0 = np.concatenate([data.y0[b], np.zeros(n * m)])
        sol = solve_ivp(
            rhs, (data.t[0], data.t[-1]), z0, t_eval=data.t, method="DOP853", rtol=rtol, atol=atol
        )
        if not sol.success:
            raise RuntimeError(f"reference sensitivity solve failed: {sol.message}")
        preds.append(sol.y[:n].T)
        sens.append(sol.y[n:].T.reshape(len(data.t), n, m))
    pred = np.stack(preds, axis=1)  # (P, B, N)
    cot = mse_loss_cotangent(pred, data.y)
    grad = sum(np.einsum("pn,pnm->m", cot[:, b], sens[b]) for b in range(n_batch))
    how = f"forward sensitivities, DOP853, rtol={rtol:g}, atol={atol:g}"
    return float(mse_loss(pred, data.y)), unflatten(grad, params), how
