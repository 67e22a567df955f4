"""`jax-checkpoint`: diffrax, Tsit5 with PID step control, recursive checkpointing.

Discretise-then-optimise: the gradient is reverse-mode autodiff through the solver's own
steps (diffrax `RecursiveCheckpointAdjoint`, online binomial checkpointing), the method the
004 slides recommend ("Tricks-of-the-trade for nODEs": "Typically use (recursively
checkpointed) discretise-then-optimize. Not optimize-then-discretise!! This only gives
approximate gradients."), with Tsit5, the solver of 000 §3 and of the 004 toy example.
JAX is imported inside methods only, so the registry can list this back-end without it.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.core.composed import ComposedModel
from harness.core.devices import parse_device
from harness.core.models import AbstractMap, AbstractVectorField, Params
from harness.core.protocols import AbstractBackend
from harness.core.ranges import integer
from harness.core.registry import register_backend

__all__ = ["JaxCheckpoint", "jax_device", "solve"]

#: `vector_field(params, y) -> dy/dt` on JAX arrays
VectorField = Callable[[Any, Any], Any]

_DTYPES = ("float64", "float32")


def jax_device(spec: str) -> Any:
    """The JAX device named by `spec` ("cpu", "cuda", "cuda:N": `harness.core.devices.parse_device`).

    **Raises:** `RuntimeError` (one line) when no such device is visible to JAX.
    """
    import jax

    kind, i = parse_device(spec)
    try:
        devices = jax.devices(kind)
    except RuntimeError:
        devices = []
    if i >= len(devices):
        have = ", ".join(str(d) for d in jax.devices()) or "none"
        raise RuntimeError(
            f"jax: device {spec!r} is not available to JAX {jax.__version__} "
            f"(visible: {have}); install a CUDA build of jaxlib or use --device cpu"
        )
    return devices[i]


def default_checkpoints(max_steps: int) -> int:
    """Equinox's checkpoint count for `checkpoints=None` (equinox 0.13,
    `internal/_loop/checkpointed.py`): the smallest c with 2 max_steps < (c + 1)(c + 2),
    for which online checkpointing's recomputation is optimal (Stumm and Walther 2010,
    eq. 2.2)."""
    if max_steps == 1:
        return 1
    return math.floor(-1.5 + math.sqrt(2 * max_steps + 0.25)) + 1


def solve(
    vector_field: VectorField,
    params: Any,
    ts: Any,
    y0: Any,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
    adjoint: Any = None,
    throw: bool = True,
) -> Any:
    """`diffrax.diffeqsolve` of dy/dt = vector_field(params, y) from `ts[0]` to `ts[-1]`,
    saving at `ts`; decreasing `ts` integrate backwards in time (diffrax allows t1 < t0).

    Tsit5 with `dt0=None` (Hairer's initial step selection) and `PIDController(rtol,
    atol)` with diffrax's default coefficients (pcoeff=0, icoeff=1, dcoeff=0: the plain
    integral controller that diffrax's docs recommend for smooth non-stiff problems, and
    the one SciPy and torchdiffeq use, so all back-ends control steps alike).  The error
    norm is diffrax's default RMS norm over the whole batch.  `adjoint` defaults to
    `RecursiveCheckpointAdjoint()`; `params` travel as the `args` of the vector field.

    **Returns:** the `diffrax.Solution` (`.ys` of shape `(len(ts),) + y0.shape`, `.stats`).
    """
    import diffrax

    term = diffrax.ODETerm(lambda t, y, args: vector_field(args, y))
    return diffrax.diffeqsolve(
        term,
        diffrax.Tsit5(),
        ts[0],
        ts[-1],
        None,
        y0,
        params,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        max_steps=max_steps,
        throw=throw,
    )


def _plain_field(model: ComposedModel) -> VectorField:
    import jax.numpy as jnp

    return lambda params, y: model.rhs(params, y, jnp)


def _counted_field(model: ComposedModel, counts: collections.Counter[str]) -> VectorField:
    """The model's vector field wrapped in a `jax.custom_vjp` whose primal, forward
    (linearising) and backward (VJP) rules each tick a Python counter when they run."""
    import jax
    import jax.numpy as jnp

    def tick(kind: str) -> None:
        jax.debug.callback(lambda: counts.update([kind]))

    def f(params: Any, y: Any) -> Any:
        return model.rhs(params, y, jnp)

    @jax.custom_vjp
    def field(params: Any, y: Any) -> Any:
        tick("primal")
        return f(params, y)

    def field_fwd(params: Any, y: Any) -> tuple[Any, Any]:
        tick("fwd")
        return f(params, y), (params, y)

    def field_bwd(res: Any, cotangent: Any) -> Any:
        tick("vjp")
        return jax.vjp(f, *res)[1](cotangent)

    field.defvjp(field_fwd, field_bwd)
    return field


@register_backend
class JaxCheckpoint(AbstractBackend):
    """diffrax `diffeqsolve` with Tsit5 + PID step control and `RecursiveCheckpointAdjoint`
    (discretise-then-optimise, 004 slides), the whole value-and-grad and the whole Adam
    step each under one `jax.jit`.  float64 unless `dtype="float32"`.

    Options: `max_steps` bounds the solver's steps; `checkpoints` is the number of states
    the recursive (binomial) checkpointing keeps, which sets the backward pass's memory
    (diffrax: "roughly equal to the number of checkpoints multiplied by the size of the
    state"); 0 (default) leaves it to equinox, which takes about sqrt(2 max_steps)
    (`default_checkpoints`: 90 for the default 4096 steps).
    """

    name = "jax-checkpoint"
    framework = "jax"
    requires = ("jax", "diffrax", "equinox", "optax")
    install = 'pip install -c constraints.txt -e ".[jax]"'
    builds = (AbstractVectorField, AbstractMap)
    devices = ("cpu", "cuda")
    solver_options = ("rtol", "atol")
    options = {"max_steps": 4096, "checkpoints": 0}
    option_ranges = {"max_steps": integer(1), "checkpoints": integer(0)}
    framework_memory = (
        "XLA compiled memory analysis of the jitted value-and-grad: temp + output bytes "
        "(jit(f).lower(...).compile().memory_analysis())"
    )

    #: solver steps (accepted + rejected) of the last `count_nfe` call
    n_steps: int | None = None

    # -- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)  # before any array is created
        if self.dtype not in _DTYPES:
            raise ValueError(f"{self.name}: dtype must be one of {_DTYPES}, not {self.dtype!r}")
        self._device = jax_device(self.device)
        self._keys = list(self.task.init_params(0))
        self._args = tuple(self._put(a) for a in (self.data.t, self.data.y0, self.data.y))
        #: what the solver integrates (a discrete core is applied by the harness instead)
        self._loss = self._make_loss(_plain_field(self.composed))
        self._vg = jax.jit(jax.value_and_grad(self._loss))
        self._predict = jax.jit(self._make_predict())
        self._counted: tuple[Any, Any] | None = None
        self._counts: collections.Counter[str] = collections.Counter()
        self.nfe_detail: dict[str, int] = {}

    def _put(self, array: Any) -> Any:
        import jax

        return jax.device_put(np.asarray(array, dtype=self.dtype), self._device)

    def _adjoint(self) -> Any:
        """The diffrax adjoint of the gradient: `RecursiveCheckpointAdjoint` with
        `checkpoints` (None, equinox's choice, for 0)."""
        import diffrax

        return diffrax.RecursiveCheckpointAdjoint(checkpoints=int(self.config["checkpoints"]) or None)

    @property
    def n_checkpoints(self) -> int | None:
        """The checkpoints the backward pass keeps (the option, or equinox's default)."""
        max_steps = int(self.config["max_steps"])
        return min(max_steps, int(self.config["checkpoints"]) or default_checkpoints(max_steps))

    def _solve_kwargs(self) -> dict[str, Any]:
        return {
            "rtol": float(self.solver["rtol"]),
            "atol": float(self.solver["atol"]),
            "max_steps": int(self.config["max_steps"]),
            "adjoint": self._adjoint(),
        }

    @staticmethod
    def _backward_nfe(raw: dict[str, int], forward: int) -> int:
        """Backward evaluations from the ticks of one instrumented value-and-grad call."""
        return max(raw.get("primal", 0) - forward, raw.get("fwd", 0)) + raw.get("vjp", 0)

    def _make_states(self, field: VectorField, *, throw: bool = True) -> Callable[..., Any]:
        """`states(params, t, y0) -> (ys, ts)`: the model's outputs at times `t` from `y0`,
        a solve of the core composed by the harness (`ComposedModel.states`); `ts` is the
        solver's (inf where it stopped early)."""
        import jax.numpy as jnp

        kwargs = self._solve_kwargs()

        def core_solve(params: Any, t: Any, y0: Any) -> tuple[Any, Any]:
            sol = solve(field, params, t, y0, throw=throw, **kwargs)
            return sol.ys, sol.ts

        return lambda params, t, x: self.composed.states(params, t, x, jnp, core_solve)

    def _make_loss(self, field: VectorField) -> Callable[..., Any]:
        """`loss(params, t, y0, obs)`: the task's loss on a solve saved at `t`."""
        states = self._make_states(field)
        return lambda params, t, y0, obs: self.task.loss(states(params, t, y0)[0], obs)

    def _make_predict(self) -> Callable[..., Any]:
        return self._make_states(_plain_field(self.composed), throw=False)

    def _numpy(self, tree: Any, keys: list[str]) -> Params:
        """A native parameter dict back to NumPy, in the order of `keys` (JAX sorts dict keys)."""
        return {k: np.asarray(tree[k]) for k in keys}

    # -- the timing contract --------------------------------------------------------------

    def load(self, params: Params) -> Any:
        self._keys = list(params)
        return {k: self._put(v) for k, v in params.items()}

    def value_and_grad_native(self, native: Any) -> Any:
        return self._vg(native, *self._args)

    def load_batch(self, y0: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        return self._put(y0), self._put(y)

    def value_and_grad_batch(self, native: Any, batch: tuple[Any, Any]) -> Any:
        """The jitted value-and-grad on another batch of the same shapes: no recompilation."""
        return self._vg(native, self._args[0], *batch)

    def block(self, out: Any) -> Any:
        import jax

        return jax.block_until_ready(out)

    def to_numpy(self, out: Any) -> tuple[float, Params]:
        loss, grad = out
        return float(loss), self._numpy(grad, self._keys)

    # -- prediction, work, memory ------------------------------------------------------------

    def predict(self, params: Params, times: np.ndarray, y0: np.ndarray) -> np.ndarray:
        """States at monotonic `times` (forward or backward in time); rows the solver did not
        reach (it stopped at `max_steps` or failed) are NaN."""
        times = np.asarray(times)
        y0 = np.asarray(y0)
        if times.size < 2 or times[0] == times[-1]:
            return self.composed.stationary(params, times, y0).astype(self.dtype)
        native = {k: self._put(v) for k, v in params.items()}
        ys, ts = self._predict(native, self._put(times), self._put(y0))
        ys, ts = np.array(ys), np.asarray(ts)
        ys[~np.isfinite(ts)] = np.nan
        return ys

    def count_solver_nfe(self, params: Params) -> tuple[int, int]:
        """Right-hand-side evaluations of one value-and-grad call, counted at run time by
        an instrumented (separately compiled, never timed) copy of the computation whose
        vector field ticks a counter from its primal, linearising and VJP rules.

        - forward: vector-field calls of a value-only solve (primal ticks); Tsit5 makes
          6 per step (7 stages, first same as last) plus one at the start.
        - backward: every re-evaluation of the vector field in the backward pass plus
          every VJP.  The checkpointed loop re-runs each step from its checkpoint (primal
          ticks beyond the forward ones) and linearises it under `jax.vjp` (fwd ticks); in
          the uninstrumented program these are one evaluation (linearising the plain
          vector field computes its value and residuals together), split in two only by
          the custom VJP, so each re-evaluated stage counts once:
          backward = max(primal re-runs, linearisations) + VJPs.

        Raw ticks and solver statistics are kept in `nfe_detail`; solver steps (accepted +
        rejected) in `n_steps`.
        """
        import jax

        if self._counted is None:
            import jax.numpy as jnp

            field = _counted_field(self.composed, self._counts)
            kwargs = self._solve_kwargs()
            composed = self.composed

            def value(params: Any, t: Any, x: Any) -> Any:
                h0 = composed.encode(params, x, jnp)
                return solve(field, composed.core_params(params), t, h0, **kwargs).stats

            self._counted = (jax.jit(value), jax.jit(jax.value_and_grad(self._make_loss(field))))
        value_fn, vg_fn = self._counted
        native = self.load(params)

        self._counts.clear()
        stats = jax.block_until_ready(value_fn(native, *self._args[:2]))
        jax.effects_barrier()
        forward = self._counts["primal"]
        self._counts.clear()
        jax.block_until_ready(vg_fn(native, *self._args))
        jax.effects_barrier()
        raw = dict(self._counts)
        backward = self._backward_nfe(raw, forward)

        self.n_steps = int(stats["num_steps"])
        self.nfe_detail = {
            "forward_primal": forward,
            **{f"grad_{k}": v for k, v in raw.items()},
            "num_steps": self.n_steps,
            "num_accepted_steps": int(stats["num_accepted_steps"]),
            "num_rejected_steps": int(stats["num_rejected_steps"]),
        }
        return forward, backward

    def _gpu_stats(self) -> dict[str, int] | None:
        if self._device.platform != "gpu":
            return None
        return self._device.memory_stats() or None

    def reset_device_peak(self) -> None:
        """XLA's allocator has no peak reset: `device_peak_bytes` reports the peak since
        the process started, which is why each memory probe runs in its own process (with
        XLA_PYTHON_CLIENT_PREALLOCATE=false, set by the probe)."""

    def device_peak_bytes(self) -> int | None:
        """`peak_bytes_in_use` of the device's memory stats (GPU only)."""
        stats = self._gpu_stats()
        return None if stats is None else int(stats.get("peak_bytes_in_use", 0))

    def framework_peak_bytes(self, params: Params) -> int | None:
        compiled = self._vg.lower(self.load(params), *self._args).compile()
        analysis = compiled.memory_analysis()
        if analysis is None:
            return None
        temp = getattr(analysis, "temp_size_in_bytes", None)
        output = getattr(analysis, "output_size_in_bytes", None)
        if temp is None and output is None:
            return None
        return int(temp or 0) + int(output or 0)
