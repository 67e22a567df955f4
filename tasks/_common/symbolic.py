"""Sparse symbolic regression of a learnt function over a library of candidate terms.

004 (slides "Symbolic regression", "vs SINDy?"): sample the learnt correction y_i =
NN(x_i) at ~10k states, regress y against a library of candidate terms with a sparse
method ("PySR, Lasso, ..."), then retrain the found formula differentiably.  Unlike SINDy,
which regresses estimated derivatives d(state)/dt, the target here is the network's output
itself, so no derivative estimate is needed.

The candidate terms are generalised monomials prod_j x_j^p_j (real exponents, positive
states), which cover the slides' answer y = cat^0.9 - cat + 0.5 cat^2.  Two sparse
methods, both plain NumPy:

- `stlsq`: sequentially thresholded least squares (SINDy's STLSQ, Brunton, Proctor & Kutz,
  PNAS 2016), with the threshold on each term's contribution (coefficient times the
  column's root mean square) relative to the target's root mean square, so that it does
  not depend on the scale of the terms;
- `best_subset`: exhaustive least squares over all subsets of at most `max_terms` terms,
  the smallest subset whose residual is within `tol` of the target (L0-sparse; the
  candidate powers of one variable are nearly collinear, which makes thresholded least
  squares unstable, and a small library makes exhaustive search cheap).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Monomial", "SparseFit", "best_subset", "design_matrix", "stlsq"]


@dataclasses.dataclass(frozen=True)
class Monomial:
    """The candidate term prod_j x_j ** powers[j] of a state x (B, N); powers may be real.

    Written against the array API (`xp`), so that a formula built from terms runs on
    every back-end; states are assumed positive where a power is not an integer.
    """

    powers: tuple[float, ...]

    def __call__(self, x: Any, xp: Any = np) -> Any:
        out = None
        for j, p in enumerate(self.powers):
            if p == 0:
                continue
            factor = x[:, j] if p == 1 else x[:, j] ** p
            out = factor if out is None else out * factor
        return 0.0 * x[:, 0] + 1.0 if out is None else out

    def name(self, names: Sequence[str]) -> str:
        parts = []
        for n, p in zip(names, self.powers, strict=True):
            if p == 0:
                continue
            parts.append(n if p == 1 else f"{n}^{p:g}")
        return " ".join(parts) or "1"

    def grad(self, x: np.ndarray) -> np.ndarray:
        """d term / d x, shape (B, N) (NumPy)."""
        cols = []
        for j, p in enumerate(self.powers):
            if p == 0:
                cols.append(np.zeros(x.shape[0]))
                continue
            rest = Monomial(tuple(q if i != j else 0.0 for i, q in enumerate(self.powers)))(x)
            cols.append(rest * p * x[:, j] ** (p - 1))
        return np.stack(cols, axis=1)


def design_matrix(terms: Sequence[Monomial], x: np.ndarray) -> np.ndarray:
    """The library evaluated at states `x` (B, N): shape (B, len(terms))."""
    return np.stack([np.asarray(t(x)) for t in terms], axis=1)


@dataclasses.dataclass(frozen=True)
class SparseFit:
    """A sparse regression's answer: coefficients over the library (zeros where dropped),
    the kept indices and the relative residual ||y - Theta xi|| / ||y||."""

    coef: np.ndarray
    kept: tuple[int, ...]
    rel_residual: float


def _lstsq(theta: np.ndarray, y: np.ndarray, cols: Sequence[int], ridge: float = 0.0) -> np.ndarray:
    """Least squares on the columns `cols` scaled to unit norm, with a ridge penalty
    `ridge` times the squared norm of the scaled coefficients (SINDy's STLSQ uses one)."""
    coef = np.zeros(theta.shape[1])
    if cols:
        sub = theta[:, list(cols)]
        scale = np.linalg.norm(sub, axis=0)
        scale[scale == 0] = 1.0
        a = sub / scale
        if ridge > 0:
            sol = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y)
        else:
            sol = np.linalg.lstsq(a, y, rcond=None)[0]
        coef[list(cols)] = sol / scale
    return coef


def _residual(theta: np.ndarray, y: np.ndarray, coef: np.ndarray) -> float:
    return float(np.linalg.norm(y - theta @ coef) / max(np.linalg.norm(y), 1e-300))


def stlsq(
    theta: np.ndarray, y: np.ndarray, *, threshold: float = 0.05, ridge: float = 0.0, max_iter: int = 20
) -> SparseFit:
    """Sequentially thresholded least squares (SINDy's STLSQ).

    **Arguments:**

    - `theta`: the library at the samples, (S, K); `y`: the targets, (S,).
    - `threshold`: a term is dropped when |coef| * rms(column) < threshold * rms(y).
    - `ridge`: ridge penalty on the coefficients of the unit-norm columns (0: plain least
      squares; nearly collinear columns need one, or their coefficients cancel in pairs).
    - `max_iter`: refits at most this many times (it stops when the kept set is stable).

    **Returns:** a `SparseFit`.
    """
    rms_y = max(float(np.sqrt(np.mean(y * y))), 1e-300)
    rms_cols = np.sqrt(np.mean(theta * theta, axis=0))
    kept = list(range(theta.shape[1]))
    coef = _lstsq(theta, y, kept, ridge)
    for _ in range(max_iter):
        big = [k for k in kept if abs(coef[k]) * rms_cols[k] >= threshold * rms_y]
        if big == kept:
            break
        kept = big
        coef = _lstsq(theta, y, kept, ridge)
    coef = _lstsq(theta, y, kept)  # the kept terms' unpenalised least-squares fit
    return SparseFit(coef, tuple(kept), _residual(theta, y, coef))


def best_subset(theta: np.ndarray, y: np.ndarray, *, max_terms: int = 3, tol: float = 0.01) -> SparseFit:
    """The smallest subset of library columns whose least-squares fit has relative
    residual at most `tol`; where none has, the best subset of `max_terms` terms.

    **Arguments:** `theta` (S, K), `y` (S,), `max_terms`, `tol`.

    **Returns:** a `SparseFit`.
    """
    best: SparseFit | None = None
    for size in range(1, max_terms + 1):
        best = None
        for cols in itertools.combinations(range(theta.shape[1]), size):
            coef = _lstsq(theta, y, cols)
            res = _residual(theta, y, coef)
            if best is None or res < best.rel_residual:
                best = SparseFit(coef, cols, res)
        if best is not None and best.rel_residual <= tol:
            return best
    assert best is not None
    return best
