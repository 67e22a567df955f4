"""Metrics of a Lotka-Volterra model's predation term (the hybrid task of 004): its error
against a true power law, and the power law closest to it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.numerics.metrics import rmse

__all__ = ["effective_power", "interaction_rel_error", "predation_metrics"]


def interaction_rel_error(
    interaction: Callable[[np.ndarray], np.ndarray], states: np.ndarray, *, delta: float, cat_power: float
) -> float:
    """RMS of a model's d cat/dt + gamma cat against the truth's `delta` rabbit
    cat^`cat_power` (004: 2.1 rabbit cat^0.95) over `states`, relative to the truth's RMS."""
    r, c = states[:, 0], states[:, 1]
    target = delta * r * c**cat_power
    return rmse(interaction(states), target) / rmse(target, 0.0 * target)


def effective_power(
    interaction: Callable[[np.ndarray], np.ndarray], states: np.ndarray
) -> tuple[float, float]:
    """The power law closest to a model's predation term: (d, q) minimising the
    rabbit-weighted squared error of interaction / rabbit against d cat^q over `states`
    (Gauss-Newton from the log-log fit).  The truth gives (2.1, 0.95); the mechanistic
    model alone gives (delta, 1)."""
    r, c = states[:, 0], states[:, 1]
    y = interaction(states) / r
    ok = y > 0
    q, log_d = np.polyfit(np.log(c[ok]), np.log(y[ok]), 1) if ok.sum() > 1 else (1.0, 0.0)
    d = float(np.exp(log_d))
    for _ in range(20):
        model = d * c**q
        jac = np.stack([c**q, model * np.log(c)], axis=1) * r[:, None]
        step = np.linalg.lstsq(jac, (y - model) * r, rcond=None)[0]
        d, q = d + step[0], q + step[1]
    return float(d), float(q)


def predation_metrics(
    interaction: Callable[[np.ndarray], np.ndarray], states: np.ndarray, *, delta: float, cat_power: float
) -> dict[str, float]:
    """`interaction_rel_error` against the truth `delta` rabbit cat^`cat_power`, and
    `effective_delta`, `effective_cat_power` (`effective_power`) over `states`."""
    metrics = {
        "interaction_rel_error": interaction_rel_error(interaction, states, delta=delta, cat_power=cat_power)
    }
    metrics["effective_delta"], metrics["effective_cat_power"] = effective_power(interaction, states)
    return metrics
