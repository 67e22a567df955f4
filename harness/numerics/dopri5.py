"""Dormand-Prince 5(4) with dense output, written by hand for the NumPy adjoint.

The method is that of `scipy.integrate.RK45`, step for step: the Dormand-Prince tableau
(Dormand and Prince, J. Comput. Appl. Math. 6, 1980), the 4th-order error estimate, the
step-size controller of Hairer, Norsett and Wanner, *Solving ODEs I*, §II.4 (safety 0.9,
factors in [0.2, 10], exponent -1/5, no growth right after a rejection), the initial step
of the same section, and Shampine's 4th-order continuous extension (Math. Comp. 46, 1986)
for dense output.  Given the same tolerances it takes the same steps as SciPy and counts
the same evaluations, so records stay comparable; it costs far less per step, because one
step here is a handful of whole-array operations and SciPy's `OdeSolver` machinery
(validation, wrappers, `OdeSolution`'s search) is left out.  Tests check it against
`scipy.integrate.RK45` and `solve_ivp`.

`controlled = m` takes the error norm over the first m components only (the seminorm of
Kidger, Chen and Lyons, ICML 2021, when the rest is an integral that feeds nothing back).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable

import numpy as np

__all__ = ["DenseSolution", "Integration", "initial_step", "integrate"]

Field = Callable[[float, np.ndarray], np.ndarray]

C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
A = (
    np.array([1 / 5]),
    np.array([3 / 40, 9 / 40]),
    np.array([44 / 45, -56 / 15, 32 / 9]),
    np.array([19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]),
    np.array([9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]),
)
B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
#: 5th minus 4th order weights, over the seven stages (the last is f at the new point)
E = np.array([-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40])
#: Shampine's continuous extension: y(t_old + x h) = y_old + h K^T P (x, x^2, x^3, x^4)
P = np.array(
    [
        [1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
        [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
        [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
        [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
        [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
    ]
)
#: A and B as rows over (y, k_1, ..., k_7): row s-1 combines stage s's state, row 5 the new
#: state; column 0 (y's weight) is set to 1 after the rows are scaled by the step
TABLEAU = np.zeros((6, 8))
for _s, _a in enumerate((*A, B)):
    TABLEAU[_s, 1 : _a.size + 1] = _a
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
ERROR_EXPONENT = -1 / 5
#: SciPy's floor on the relative tolerance
MIN_RTOL = 100 * np.finfo(float).eps


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(x @ x) / x.size)


class DenseSolution:
    """The continuous solution of one `integrate` call: one interpolant per step, and
    `__call__(t)` the value at a time inside the integrated span (the step containing t
    found by bisection, as `scipy.integrate.OdeSolution` does)."""

    def __init__(self, t0: float, direction: float) -> None:
        self.direction = direction
        #: step boundaries in increasing order of direction * t
        self._keys: list[float] = [direction * t0]
        #: per step: t_old, h and the (5, n) rows (y_old, h Q) of its polynomial in x
        self._steps: list[tuple[float, float, np.ndarray]] = []

    def add(self, t_old: float, t_new: float, y_old: np.ndarray, K: np.ndarray) -> None:
        """Record the step from (t_old, y_old) to t_new with stages `K` (7, n)."""
        self._keys.append(self.direction * t_new)
        h = t_new - t_old
        self._steps.append((t_old, h, np.vstack((y_old, h * (P.T @ K)))))

    def __len__(self) -> int:
        return len(self._steps)

    def __call__(self, t: float) -> np.ndarray:
        i = bisect.bisect_left(self._keys, self.direction * t) - 1
        t_old, h, rows = self._steps[min(max(i, 0), len(self._steps) - 1)]
        x = (t - t_old) / h
        x2 = x * x
        return np.dot(np.array((1.0, x, x2, x2 * x, x2 * x2)), rows)


@dataclasses.dataclass
class Integration:
    """What `integrate` returns.

    - `y`: the state at `t_bound` (the last accepted state when the solve failed).
    - `y_eval`: (len(t_eval), n) values at `t_eval` from the dense output, or None.
    - `dense`: the `DenseSolution` when asked for, else None.
    - `nfev`: right-hand-side evaluations, counted as SciPy counts them.
    - `h_abs`: the step size proposed for a next step (to carry into a restart).
    - `steps`, `rejected`: accepted and rejected steps.
    - `failure`: None on success, else why the solve stopped.
    """

    y: np.ndarray
    y_eval: np.ndarray | None
    dense: DenseSolution | None
    nfev: int
    h_abs: float
    steps: int
    rejected: int
    failure: str | None = None


def initial_step(
    fun: Field,
    t0: float,
    y0: np.ndarray,
    f0: np.ndarray,
    t_bound: float,
    rtol: float,
    atol: float,
    controlled: int,
) -> float:
    """Hairer, Norsett and Wanner's starting step (§II.4), as `scipy.integrate`'s
    `select_initial_step` for order 4; one evaluation of `fun`."""
    length = abs(t_bound - t0)
    if length == 0:
        return 0.0
    direction = 1.0 if t_bound >= t0 else -1.0
    m = controlled
    scale = atol + np.abs(y0[:m]) * rtol
    d0, d1 = _rms(y0[:m] / scale), _rms(f0[:m] / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, length)
    if not h0 > 0:  # |f0| overflowed (or is NaN): no usable estimate, the solve will fail
        return 0.0
    f1 = fun(t0 + h0 * direction, y0 + h0 * direction * f0)
    d2 = _rms((f1[:m] - f0[:m]) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * h0, h1, length)


def integrate(
    fun: Field,
    t0: float,
    y0: np.ndarray,
    t_bound: float,
    *,
    rtol: float,
    atol: float,
    first_step: float | None = None,
    t_eval: np.ndarray | None = None,
    dense: bool = False,
    controlled: int | None = None,
) -> Integration:
    """Solve dy/dt = fun(t, y) from (t0, y0) to t_bound (either direction) by
    Dormand-Prince 5(4) at `rtol` / `atol`.

    `first_step` skips the initial-step estimate (one evaluation fewer), `t_eval` (monotone
    in the direction of integration, inside the span) asks for dense-output values there,
    `dense` for the whole `DenseSolution`, `controlled` limits the error norm to the first
    components.  Never raises on a failed solve: `Integration.failure` says why.  Each
    result of `fun` is copied before `fun` is called again, so `fun` may return one
    reused buffer.
    """
    t0, t_bound = float(t0), float(t_bound)  # Python floats: faster scalar arithmetic
    y = np.array(y0, dtype=np.float64)
    n = y.size
    m = n if controlled is None else controlled
    rtol = max(rtol, MIN_RTOL)
    direction = 1.0 if t_bound >= t0 else -1.0
    # rows: y at the step's start, then the seven stages k_1..k_7 (k_7 = f at the new point)
    YK = np.empty((8, n))
    K = YK[1:]
    YK[1] = fun(t0, y)
    nfev = 1
    if first_step is None:
        h_abs = initial_step(fun, t0, y, YK[1].copy(), t_bound, rtol, atol, m)
        nfev += int(t_bound != t0)
    else:
        h_abs = min(abs(first_step), abs(t_bound - t0))
    n_eval = 0 if t_eval is None else len(t_eval)
    y_eval = None if t_eval is None else np.empty((n_eval, n))
    solution = DenseSolution(t0, direction) if dense else None
    t, i_eval, steps, n_rejected = t0, 0, 0, 0
    abs_y = np.abs(y[:m])
    failure: str | None = None
    # each row: (1, h a_s1, ..., h a_ss) over (y, k_1, ..., k_s), rewritten in place at each
    # step; views built once, so that a stage costs one dot product
    coef = np.empty_like(TABLEAU)
    stage_rows = [(coef[s - 1, : s + 1], YK[: s + 1], YK[s + 1], C[s]) for s in range(1, 6)]
    new_row, new_rows = coef[5, :7], YK[:7]

    while direction * (t - t_bound) < 0:
        min_step = 10 * abs(math.nextafter(t, direction * math.inf) - t)
        h_abs = max(h_abs, min_step)
        rejected = False
        YK[0] = y
        while True:
            if h_abs < min_step:
                failure = "Required step size is less than spacing between numbers."
                break
            t_new = t + h_abs * direction
            if direction * (t_new - t_bound) > 0:
                t_new = t_bound
            h = t_new - t
            h_abs = abs(h)
            np.multiply(TABLEAU, h, out=coef)
            coef[:, 0] = 1.0
            for row, rows, stage, c in stage_rows:
                stage[...] = fun(t + c * h, np.dot(row, rows))
            y_new = np.dot(new_row, new_rows)
            YK[7] = fun(t_new, y_new)
            nfev += 6
            error_estimate = np.dot(E, K) if m == n else np.dot(E, K)[:m]
            abs_new = np.abs(y_new if m == n else y_new[:m])
            scale = np.maximum(abs_y, abs_new)
            scale *= rtol
            scale += atol
            error_estimate /= scale
            error = h_abs * _rms(error_estimate)
            if error < 1:
                factor = MAX_FACTOR if error == 0 else min(MAX_FACTOR, SAFETY * error**ERROR_EXPONENT)
                h_abs *= min(1.0, factor) if rejected else factor
                break
            # a non-finite error (a blow-up inside the step) shrinks the step as SciPy does
            factor = SAFETY * error**ERROR_EXPONENT if math.isfinite(error) else MIN_FACTOR
            h_abs *= max(MIN_FACTOR, factor)
            rejected = True
            n_rejected += 1
        if failure is not None:
            break
        steps += 1
        if solution is not None or (y_eval is not None and i_eval < n_eval):
            if solution is not None:
                solution.add(t, t_new, y, K)
            if y_eval is not None and t_eval is not None:
                Q, span = None, t_new - t
                while i_eval < n_eval and direction * (t_eval[i_eval] - t_new) <= 0:
                    Q = P.T @ K if Q is None else Q
                    x = (t_eval[i_eval] - t) / span
                    x2 = x * x
                    y_eval[i_eval] = y + span * (np.array((x, x2, x2 * x, x2 * x2)) @ Q)
                    i_eval += 1
        t, y, abs_y = t_new, y_new, abs_new
        YK[1] = YK[7]
    return Integration(y, y_eval, solution, nfev, h_abs, steps, n_rejected, failure)
