"""Physical right-hand sides, written once against the array API.

Each function takes the state batch `y` of shape (B, N), a parameter mapping and the
array namespace `xp` (`array_api_compat.array_namespace(y)` when not given), so the very
same code runs on NumPy, PyTorch and JAX arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "double_pendulum_field",
    "double_pendulum_hamiltonian",
    "linear_field",
    "lotka_volterra_field",
    "lotka_volterra_vjp",
]


def _ns(y: Any, xp: Any) -> Any:
    return xp if xp is not None else array_api_compat.array_namespace(y)


def linear_field(y: Any, A: Any, xp: Any = None) -> Any:
    """du/dt = A u for a batch of row vectors (000 §3.1 eq. 3.1; 001's f(z) = W z)."""
    return y @ A.T


def lotka_volterra_field(y: Any, p: Mapping[str, Any], xp: Any = None) -> Any:
    """Lotka-Volterra (000 §3.2 eqs. 3.3-3.4): x' = alpha x - beta x y, y' = delta x y - gamma y."""
    xp = _ns(y, xp)
    x, z = y[..., 0], y[..., 1]
    dx = p["alpha"] * x - p["beta"] * x * z
    dz = p["delta"] * x * z - p["gamma"] * z
    return xp.stack([dx, dz], axis=-1)


def lotka_volterra_vjp(
    p: Mapping[str, Any], y: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hand-written VJP of `lotka_volterra_field` in NumPy: (a^T df/dy, a^T df/dp summed
    over the batch) for a batch `y` (B, 2) and cotangent `a` (B, 2)."""
    x, z, a1, a2 = y[:, 0], y[:, 1], a[:, 0], a[:, 1]
    a_y = np.stack([a1 * (p["alpha"] - p["beta"] * z) + a2 * p["delta"] * z,
                    -a1 * p["beta"] * x + a2 * (p["delta"] * x - p["gamma"])], axis=1)  # fmt: skip
    a_p = {
        "alpha": np.sum(a1 * x),
        "beta": -np.sum(a1 * x * z),
        "delta": np.sum(a2 * x * z),
        "gamma": -np.sum(a2 * z),
    }
    return a_y, a_p


def double_pendulum_hamiltonian(y: Any, p: Mapping[str, float], xp: Any = None) -> Any:
    """Hamiltonian (3.5) of 000 §3.4; y = (theta1, theta2, p_theta1, p_theta2)."""
    xp = _ns(y, xp)
    m1, m2, l1, l2, g = p["m1"], p["m2"], p["l1"], p["l2"], p["g"]
    q1, q2, p1, p2 = y[..., 0], y[..., 1], y[..., 2], y[..., 3]
    delta = q1 - q2
    s, c = xp.sin(delta), xp.cos(delta)
    num = m2 * l2**2 * p1**2 + (m1 + m2) * l1**2 * p2**2 - 2 * m2 * l1 * l2 * p1 * p2 * c
    den = 2 * m2 * l1**2 * l2**2 * (m1 + m2 * s**2)
    return num / den - (m1 + m2) * g * l1 * xp.cos(q1) - m2 * g * l2 * xp.cos(q2)


def double_pendulum_field(y: Any, p: Mapping[str, float], xp: Any = None) -> Any:
    """Hamilton's equations (3.6) for the Hamiltonian (3.5) of 000 §3.4, derived by hand."""
    xp = _ns(y, xp)
    m1, m2, l1, l2, g = p["m1"], p["m2"], p["l1"], p["l2"], p["g"]
    q1, q2, p1, p2 = y[..., 0], y[..., 1], y[..., 2], y[..., 3]
    delta = q1 - q2
    s, c = xp.sin(delta), xp.cos(delta)
    k = m1 + m2 * s**2
    dq1 = (l2 * p1 - l1 * p2 * c) / (l1**2 * l2 * k)
    dq2 = ((m1 + m2) * l1 * p2 - m2 * l2 * p1 * c) / (m2 * l1 * l2**2 * k)
    num = m2 * l2**2 * p1**2 + (m1 + m2) * l1**2 * p2**2 - 2 * m2 * l1 * l2 * p1 * p2 * c
    c1 = p1 * p2 * s / (l1 * l2 * k)
    c2 = num * s * c / (l1**2 * l2**2 * k**2)
    dp1 = -(m1 + m2) * g * l1 * xp.sin(q1) - c1 + c2
    dp2 = -m2 * g * l2 * xp.sin(q2) + c1 - c2
    return xp.stack([dq1, dq2, dp1, dp2], axis=-1)
