"""A learnt initial condition within an interface whose initial state is data (004,
"Conditions + Learnt Initialisations": "We can also learn the initial condition").

The state gains a clock; a lead-in before t = 0 moves the observed initial state by a
trained offset (`learnt_initial_model`); the data gain the clock and the lead-in's time
(`clock_augmented`); `lead_in_predictor` predicts on the plain state from the observed
initial state through the learnt one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.core.models import Parametric, Params
from harness.core.protocols import Dataset, Predictor

__all__ = ["LATE", "Y0_OFFSET", "clock_augmented", "lead_in_predictor", "learnt_initial_model", "smoothstep"]

#: the learnt initial condition's parameter (an offset added to the observed initial state)
Y0_OFFSET = "y0_offset"
#: the clock value that keeps a prediction after t = 0 out of the lead-in segment
LATE = 1e3


def smoothstep(x: Any, xp: Any) -> tuple[Any, Any]:
    """The septic smoothstep S(x) = 35 x^4 - 84 x^5 + 70 x^6 - 20 x^7 on x clipped to [0, 1]
    (three continuous derivatives, S(x) + S(1 - x) = 1) and S'(x) = 140 x^3 (1 - x)^3."""
    x = xp.minimum(xp.maximum(x, 0.0 * x), 0.0 * x + 1.0)
    x3 = x * x * x
    return x3 * x * (35.0 + x * (-84.0 + x * (70.0 - 20.0 * x))), 140.0 * x3 * (1.0 - x) ** 3


def learnt_initial_model(model: Parametric, lead: float, *, dim: int = 2) -> Parametric:
    """004 ("Conditions + Learnt Initialisations": "We can also learn the initial
    condition") within an interface whose initial state is data.  The state (`dim`
    coordinates) gains a clock s (ds/dt = 1); the solve starts at s = -`lead` from the
    observed initial state, and

        du/dt = (1 - b(s)) y0_offset / (lead / 2) + b(s) f(u),   b(s) = S((s + lead) / lead),

    with S the septic smoothstep: b = 0 at s = -lead, 1 from s = 0 on, so after t = 0 the
    state follows `model` exactly, and u(0), the learnt initial condition, is the observed
    state plus y0_offset plus what f adds while b ramps up.  A smooth ramp rather than a
    switch: a jump of the field at t = 0 would cost RK4 its accuracy (its last stage before
    and first stage after t = 0 are the same point) and the adaptive solvers' error control.
    """
    half = 0.5 * lead

    def field(params: Params, y: Any, xp: Any) -> Any:
        u, s = y[:, :dim], y[:, dim]
        b, _ = smoothstep((s + lead) / lead, xp)
        b = b[:, None]
        out = (1.0 - b) * (params[Y0_OFFSET] / half) + b * model.field(params, u, xp)
        return xp.concat([out, (0.0 * s + 1.0)[:, None]], axis=1)

    def vjp(params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        u, s, a_u = y[:, :dim], y[:, dim], a[:, :dim]
        b, db = smoothstep((s + lead) / lead, np)
        a_inner, a_p = model.vjp(params, u, b[:, None] * a_u)
        a_p = {k: v for k, v in a_p.items() if k != Y0_OFFSET}
        a_p[Y0_OFFSET] = np.sum((1.0 - b)[:, None] * a_u, axis=0) / half
        f = model.field(params, u, np)
        a_s = np.sum(a_u * (f - params[Y0_OFFSET] / half), axis=1) * db / lead
        return np.concatenate([a_inner, a_s[:, None]], axis=1), a_p

    def initial(seed: int) -> Params:
        return {**model.init_params(seed), Y0_OFFSET: np.zeros(dim)}

    return Parametric(name=f"{model.name}, learnt initial condition", field=field, vjp=vjp, initial=initial)


def clock_augmented(plain: Dataset, lead: float, seed: int) -> Dataset:
    """The data of `learnt_initial_model` from the plain data: times -`lead` (before
    t_0), t_0, t_1, ...; states (plain state, t), starting from the observed (noisy)
    initial state; no backward window; `seed` noted in `truth`."""
    t = np.concatenate([[plain.t[0] - lead], plain.t])
    clock = lambda times, n: np.broadcast_to(times[:, None, None], (len(times), n, 1))

    def augment(times: np.ndarray, states: np.ndarray) -> np.ndarray:
        return np.concatenate([states, clock(times, states.shape[1])], axis=2)

    y = augment(t, np.concatenate([plain.y[:1], plain.y]))
    y_true = augment(t, np.concatenate([plain.y[:1], plain.y_true]))
    return Dataset(
        t=t,
        y=y,
        y0=y[0].copy(),
        y_true=y_true,
        t_forward=plain.t_forward,
        y_forward=augment(plain.t_forward, plain.y_forward),
        truth={**plain.truth, "seed": seed},
    )


def lead_in_predictor(predict: Predictor, observed: np.ndarray, lead: float, *, dim: int = 2) -> Predictor:
    """A predictor on the plain state (`dim` coordinates) from a back-end's predictor on
    the clock-augmented one: it first runs the lead-in from `observed` (the augmented
    initial state at s = -`lead`) to the learnt initial state, then solves from there
    (with the clock far past the lead-in, so it also runs backward)."""

    def plain(times: np.ndarray, y0: np.ndarray) -> np.ndarray:
        start = np.asarray(predict(np.array([-lead, 0.0]), observed))[-1, :, :dim]
        late = np.concatenate([start, np.full((len(start), 1), LATE)], axis=1)
        return np.asarray(predict(np.asarray(times) - float(times[0]), late))[:, :, :dim]

    return plain
