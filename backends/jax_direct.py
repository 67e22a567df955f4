"""`jax-direct`: diffrax's `DirectAdjoint`, reverse-mode autodiff straight through the solver."""

from __future__ import annotations

from typing import Any

from backends.jax_checkpoint import JaxCheckpoint
from harness.core.ranges import integer
from harness.core.registry import register_backend


@register_backend
class JaxDirect(JaxCheckpoint):
    """Discretise-then-optimise in JAX without recursive checkpointing: diffrax
    `DirectAdjoint`, the same Tsit5 and PID controller as `jax-checkpoint`, so the two
    differ in how the backward pass gets the forward states alone.  diffrax runs the solve
    as a `bounded` while loop (nested `lax.scan`s of `jax.checkpoint`ed steps whose size
    grows with `max_steps`), which is what lets JAX differentiate it in forward as well as
    in reverse mode; diffrax's docs call it "far less computationally efficient" than
    `RecursiveCheckpointAdjoint` and "not recommended" (diffrax 0.7.2,
    `_adjoint.py`, `DirectAdjoint`).  The gradient is the exact gradient of the discrete
    solution, as `jax-checkpoint`'s, so it has no discrete twin: it is one.

    NFE backward: the vector-field evaluations of the value-and-grad call beyond the
    forward solve's, plus its VJPs.  Under reverse mode the custom-VJP counter sees every
    evaluation as a linearisation (its forward pass included: no primal ticks), and the
    backward pass re-runs the forward steps (twice at `max_steps` 4096, once at 64: the
    nested `jax.checkpoint`s of the bounded loop), so the count grows with `max_steps` at
    the same solver steps (measured on lotka_volterra, 20 steps,
    121 forward evaluations: backward 242 at `max_steps` 64, 363 at 4096; jax-checkpoint:
    242).  Option `max_steps` (default 4096, as jax-checkpoint) bounds the solver's steps.
    """

    name = "jax-direct"
    options = {"max_steps": 4096}  # no checkpoints option: diffrax chooses the nesting
    option_ranges = {"max_steps": integer(1)}

    def _adjoint(self) -> Any:
        import diffrax

        return diffrax.DirectAdjoint()

    @staticmethod
    def _backward_nfe(raw: dict[str, int], forward: int) -> int:
        """Evaluations of the grad call (a stage run and linearised counts once) less the
        forward solve's, plus the VJPs."""
        return max(raw.get("primal", 0), raw.get("fwd", 0)) - forward + raw.get("vjp", 0)

    @property
    def n_checkpoints(self) -> int | None:
        """None: `DirectAdjoint` has no checkpoint budget to report."""
        return None
