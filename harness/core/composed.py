"""One shape of problem for every back-end: encoder -> core -> decoder.

A task's model is a bare vector field, a discrete map (a ResNet) or a `Composite`
(003's ODE-Net: convolutional encoder, ODE block, classifier head).  The harness wraps it
once in a `ComposedModel`, whose encoder and decoder are the identity for a bare model and
whose core is either a vector field (a back-end integrates it) or a map (applied, no
solver).  A back-end writes only how it integrates a vector field and hands that to
`ComposedModel.states`; it never asks what kind of model it has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.core.models import (
    AbstractLayer,
    AbstractMap,
    AbstractModel,
    AbstractVectorField,
    Composite,
    Params,
)

__all__ = ["ComposedModel", "CoreSolve", "compose"]

#: ``solve(core_params, times, h0) -> (states, times_reached)``: a back-end's integration of
#: the core vector field, states of shape ``(len(times),) + h0.shape``; `times_reached` are
#: the solver's times (non-finite where it stopped early), or `times`
CoreSolve = Callable[[Params, Any, Any], tuple[Any, Any]]


@dataclasses.dataclass(frozen=True)
class ComposedModel:
    """A model as encoder (None: identity), core, decoder (None: identity).

    **Arguments:**

    - `model`: the task's model, as given.
    - `composite`: the model if it is a `Composite` (its encoder, core and decoder), else None.
    - `core`: what is integrated (an `AbstractVectorField`) or applied (an `AbstractMap`).
    """

    model: AbstractModel
    composite: Composite | None
    core: AbstractModel

    @property
    def encoder(self) -> AbstractLayer | None:
        return None if self.composite is None else self.composite.encoder

    @property
    def decoder(self) -> AbstractLayer | None:
        return None if self.composite is None else self.composite.decoder

    @property
    def discrete(self) -> bool:
        """Whether the core is a map (applied once, no solver, no solver steps)."""
        return isinstance(self.core, AbstractMap)

    @property
    def fixed_nfe(self) -> tuple[int, int] | None:
        """A discrete core's work: one evaluation and one VJP per block; None for a vector field."""
        core = self.core
        return (core.n_evaluations, core.n_evaluations) if isinstance(core, AbstractMap) else None

    @property
    def field(self) -> AbstractVectorField:
        """The core vector field; a discrete core has none (`TypeError`)."""
        core = self.core
        if not isinstance(core, AbstractVectorField):
            raise TypeError(f"{core.label} is a map: it has no vector field to integrate")
        return core

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        """The core's dy/dt for a batch `y`: what a back-end's solver integrates."""
        return self.field.rhs(params, y, xp)

    def core_params(self, params: Params) -> Params:
        """The core's parameters out of all of them."""
        comp = self.composite
        return params if comp is None else {k: params[k] for k in comp.part_keys[1]}

    def encode(self, params: Params, x: Any, xp: Any) -> Any:
        """h(t_0) from the inputs `x` (B, ...)."""
        return x if self.composite is None else self.composite.encoder.apply(params, x, xp)

    def decode(self, params: Params, states: Any, xp: Any) -> Any:
        """The outputs at every time of the core's `states` (T, B, N)."""
        return states if self.composite is None else self.composite.decode(params, states, xp)

    def states(self, params: Params, times: Any, x: Any, xp: Any, solve: CoreSolve) -> tuple[Any, Any]:
        """The model's outputs at `times` from inputs `x`, and the times reached: encode,
        integrate the core with `solve` (or apply a map), decode every state."""
        h0 = self.encode(params, x, xp)
        core = self.core_params(params)
        if isinstance(self.core, AbstractMap):
            ys, reached = self.core.states(core, h0, times.shape[0], xp), times
        else:
            ys, reached = solve(core, times, h0)
        return self.decode(params, ys, xp), reached

    def stationary(self, params: Params, times: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The outputs at times that do not move (one time, or all equal), in NumPy: the
        encoded state held, decoded at every time."""
        return self.states(
            params, times, x, np, lambda _p, t, h: (np.repeat(h[None], t.shape[0], axis=0), t)
        )[0]

    # -- for back-ends without autodiff (hand-written VJPs) ----------------------------------

    def encode_vjp_numpy(self, params: Params, x: np.ndarray, a: np.ndarray) -> Params:
        """The encoder's parameter cotangents for the cotangent `a` of h(t_0) ({} if none)."""
        return {} if self.composite is None else self.composite.encode_vjp_numpy(params, x, a)

    def decode_vjp_numpy(
        self, params: Params, states: np.ndarray, cot: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """The cotangents of the core's states from those of the outputs, and the decoder's
        parameter cotangents (the identity and {} for a bare model)."""
        if self.composite is None:
            return cot, {}
        return self.composite.decode_vjp_numpy(params, states, cot)


def compose(model: AbstractModel) -> ComposedModel:
    """The task's `model` in the one shape every back-end sees."""
    if isinstance(model, Composite):
        return ComposedModel(model, model, model.core)
    if not isinstance(model, AbstractVectorField | AbstractMap):
        raise TypeError(f"{model.label}: neither a vector field, a map nor a Composite")
    return ComposedModel(model, None, model)
