"""The hybrid Lotka-Volterra model of 004 ("Neural ODEs: version 2": mechanistic
Lotka-Volterra with a neural correction inside the predation term), the formula its
correction is read out as ("Retrain all parameters differentiably"), both as `Parametric`
specs with hand-written NumPy VJPs, and the slides' retrained model used as the truth."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from harness.core.models import MLP, Parametric, Params
from tasks._common.symbolic import Monomial

__all__ = [
    "MECHANISTIC",
    "STATE_NAMES",
    "TRUTH",
    "Y0",
    "formula_field",
    "formula_model",
    "formula_string",
    "formula_vjp",
    "hybrid_field",
    "hybrid_init",
    "hybrid_model",
    "hybrid_vjp",
    "true_field",
]

#: the mechanistic parameters (004 "Parameterised ODEs")
MECHANISTIC = ("alpha", "beta", "gamma", "delta")
STATE_NAMES = ("rabbit", "cat")
#: the slides' retrained model (004, "Symbolic regression"), used as the ground truth:
#: d rabbit/dt = 0.9 rabbit - 1.1 rabbit cat, d cat/dt = -1.2 cat + 2.1 rabbit cat^0.95
TRUTH = {"alpha": 0.9, "beta": 1.1, "gamma": 1.2, "delta": 2.1, "cat_power": 0.95}
#: rabbit(0) = 2, cat(0) = 1 (004, "From traditional parameterised modelling to neural ODEs")
Y0 = np.array([2.0, 1.0])


def true_field(y: Any, xp: Any = None) -> Any:
    """The ground truth of 004's final slide on "Symbolic regression" (array API)."""
    xp = xp if xp is not None else array_api_compat.array_namespace(y)
    r, c = y[..., 0], y[..., 1]
    dr = TRUTH["alpha"] * r - TRUTH["beta"] * r * c
    dc = -TRUTH["gamma"] * c + TRUTH["delta"] * r * c ** TRUTH["cat_power"]
    return xp.stack([dr, dc], axis=-1)


# -- the hybrid model: mechanistic LV + NN correction inside the predation term -----------


def _nn_params(params: Params, mlp: MLP) -> Params:
    return {k: params[f"nn_{k}"] for k in mlp.init_params(0)}


def hybrid_field(mlp: MLP, params: Params, y: Any, xp: Any) -> Any:
    """004 "Neural ODEs: version 2": d rabbit/dt = alpha rabbit - beta rabbit cat,
    d cat/dt = -gamma cat + delta rabbit (cat + NN(rabbit, cat)), NN = `mlp` (2 -> 1)."""
    r, c = y[:, 0], y[:, 1]
    correction = mlp.rhs(_nn_params(params, mlp), y, xp)[:, 0]
    dr = params["alpha"] * r - params["beta"] * r * c
    dc = -params["gamma"] * c + params["delta"] * r * (c + correction)
    return xp.stack([dr, dc], axis=-1)


def hybrid_vjp(mlp: MLP, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
    """Hand-written NumPy VJP of `hybrid_field`; the NN part is `MLP.vjp_numpy` with the
    cotangent a_cat * delta * rabbit."""
    r, c, a1, a2 = y[:, 0], y[:, 1], a[:, 0], a[:, 1]
    nnp = _nn_params(params, mlp)
    correction = mlp.rhs(nnp, y, np)[:, 0]
    g = (a2 * params["delta"] * r)[:, None]
    a_nn_y, a_nn = mlp.vjp_numpy(nnp, y, g)
    a_r = a1 * (params["alpha"] - params["beta"] * c) + a2 * params["delta"] * (c + correction)
    a_c = -a1 * params["beta"] * r + a2 * (params["delta"] * r - params["gamma"])
    a_y = np.stack([a_r, a_c], axis=1) + a_nn_y
    a_p: Params = {
        "alpha": np.sum(a1 * r),
        "beta": -np.sum(a1 * r * c),
        "gamma": -np.sum(a2 * c),
        "delta": np.sum(a2 * r * (c + correction)),
    }
    a_p.update({f"nn_{k}": v for k, v in a_nn.items()})
    return a_y, a_p


def hybrid_init(mlp: MLP, seed: int, *, init_scale: float) -> Params:
    """Mechanistic parameters 1 (004 "Parameterised ODEs": alpha = beta = gamma = delta = 1);
    NN hidden layer at PyTorch's default initialisation, output layer multiplied by
    `init_scale`, so the learnt correction starts near zero (004 "Tricks-of-the-trade":
    "start your learnt correction near zero")."""
    nn = mlp.init_params(seed)
    last = mlp.n_layers - 1
    nn[f"W{last}"] = nn[f"W{last}"] * init_scale
    nn[f"b{last}"] = nn[f"b{last}"] * init_scale
    return {**{k: np.array(1.0) for k in MECHANISTIC}, **{f"nn_{k}": v for k, v in nn.items()}}


def hybrid_model(mlp: MLP, *, init_scale: float = 1e-3) -> Parametric:
    """The hybrid model of 004 "Neural ODEs: version 2" as a `Parametric` spec."""
    return Parametric(
        name=f"hybrid Lotka-Volterra + MLP {'-'.join(map(str, mlp.sizes))} {mlp.activation} (004)",
        field=functools.partial(hybrid_field, mlp),
        vjp=functools.partial(hybrid_vjp, mlp),
        initial=functools.partial(hybrid_init, mlp, init_scale=init_scale),
    )


# -- the found formula, retrained ------------------------------------------------------------


def formula_field(terms: Sequence[Monomial], params: Params, y: Any, xp: Any) -> Any:
    """d rabbit/dt = alpha rabbit - beta rabbit cat,
    d cat/dt = -gamma cat + rabbit sum_k w_k rabbit^i_k cat^p_k; the power of cat is the
    parameter `p{k}` where there is one, else the term's fixed power."""
    r, c = y[:, 0], y[:, 1]
    total = 0.0 * r
    for k, term in enumerate(terms):
        i, p = term.powers
        value = params[f"w{k}"] + 0.0 * r
        if i:
            value = value * (r if i == 1 else r**i)
        if f"p{k}" in params:
            value = value * c ** params[f"p{k}"]
        elif p:
            value = value * (c if p == 1 else c**p)
        total = total + value
    dr = params["alpha"] * r - params["beta"] * r * c
    dc = -params["gamma"] * c + r * total
    return xp.stack([dr, dc], axis=-1)


def formula_vjp(
    terms: Sequence[Monomial], params: Params, y: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, Params]:
    """Hand-written NumPy VJP of `formula_field`."""
    r, c, a1, a2 = y[:, 0], y[:, 1], a[:, 0], a[:, 1]
    a_r = a1 * (params["alpha"] - params["beta"] * c)
    a_c = -a1 * params["beta"] * r - a2 * params["gamma"]
    a_p: Params = {"alpha": np.sum(a1 * r), "beta": -np.sum(a1 * r * c), "gamma": -np.sum(a2 * c)}
    for k, term in enumerate(terms):
        i, p = term.powers
        p = float(params[f"p{k}"]) if f"p{k}" in params else p
        w = params[f"w{k}"]
        value = Monomial((i, p))(y)  # rabbit^i cat^p
        # d/d rabbit of rabbit^(i+1) cat^p = (i + 1) value; d/d cat = p rabbit^(i+1) cat^(p-1)
        a_r = a_r + a2 * w * (i + 1) * value
        if p:
            a_c = a_c + a2 * w * p * r * Monomial((i, p - 1))(y)
        a_p[f"w{k}"] = np.sum(a2 * r * value)
        if f"p{k}" in params:
            a_p[f"p{k}"] = np.sum(a2 * w * r * value * np.log(c))
    return np.stack([a_r, a_c], axis=1), a_p


def formula_model(terms: Sequence[Monomial], initial: Params) -> Parametric:
    """The found formula (004, "Retrain all parameters differentiably") as a `Parametric`
    spec starting from `initial` (keys alpha, beta, gamma, w0.., p0.. as in `formula_field`)."""
    terms = tuple(terms)
    initial = {k: np.asarray(v, dtype=np.float64) for k, v in initial.items()}
    return Parametric(
        name="retrained formula: " + " + ".join(t.name(STATE_NAMES) for t in terms),
        field=functools.partial(formula_field, terms),
        vjp=functools.partial(formula_vjp, terms),
        initial=lambda seed: dict(initial),
    )


def formula_string(terms: Sequence[Monomial], params: Params) -> str:
    """The retrained formula for d cat/dt as text, e.g. `-1.2 cat + rabbit (2.1 cat^0.95)`."""
    parts = []
    for k, term in enumerate(terms):
        i, p = term.powers
        p = float(params[f"p{k}"]) if f"p{k}" in params else p
        parts.append(f"{float(params[f'w{k}']):+.4g} {Monomial((i, round(p, 4))).name(STATE_NAMES)}")
    return f"d cat/dt = {-float(params['gamma']):.4g} cat + rabbit ({' '.join(parts)})"
