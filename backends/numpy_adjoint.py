"""`numpy-adjoint`: the continuous adjoint of 000 §2, written by hand in NumPy.

Forward pass: Dormand-Prince 5(4) (`harness.numerics.dopri5`, SciPy's RK45 step for step,
written by hand).  Backward pass: the adjoint ODE (2.4) for lambda (the state cotangent,
B*N entries) and mu (all parameters, flat), integrated from t_P down to t_0 one
observation interval at a time by the same stepper at the forward tolerances.  The Dirac
terms of g (2.3) make lambda jump by dL/du(t_i) at every observation, and the gradient
is mu(t_0) (2.5).  Both products of (2.4), (df/du)^T lambda and (df/dtheta)^T lambda,
come from one call of the model's hand-written `vjp_numpy`; no autodiff library is involved.

u(t) in the backward pass, 000 §2's two methods (`mode`):

- ``interpolate`` (A, the default, 000's choice): the forward solve keeps a dense output
  and the backward pass reads u(t) from that interpolant (memory grows with the steps).
- ``backsolve`` (B): u is solved backwards together with (lambda, mu), from the forward
  solution's final value u(t_P) over the whole horizon, never reset to the forward
  solution (torchdiffeq resets it at every observation time); 000 §2 warns this "may
  yield a different solution compared to the forward pass ... thus resulting in an
  incorrect backward pass".

`seminorm` (Kidger, Chen and Lyons, ICML 2021) leaves mu, an integral that feeds nothing
back, out of the backward step control: the RMS error norm is then taken over u (in
backsolve mode) and lambda alone.

The backward solve restarts at every observation time.  Each restart starts from the step
size the controller proposed at the end of the previous interval (`carry_step`, on by
default); a fresh start re-estimates the initial step and begins far too small, which
roughly doubles the backward work (SPEC measurement notes).

Until December 2026 both passes ran on `scipy.integrate` (`solve_ivp`, `RK45`); the
hand-written stepper takes the same steps (same evaluation counts, gradients equal to
~1e-15 on every task) at about half the cost per evaluation: SciPy's per-step machinery
cost more than the model (`python -m benchmarks.numpy_adjoint_speed`).
"""

from __future__ import annotations

import tracemalloc
import typing

import numpy as np

from harness.core.models import AbstractVectorField, Params
from harness.core.protocols import AbstractBackend, AbstractTask
from harness.core.ranges import flag, one_of
from harness.core.registry import register_backend
from harness.numerics.dopri5 import DenseSolution, Integration, integrate

__all__ = ["NumpyAdjoint"]

#: floating-point warnings are silenced inside the solves: a blow-up surfaces as a failed
#: solve or a non-finite result, which raise RuntimeError with one line instead
_QUIET: dict[str, typing.Any] = dict(over="ignore", invalid="ignore", divide="ignore")


@register_backend
class NumpyAdjoint(AbstractBackend):
    """Hand-written continuous adjoint (000 §2, eqs. 2.4-2.5) in NumPy.

    **Options:**

    - `carry_step`: start each backward interval from the step size proposed at the end of
      the previous one (default True); False re-estimates it at every observation time.
    - `mode`: ``"interpolate"`` (000 §2 method (A), default) or ``"backsolve"`` (method (B)).
    - `seminorm`: backward step control on u and lambda only (default False).

    Works in float64 throughout: its solver integrates in float64, so with
    `dtype="float32"` only the stored parameters are single precision.
    """

    name = "numpy-adjoint"
    framework = "numpy"
    requires = ("numpy",)
    install = "pip install -c constraints.txt -e ."
    builds = (AbstractVectorField,)
    devices = ("cpu",)
    solver_options = ("rtol", "atol")
    options = {"carry_step": True, "mode": "interpolate", "seminorm": False}
    option_ranges = {"carry_step": flag(), "mode": one_of("interpolate", "backsolve"), "seminorm": flag()}
    framework_memory = "tracemalloc peak of one value-and-grad call"

    #: forward solver steps (accepted + rejected) of the last value-and-grad call
    n_steps: int | None = None

    @classmethod
    def skip(cls, task: AbstractTask, device: str) -> str | None:
        """As the base class, and only for losses whose jumps (2.3) the task writes out
        (`AbstractTask.loss_cotangent`)."""
        overrides = lambda name: getattr(type(task), name) is not getattr(AbstractTask, name)
        if overrides("loss") and not overrides("loss_cotangent"):
            return f"{cls.name} needs the loss's jumps: {type(task).__name__} has no loss_cotangent"
        return super().skip(task, device)

    def setup(self) -> None:
        #: what is integrated: the core vector field (the harness composes the rest)
        self.model = self.composed.field
        self.rtol = float(self.solver["rtol"])
        self.atol = float(self.solver["atol"])
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

    def _forward(self, params: Params, times: np.ndarray, y0: np.ndarray, *, dense: bool) -> Integration:
        """Dormand-Prince solve of du/dt = f(u; params) over `times` (either direction):
        the values at `times` (`y_eval`, (len(times), B*N)) and, with `dense`, the interpolant."""
        shape, rhs = y0.shape, self.model.rhs

        def fun(_t: float, u: np.ndarray) -> np.ndarray:
            return rhs(params, u.reshape(shape), np).ravel()

        # a non-finite f(u_0) turns the initial-step estimate into NaN: check it first (one
        # evaluation, counted in the forward NFE)
        if not np.all(np.isfinite(fun(times[0], y0.ravel()))):
            raise RuntimeError(f"{self.name}: non-finite right-hand side at the initial state")
        sol = integrate(
            fun, times[0], y0.ravel(), times[-1], t_eval=times, dense=dense, rtol=self.rtol, atol=self.atol
        )
        if sol.failure is not None:
            raise RuntimeError(f"{self.name}: forward solve failed: {sol.failure}")
        return sol

    # -- backward: lambda and mu of (2.4), interval by interval, with jumps ------------------

    def _backward(
        self, params: Params, u: DenseSolution | None, u_end: np.ndarray, cot: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """lambda(t_0) and mu(t_0) of (2.4)-(2.5) from the loss cotangents `cot` (P, B, N) at
        the observation times; u(t) is the forward interpolant `u` (mode interpolate) or solved
        backwards from `u_end` = u(t_P) (mode backsolve, `u` None).  Also returns the number
        of VJPs."""
        shape, rhs = cot.shape[1:], self.model.rhs
        n = int(np.prod(shape))
        lam = slice(n, 2 * n) if self.backsolve else slice(0, n)

        # (2.4a-b) without the Dirac terms, d(lambda, mu)/dt = -(lambda^T df/du, lambda^T df/dtheta),
        # integrated in s = -t from -t_i to -t_{i-1}: d(lambda, mu)/ds = +(...), no negation per
        # evaluation (the steps are those of the solve in t, to the bit: only signs differ)
        if u is None:  # backsolve: z = (u, lambda, mu), du/ds = -f(u) integrated alongside
            vjp = self.model.flat_vjp_numpy(params, shape, offset=n)

            def adjoint_rhs(s: float, z: np.ndarray) -> np.ndarray:
                state = z[:n].reshape(shape)
                out = vjp(params, state, z[n : 2 * n].reshape(shape))
                np.negative(rhs(params, state, np).ravel(), out=out[:n])
                return out

        else:
            vjp = self.model.flat_vjp_numpy(params, shape)

            def adjoint_rhs(s: float, z: np.ndarray) -> np.ndarray:
                return vjp(params, u(-s).reshape(shape), z[:n].reshape(shape))

        t = self.t_obs
        n_params = sum(np.size(v) for v in params.values())
        z = np.zeros(lam.stop + n_params)  # (2.4c-d): zero at t_P^+
        if self.backsolve:
            z[:n] = u_end.ravel()
        controlled = lam.stop if self.seminorm else None
        h, nfe = None, 0
        for i in range(len(t) - 1, 0, -1):
            z[lam] += cot[i].ravel()  # jump of lambda at t_i: the Dirac term of g (2.3)
            length = t[i] - t[i - 1]
            if length == 0:
                continue
            first = None if h is None else min(h, length)
            step = integrate(
                adjoint_rhs,
                -t[i],
                z,
                -t[i - 1],
                first_step=first,
                controlled=controlled,
                rtol=self.rtol,
                atol=self.atol,
            )
            nfe += step.nfev
            if step.failure is not None:
                raise RuntimeError(
                    f"{self.name}: adjoint solve failed on [{t[i - 1]:g}, {t[i]:g}]: {step.failure}"
                )
            z = step.y
            h = step.h_abs if self.carry_step else None
        return z[lam] + cot[0].ravel(), z[lam.stop :], nfe

    # -- value and gradient (000 §2 steps 1-3) -------------------------------------------

    def value_and_grad_native(self, native: Params) -> tuple[float, Params]:
        """Loss (2.2) and its gradient mu(t_0) (2.5) at `native` parameters."""
        return self._value_and_grad(native, self.y0, self.y_obs)

    def load_batch(self, y0: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(y0, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def value_and_grad_batch(
        self, native: Params, batch: tuple[np.ndarray, np.ndarray]
    ) -> tuple[float, Params]:
        return self._value_and_grad(native, *batch)

    def _value_and_grad(self, native: Params, y0: np.ndarray, obs: np.ndarray) -> tuple[float, Params]:
        """The loss on observations `obs` of the solve from `y0`, and its gradient.  The
        ODE starts from the encoded `y0` and the loss sees the decoded states (the harness's
        `ComposedModel`; both the identity for a bare vector field): the decoder's
        cotangents (by its hand-written VJP) are the adjoint's jumps, and lambda(t_0) goes
        back through the encoder's VJP."""
        comp = self.composed
        core = comp.core_params(native)
        with np.errstate(**_QUIET):
            h0 = comp.encode(native, y0, np)
            sol = self._forward(core, self.t_obs, h0, dense=not self.backsolve)
            assert sol.y_eval is not None
            states = sol.y_eval.reshape((len(self.t_obs), *h0.shape))
            pred = comp.decode(native, states, np)
            loss = float(self.task.loss(pred, obs))
            cot, grads = comp.decode_vjp_numpy(native, states, self.task.loss_cotangent(pred, obs))
            lam0, mu, nfe_backward = self._backward(core, sol.dense, sol.y, cot)
            grads.update(comp.encode_vjp_numpy(native, y0, lam0.reshape(h0.shape)))
        if not (np.isfinite(loss) and np.all(np.isfinite(mu))):
            raise RuntimeError(f"{self.name}: non-finite loss or gradient (loss = {loss})")
        self.last_nfe = (sol.nfev + 1, nfe_backward)
        self.n_steps = sol.steps + sol.rejected
        start = 0
        for key, value in core.items():
            grads[key] = mu[start : start + value.size].reshape(value.shape)
            start += value.size
        return loss, {key: grads[key] for key in native}

    def count_solver_nfe(self, params: Params) -> tuple[int, int]:
        self.value_and_grad_native(self.load(params))
        return self.last_nfe

    def predict(self, params: Params, times: np.ndarray, y0: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=np.float64)
        y0 = np.asarray(y0, dtype=np.float64)
        if times.size < 2 or times[0] == times[-1]:
            return self.composed.stationary(params, times, y0)

        def solve(core: Params, t: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sol = self._forward(core, t, h0, dense=False)
            assert sol.y_eval is not None
            return sol.y_eval.reshape((t.size, *h0.shape)), t

        with np.errstate(**_QUIET):
            return self.composed.states(self.load(params), times, y0, np, solve)[0]

    # -- training: Adam in NumPy -------------------------------------------------------------

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
