"""Reference gradients that share no code path with any back-end's gradient algorithm.

`forward_sensitivity_gradient` integrates the forward sensitivity equations
dS/dt = (df/dy) S + df/dparams alongside the state with SciPy's DOP853 at tight tolerance;
the Jacobians are assembled row by row from the model's NumPy vector-Jacobian product
(itself tested against finite differences).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from scipy.integrate import solve_ivp

from harness.core.data import Dataset, mse_loss, mse_loss_cotangent
from harness.core.models import AbstractMap, AbstractVectorField, Composite, Params, flatten, unflatten

__all__ = [
    "adjoint_reference_gradient",
    "composite_reference_gradient",
    "forward_sensitivity_gradient",
    "jacobians",
]

Loss = Callable[[np.ndarray, np.ndarray], Any]
Cotangent = Callable[[np.ndarray, np.ndarray], np.ndarray]


def jacobians(model: AbstractVectorField, params: Params, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    model: AbstractVectorField,
    params: Params,
    data: Dataset,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    loss: Loss = mse_loss,
    cotangent: Cotangent = mse_loss_cotangent,
) -> tuple[float, Params, str]:
    """Loss and gradient by forward sensitivities (DOP853); `loss(pred, obs)` and its
    derivative `cotangent(pred, obs)` default to the MSE.

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
    cot = cotangent(pred, data.y)
    grad = np.sum([np.einsum("pn,pnm->m", cot[:, b], sens[b]) for b in range(n_batch)], axis=0)
    how = f"forward sensitivities, DOP853, rtol={rtol:g}, atol={atol:g}"
    return float(loss(pred, data.y)), unflatten(grad, params), how


def adjoint_reference_gradient(
    model: AbstractVectorField,
    params: Params,
    data: Dataset,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    loss: Loss = mse_loss,
    cotangent: Cotangent = mse_loss_cotangent,
) -> tuple[float, Params, str]:
    """Loss and gradient by the continuous adjoint (000 §2, eqs. 2.4-2.5) at tight tolerance,
    the whole batch in one system: for tasks whose batch or parameter count makes forward
    sensitivities (B solves of N (1 + M) states) too costly.

    Forward: DOP853 with its 7th-order dense output.  Backward: DOP853 on (lambda, mu) from
    each observation time to the previous one, lambda jumping by `cotangent` at each.  The
    vector-Jacobian products are the model's hand-written `vjp_numpy` (tested against finite
    differences); the solver, order and tolerance are not those of any back-end, but the
    method is numpy-adjoint's, so that back-end's agreement with this reference is the weaker
    check — the others' agreement is independent.

    **Returns:** `(loss, grad, how)`.
    """
    t = np.asarray(data.t, dtype=float)
    pred, dense = _dense_solve(model, params, data.y0, t, rtol=rtol, atol=atol)
    _, mu = _adjoint(model, params, dense, t, cotangent(pred, data.y), rtol=rtol, atol=atol)
    how = f"continuous adjoint over the batch, DOP853, rtol={rtol:g}, atol={atol:g}"
    return float(loss(pred, data.y)), unflatten(mu, params), how


def composite_reference_gradient(
    model: Composite,
    params: Params,
    data: Dataset,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    loss: Loss = mse_loss,
    cotangent: Cotangent = mse_loss_cotangent,
) -> tuple[float, Params, str]:
    """`adjoint_reference_gradient` for a `Composite` (encoder, core, decoder): the core's
    states from the encoded batch, decoded; the decoder's and encoder's hand-written VJPs
    (tested against finite differences) carry the cotangents into and out of the core's
    adjoint (DOP853, as above), or for a discrete core its hand-written `apply_vjp_numpy`.

    **Returns:** `(loss, grad, how)`.
    """
    encoder, core = model.encoder, model.core
    core_params = {k: params[k] for k in model.part_keys[1]}
    t = np.asarray(data.t, dtype=float)
    h0 = np.asarray(encoder.apply(params, data.y0, np), dtype=float)
    if isinstance(core, AbstractVectorField):
        states, dense = _dense_solve(core, core_params, h0, t, rtol=rtol, atol=atol)
    else:
        states = np.asarray(cast(AbstractMap, core).states(core_params, h0, len(t), np), dtype=float)
    pred = model.decode(params, states, np)
    a_states, grads = model.decode_vjp_numpy(params, states, cotangent(pred, data.y))
    if isinstance(core, AbstractVectorField):
        lam0, mu = _adjoint(core, core_params, dense, t, a_states, rtol=rtol, atol=atol)
        grads.update(unflatten(mu, core_params))
        how = f"continuous adjoint of the core, DOP853, rtol={rtol:g}, atol={atol:g}"
    else:
        core = cast(AbstractMap, core)
        if not core.has_numpy_vjp or len(t) != 2:
            raise TypeError(f"{core.label}: no apply_vjp_numpy for a reference gradient over two times")
        a_h, core_grad = core.apply_vjp_numpy(core_params, h0, a_states[1])
        lam0 = a_states[0] + a_h
        grads.update(core_grad)
        how = f"exact backpropagation through {core.label}, hand-written NumPy"
    grads.update(model.encode_vjp_numpy(params, data.y0, lam0.reshape(h0.shape)))
    how += "; encoder and decoder by their hand-written NumPy VJPs"
    return float(loss(pred, data.y)), {k: grads[k] for k in params}, how


def _dense_solve(
    model: AbstractVectorField, params: Params, y0: np.ndarray, t: np.ndarray, *, rtol: float, atol: float
) -> tuple[np.ndarray, Any]:
    """States at `t` (P, *y0.shape) and the dense DOP853 solution of the batch."""
    shape = y0.shape

    def fun(_t: float, u: np.ndarray) -> np.ndarray:
        return np.asarray(model.rhs(params, u.reshape(shape), np)).ravel()

    fwd = solve_ivp(
        fun, (t[0], t[-1]), y0.ravel(), t_eval=t, dense_output=True, rtol=rtol, atol=atol, method="DOP853"
    )
    if not fwd.success:
        raise RuntimeError(f"reference forward solve failed: {fwd.message}")
    return fwd.y.T.reshape((len(t), *shape)), fwd.sol


def _adjoint(
    model: AbstractVectorField,
    params: Params,
    dense: Any,
    t: np.ndarray,
    cot: np.ndarray,
    *,
    rtol: float,
    atol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """lambda(t_0) and mu(t_0) (flat, in the order of `params`) of the adjoint ODE (2.4)
    solved by DOP853 from t_P down to t_0, lambda jumping by `cot[i]` at each t_i."""
    shape, keys = cot.shape[1:], list(params)
    n = int(np.prod(shape))

    def adjoint(s: float, z: np.ndarray) -> np.ndarray:
        a_u, a_p = model.vjp_numpy(params, dense(s).reshape(shape), z[:n].reshape(shape))
        return -np.concatenate([a_u.ravel(), *[np.ravel(a_p[k]) for k in keys]])

    z = np.zeros(n + flatten(params).size)
    for i in range(len(t) - 1, 0, -1):
        z[:n] += cot[i].ravel()
        if t[i] == t[i - 1]:
            continue
        back = solve_ivp(adjoint, (t[i], t[i - 1]), z, rtol=rtol, atol=atol, method="DOP853")
        if not back.success:
            raise RuntimeError(f"reference adjoint solve failed: {back.message}")
        z = back.y[:, -1]
    return z[:n] + cot[0].ravel(), z[n:]
