"""Reading a learnt correction of the hybrid Lotka-Volterra model out as a formula (004,
"Symbolic regression"): the library of candidate terms, the sparse regression of the
predation response, the found formula's starting point for retraining, and the results
as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.core.models import Params
from tasks._common.hybrid_lv import STATE_NAMES, formula_string
from tasks._common.symbolic import Monomial, SparseFit, best_subset, design_matrix, stlsq

__all__ = [
    "cat_power_library",
    "formula_start",
    "found_info",
    "found_nn_string",
    "regress_correction",
    "retrained_info",
]


def cat_power_library(powers: Sequence[float], *, rabbit: bool = False) -> tuple[Monomial, ...]:
    """The candidate terms of the correction: 1, cat^2 and cat^p for every p in `powers`
    (cat^1 included); with `rabbit`, also rabbit, rabbit^2 and rabbit cat."""
    terms = [Monomial((0.0, 0.0))]
    if rabbit:
        terms += [Monomial((1.0, 0.0)), Monomial((2.0, 0.0)), Monomial((1.0, 1.0))]
    cats = sorted({float(p) for p in powers} | {1.0, 2.0})
    return tuple(terms + [Monomial((0.0, p)) for p in cats])


def regress_correction(
    x: np.ndarray,
    nn: np.ndarray,
    library: tuple[Monomial, ...],
    *,
    target: str,
    regression: str,
    max_terms: int,
    tol: float,
) -> SparseFit:
    """Sparse regression of rabbit NN(rabbit, cat) (`target` = "nn", the slides'
    y = NN) or of rabbit (cat + NN(rabbit, cat)) (`target` = "response", the whole
    predation response up to delta) on rabbit times the `library` terms, from the states
    `x` (n, 2) and the NN's output `nn` (n,) there; `regression` "subset" (at most
    `max_terms` terms within relative residual `tol`) or "stlsq" (threshold `tol`).

    **Returns:** the fit, `fit.coef` over the whole library."""
    if target == "response":
        nn = nn + x[:, 1]
    elif target != "nn":
        raise ValueError(f"unknown target {target!r}; choose from nn, response")
    weight = x[:, 0]
    theta = design_matrix(library, x) * weight[:, None]
    if regression == "subset":
        return best_subset(theta, nn * weight, max_terms=max_terms, tol=tol)
    if regression == "stlsq":
        return stlsq(theta, nn * weight, threshold=tol)
    raise ValueError(f"unknown regression {regression!r}; choose from subset, stlsq")


def formula_start(
    params: Params, library: Sequence[Monomial], fit: SparseFit, *, response: bool
) -> tuple[tuple[Monomial, ...], Params]:
    """The formula's terms (the mechanistic cat term and the found ones) and its initial
    parameters: alpha, beta, gamma of the hybrid, w_k = delta (xi_k + [term is cat]) for
    a fit of the NN (delta xi_k with `response`, a fit of the whole predation response),
    and p_k = the power of cat of every found term with one (the powers are retrained too,
    so a grid point near the true power is enough)."""
    cat = Monomial((0.0, 1.0))
    kept = [library[k] for k in fit.kept]
    # with `response`, the fit already holds the mechanistic cat term
    terms = tuple(kept if cat in kept or response else [cat, *kept])
    delta = float(params["delta"])
    coef = {library[k]: float(fit.coef[k]) for k in fit.kept}
    initial: Params = {k: np.asarray(params[k]) for k in ("alpha", "beta", "gamma")}
    for k, term in enumerate(terms):
        initial[f"w{k}"] = np.asarray(delta * (coef.get(term, 0.0) + (term == cat and not response)))
        if term in kept and term.powers[1] != 0:
            initial[f"p{k}"] = np.asarray(term.powers[1])
    return terms, initial


def found_info(library: Sequence[Monomial], fit: SparseFit, *, response: bool) -> dict[str, Any]:
    """What the regression found (JSON-able)."""
    return {
        "found_terms": [library[k].name(STATE_NAMES) for k in fit.kept],
        "found_coefficients": [float(fit.coef[k]) for k in fit.kept],
        "found_rel_residual": fit.rel_residual,
        "found_nn": found_nn_string(library, fit, response=response),
    }


def retrained_info(
    terms: Sequence[Monomial], initial: Params, final: Params, truth: Mapping[str, float]
) -> dict[str, Any]:
    """The retrained formula (JSON-able): as text, its terms, coefficients before and after
    retraining, powers of cat, and alpha, beta, gamma with their errors relative to `truth`."""
    info: dict[str, Any] = {
        "formula": formula_string(terms, final),
        "formula_terms": [t.name(STATE_NAMES) for t in terms],
        "formula_coefficients_initial": [float(initial[f"w{k}"]) for k in range(len(terms))],
        "formula_coefficients": [float(final[f"w{k}"]) for k in range(len(terms))],
        "formula_cat_powers": [
            float(final[f"p{k}"]) if f"p{k}" in final else float(t.powers[1]) for k, t in enumerate(terms)
        ],
    }
    for k in ("alpha", "beta", "gamma"):
        info[f"formula_{k}"] = float(final[k])
        info[f"formula_{k}_rel_error"] = abs(float(final[k]) - truth[k]) / truth[k]
    return info


def found_nn_string(library: Sequence[Monomial], fit: SparseFit, *, response: bool) -> str:
    """What the regression says the NN is, e.g. `NN ~ +1.078 cat^0.95 -1 cat` (with
    `response`, the fit is of cat + NN, so cat is subtracted)."""
    coef = {library[k]: float(fit.coef[k]) for k in fit.kept}
    if response:
        cat = Monomial((0.0, 1.0))
        coef[cat] = coef.get(cat, 0.0) - 1.0
    parts = [f"{c:+.4g} {t.name(STATE_NAMES)}" for t, c in coef.items() if c != 0.0]
    return "NN ~ " + (" ".join(parts) or "0")
