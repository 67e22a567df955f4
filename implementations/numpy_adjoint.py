"""`numpy-adjoint`: the continuous adjoint of 000 §2, written by hand in NumPy and SciPy.

Forward pass: `scipy.integrate.solve_ivp` (RK45).  Backward pass: the adjoint ODE (2.4) for
lambda (the state cotangent, B*N entries) and mu (all parameters, flat), integrated from
t_P down to t_0 one observation interval at a time with SciPy's RK45 at the forward
tolerances.  The Dirac terms of g (2.3) make lambda jump by dL/du(t_i) at every
observation, and the gradient is mu(t_0) (2.5).  Both products of (2.4), (df/du)^T lambda
and (df/dtheta)^T lambda, come from one call of the model's hand-written `vjp_numpy`; no
autodiff library is involved.

u(t) in the backward pass, 000 §2's two methods (`mode`):

- ``interpolate`` (A, the default, 000's choice): the forward solve keeps a dense output
  and the backward pass reads u(t) from that interpolant (memory grows with the steps).
- ``backsolve`` (B): u is solved backwards together with (lambda, mu), from the forward
  solution's final value u(t_P) over the whole horizon, never reset to the forward
  solution (torchdiffeq resets it at every observation time); 000 §2 warns this "may
  yield a different solution compared to the forward pass ... thus resulting in an
  incorrect backward pass".

`seminorm` (Kidger, Chen and Lyons, ICML 2021) leaves mu, an integral that feeds nothing
back, out of the backward step control: SciPy's RMS error norm is then taken over u (in
backsolve mode) and lambda alone (per-component tolerances: infinite for mu, and the
controlled ones scaled so that the norm is the RMS over the controlled components).

The backward solve restarts at every observation time.  Each restart starts from the step
size the controller proposed at the end of the previous interval (`carry_step`, on by
default); a fresh start re-estimates the initial step and begins far too small, which
roughly doubles the backward work (SPEC measurement notes).  `solve_ivp` does not return
that proposal, so the backward pass drives `scipy.integrate.RK45`, the stepper `solve_ivp`
itself runs, directly.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.integrate import RK45, solve_ivp

from harness.core.models import AbstractVectorField, Params
from harness.core.protocols import AbstractImplementation, AbstractTask, TrainCallback, TrainResult
from harness.core.ranges import flag, one_of
from harness.core.registry import register_implementation
from harness.numerics.optim import Adam

__all__ = ["NumpyAdjoint"]

#: floating-point warnings are silenced inside the solves: a blow-up surfaces as a failed
#: solve or a non-finite result, which raise RuntimeError with one line instead
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore")


@register_implementation
class NumpyAdjoint(AbstractImplementation):
    """Hand-written continuous adjoint (000 §2, eqs. 2.4-2.5) on NumPy/SciPy.

    **Options:**

    - `carry_step`: start each backward interval from the step size proposed at the end of
      the previous one (default True); False re-estimates it at every observation time.
    - `mode`: ``"interpolate"`` (000 §2 method (A), default) or ``"backsolve"`` (method (B)).
    - `seminorm`: backward step control on u and lambda only (default False).

    Works in float64 throughout: SciPy's solvers integrate in float64, so with
    `dtype="float32"` only the stored parameters are single precision.
    """

    name = "numpy-adjoint"
    framework = "numpy/scipy"
    requires = ("numpy", "scipy")
    install = "pip install -c constraints.txt -e ."
    builds = (AbstractVectorField,)
    devices = ("cpu",)
    solver_options = ("rtol", "atol")
    options = {"carry_step": True, "mode": "interpolate", "seminorm": False}
    option_ranges = {"carry_step": flag(), "mode": one_of("interpolate", "backsolve"), "seminorm": flag()}
    framework_memory = "tracemalloc peak of one value-and-grad call"

    @classmethod
    def skip(cls, task: AbstractTask, device: str) -> str | None:
        """As the base class, and only for losses whose jumps (2.3) the task writes out
        (`AbstractTask.loss_cotangent`)."""
        overrides = lambda name: getattr(type(task), name) is not getattr(AbstractTask, name)
        if overrides("loss") and not overrides("loss_cotangent"):
            return f"{cls.name} needs the loss's jumps: {type(task).__name__} has no loss_cotangent"
        return super().skip(task, device)

    def setup(self) -> None:
        self.model = self.task.model
        self.rtol = float(self.solver["rtol"])
        self.atol = float(self.solver["atol"])
        self.tol = {"rtol": self.rtol, "atol": self.atol}
        self.carry_step = bool(self.config["carry_step"])
        self.backsolve = self.config["mode"] == "backsolve"
        self.seminorm = bool(self.config["seminorm"])
        self.np_dtype = np.dtype(self.dtype)
        self.t_obs = np.asarray(self.data.t, dtype=np.float64)
        self.y_obs = np.asarray(self.data.y, dtype=np.float64)
        self.y0 = np.asarray(self.data.y0, dtype=np.float64)
        #: (forward RHS evaluations, backward VJP evaluations) of the last value-and-grad call
        self.last_nfe = (0, 0)

    def load(self, params: Params) -> Params:
        return {k: np.array(v, dtype=self.np_dtype) for k, v in params.items()}

    def to_numpy(self, out: tuple[float, Params]) -> tuple[float, Params]:
        return out

    # -- forward: u(t) by RK45 with dense output (000 §2 step 1) ---------------------------

    def _forward(self, params: Params, times: np.ndarray, y0: np.ndarray, *, dense: bool) -> Any:
        """`solve_ivp` result of du/dt = f(u; params) over `times` (either direction)."""
        shape, rhs = y0.shape, self.model.rhs

        def fun(_t: float, u: np.ndarray) -> np.ndarray:
            return rhs(params, u.reshape(shape), np).ravel()

        # SciPy's initial-step estimate turns a non-finite f(u_0) into a NaN step and then loops
        # for ever, so check it first (one evaluation, counted in the forward NFE)
        if not np.all(np.isfinite(fun(times[0], y0.ravel()))):
            raise RuntimeError(f"{self.name}: non-finite right-hand side at the initial state")
        span = (times[0], times[-1])
        sol = solve_ivp(fun, span, y0.ravel(), method="RK45", t_eval=times, dense_output=dense, **self.tol)
        if not sol.success:
            raise RuntimeError(f"{self.name}: forward solve failed: {sol.message}")
        return sol

    # -- backward: lambda and mu of (2.4), interval by interval, with jumps ------------------

    def _backward(
        self, params: Params, u: Callable[[float], np.ndarray], u_end: np.ndarray, cot: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """mu(t_0) of (2.4)-(2.5) from the loss cotangents `cot` (P, B, N) at the observation
        times; u(t) is the forward interpolant `u` (mode interpolate) or solved backwards
        from `u_end` = u(t_P) (mode backsolve).  Also returns the number of VJPs."""
        shape, vjp, keys = self.y0.shape, self.model.vjp_numpy, list(params)
        n, rhs = self.y0.size, self.model.rhs
        lam = slice(n, 2 * n) if self.backsolve else slice(0, n)

        def adjoint_rhs(t: float, z: np.ndarray) -> np.ndarray:
            # (2.4a-b) without the Dirac terms: d(lambda, mu)/dt = -(lambda^T df/du, lambda^T df/dtheta)
            state = z[:n].reshape(shape) if self.backsolve else u(t).reshape(shape)
            a_u, a_p = vjp(params, state, z[lam].reshape(shape))
            dz = np.concatenate([a_u.ravel(), *[a_p[k].ravel() for k in keys]])
            np.negative(dz, out=dz)
            if self.backsolve:  # du/dt = f(u), integrated backwards alongside
                dz = np.concatenate([rhs(params, state, np).ravel(), dz])
            return dz

        t = self.t_obs
        n_params = sum(np.size(v) for v in params.values())
        z = np.zeros(lam.stop + n_params)  # (2.4c-d): zero at t_P^+
        if self.backsolve:
            z[:n] = u_end.ravel()
        tol = self._adjoint_tolerances(lam.stop, n_params)
        h, nfe = None, 0
        for i in range(len(t) - 1, 0, -1):
            z[lam] += cot[i].ravel()  # jump of lambda at t_i: the Dirac term of g (2.3)
            length = t[i] - t[i - 1]
            if length == 0:
                continue
            first = None if h is None else min(h, length)
            stepper = RK45(adjoint_rhs, t[i], z, t[i - 1], first_step=first, **tol)
            if not np.isfinite(stepper.h_abs):  # a NaN initial step would loop for ever
                raise RuntimeError(f"{self.name}: non-finite adjoint right-hand side at t={t[i]:g}")
            while stepper.status == "running":
                stepper.step()
            nfe += stepper.nfev
            if stepper.status != "finished":
                raise RuntimeError(f"{self.name}: adjoint solve failed at t={stepper.t:g}: {stepper.message}")
            z = stepper.y.copy()
            h = stepper.h_abs if self.carry_step else None
            # SciPy's solvers hold closures over themselves: break that reference cycle, so that
            # each stepper's buffers go now rather than pile up until the next garbage collection
            stepper.fun = stepper.fun_vectorized = None
        return z[lam.stop :], nfe

    def _adjoint_tolerances(self, controlled: int, n_params: int) -> dict[str, Any]:
        """RK45's `rtol` / `atol` for the backward state (controlled components, then mu):
        the forward ones, or with `seminorm` none on mu (infinite `atol`) and the others
        scaled by sqrt(controlled / all), so that SciPy's RMS norm over all components is
        the RMS over the controlled ones."""
        if not self.seminorm:
            return self.tol
        scale = np.sqrt(controlled / (controlled + n_params))
        rtol = np.concatenate([np.full(controlled, self.rtol * scale), np.ones(n_params)])
        atol = np.concatenate([np.full(controlled, self.atol * scale), np.full(n_params, np.inf)])
        return {"rtol": rtol, "atol": atol}

    # -- value and gradient (000 §2 steps 1-3) -------------------------------------------

    def value_and_grad_native(self, native: Params) -> tuple[float, Params]:
        """Loss (2.2) and its gradient mu(t_0) (2.5) at `native` parameters."""
        with np.errstate(**_QUIET):
            sol = self._forward(native, self.t_obs, self.y0, dense=not self.backsolve)
            pred = sol.y.T.reshape(self.y_obs.shape)
            loss = float(self.task.loss(pred, self.y_obs))
            cot = self.task.loss_cotangent(pred, self.y_obs)
            mu, nfe_backward = self._backward(native, sol.sol, sol.y[:, -1], cot)
        if not (np.isfinite(loss) and np.all(np.isfinite(mu))):
            raise RuntimeError(f"{self.name}: non-finite loss or gradient (loss = {loss})")
        self.last_nfe = (int(sol.nfev) + 1, nfe_backward)
        grad, start = {}, 0
        for key, value in native.items():
            grad[key] = mu[start : start + value.size].reshape(value.shape)
            start += value.size
        return loss, grad

    def count_nfe(self, params: Params) -> tuple[int, int]:
        self.value_and_grad_native(self.load(params))
        return self.last_nfe

    def predict(self, params: Params, times: np.ndarray, y0: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=np.float64)
        y0 = np.asarray(y0, dtype=np.float64)
        if times.size < 2 or times[0] == times[-1]:
            return np.repeat(y0[None], times.size, axis=0)
        with np.errstate(**_QUIET):
            sol = self._forward(self.load(params), times, y0, dense=False)
        return sol.y.T.reshape((times.size, *y0.shape))

    # -- training: Adam in NumPy -------------------------------------------------------------

    def train(
        self,
        params: Params,
        *,
        iters: int,
        lr: float,
        callback: TrainCallback | None = None,
    ) -> TrainResult:
        native, adam, history = self.load(params), Adam(lr), []
        start = time.perf_counter()
        for i in range(iters):
            loss, grad = self.value_and_grad_native(native)
            history.append(loss)
            native = adam.step(native, grad)
            if callback is not None and callback(i, loss):
                break
        elapsed = time.perf_counter() - start
        return TrainResult({k: np.asarray(v) for k, v in native.items()}, history, elapsed)

    def framework_peak_bytes(self, params: Params) -> int | None:
        native = self.load(params)
        tracing = tracemalloc.is_tracing()
        if tracing:
            tracemalloc.reset_peak()
        else:
            tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            self.value_and_grad_native(native)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            if not tracing:
                tracemalloc.stop()
        return int(peak - base)
