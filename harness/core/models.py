"""Declarative model specs: what a vector field is, not how a framework computes it.

Every spec is an instance of an abstract base that says what it is (back-ends declare the
bases they build, and build every subclass of them: `AbstractBackend.builds`), makes its initial
parameters as NumPy arrays once per seed (so every back-end starts from the same
weights), evaluates itself against the array API (`rhs(params, y, xp)` runs on NumPy,
PyTorch and JAX arrays alike), and carries a hand-written NumPy vector-Jacobian product
for the back-ends and references that use no autodiff library.

New models (a Hamiltonian MLP, a hybrid physics + MLP model, an ODE-block classifier) are
new subclasses of `AbstractVectorField` or `AbstractMap`; no back-end changes.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # shape annotations for readers and pyright, no import at run time
    from jaxtyping import Float

__all__ = [
    "MLP",
    "AbstractLayer",
    "AbstractMap",
    "AbstractModel",
    "AbstractVectorField",
    "Composite",
    "InputTransformed",
    "Parametric",
    "Params",
    "TimeScaled",
    "flatten",
    "unflatten",
]

#: parameters are ordered dictionaries of NumPy arrays (native arrays inside back-ends)
Params = dict[str, Any]


def flatten(params: Params) -> np.ndarray:
    """All parameters in one flat float vector, in the dictionary's order."""
    return np.concatenate([np.asarray(v, dtype=float).ravel() for v in params.values()])


def unflatten(vector: np.ndarray, like: Params) -> Params:
    """Inverse of `flatten`, with the shapes of `like`."""
    out: Params = {}
    start = 0
    for key, value in like.items():
        size = int(np.size(value))
        out[key] = np.asarray(vector[start : start + size]).reshape(np.shape(value))
        start += size
    return out


class AbstractModel(abc.ABC):
    """A model of a state batch `y` of shape (B, N): a vector field or a discrete map."""

    @abc.abstractmethod
    def init_params(self, seed: int) -> Params:
        """Initial parameters, NumPy float64, deterministic per seed."""

    @property
    def label(self) -> str:
        """What the model is, for tables: its class name."""
        return type(self).__name__


class AbstractVectorField(AbstractModel):
    """A vector field f(y; params), autonomous, acting on a batch `y` of shape (B, N)."""

    @abc.abstractmethod
    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        """dy/dt for a batch `y` (B, N); `xp` is the array namespace of `y`."""

    @abc.abstractmethod
    def vjp_numpy(
        self, params: Params, y: Float[np.ndarray, "B N"], a: Float[np.ndarray, "B N"]
    ) -> tuple[Float[np.ndarray, "B N"], Params]:
        """Hand-written vector-Jacobian product in NumPy.

        **Returns:** `(a^T df/dy, a^T df/dparams)`, the second summed over the batch.
        """

    def flat_vjp_numpy(self, params: Params, shape: tuple[int, ...], offset: int = 0) -> FlatVJP:
        """`vjp_numpy` for the adjoint's hot loop: a function `(params, y, a) -> out` whose
        one flat `out` holds `offset` entries the caller fills, then a^T df/dy, then
        a^T df/dparams in the order of `params` (their shapes those of `params`, y's
        `shape`).  `out` may be the same array at every call: copy what you keep.  The
        default concatenates `vjp_numpy`'s result; a model may write in place instead."""
        keys = list(params)
        head = np.zeros(offset)

        def flat(params: Params, y: np.ndarray, a: np.ndarray) -> np.ndarray:
            a_y, a_p = self.vjp_numpy(params, y, a)
            return np.concatenate([head, a_y, *[a_p[k] for k in keys]], axis=None)

        return flat


#: `AbstractVectorField.flat_vjp_numpy`'s function: (params, y, a) -> flat cotangents
FlatVJP = Callable[[Params, np.ndarray, np.ndarray], np.ndarray]

_ACTIVATIONS = ("tanh", "relu", "sigmoid")


def _activation(name: str, z: Any, xp: Any) -> Any:
    if name == "tanh":
        return xp.tanh(z)
    if name == "relu":
        return xp.maximum(z, 0.0 * z)
    if name == "sigmoid":
        return 1.0 / (1.0 + xp.exp(-z))
    raise ValueError(f"unknown activation {name!r}; choose from {', '.join(_ACTIVATIONS)}")


#: NumPy activation and its derivative d act / dz from the pre-activation z and activation h
_NUMPY_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[..., np.ndarray]]] = {
    "tanh": (np.tanh, lambda z, h: 1.0 - h * h),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, h: (z > 0).astype(z.dtype)),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, h: h * (1.0 - h)),
}


@dataclasses.dataclass(frozen=True)
class MLP(AbstractVectorField):
    """A multilayer perceptron vector field, f(y) = W_L s(... s(y W_0 + b_0) ...) + b_L.

    **Arguments:**

    - `sizes`: layer widths, input first and output last, e.g. `(2, 64, 2)`.
    - `activation`: one of `tanh`, `relu`, `sigmoid` (not applied after the last layer).
    - `init_scale`: multiplies the initial weights (1 gives PyTorch's default
      U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases).

    Parameters are `W0, b0, W1, b1, ...` with `W_i` of shape (in, out).
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose from {', '.join(_ACTIVATIONS)}")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @functools.cached_property
    def _layer_keys(self) -> tuple[tuple[str, str], ...]:
        # precomputed: `rhs` runs thousands of times per gradient in eager frameworks
        return tuple((f"W{i}", f"b{i}") for i in range(self.n_layers))

    def init_params(self, seed: int) -> Params:
        rng = np.random.default_rng(seed)
        params: Params = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            bound = self.init_scale / np.sqrt(fan_in)
            params[f"W{i}"] = rng.uniform(-bound, bound, size=(fan_in, fan_out))
            params[f"b{i}"] = rng.uniform(-bound, bound, size=(fan_out,))
        return params

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        *hidden, (w_last, b_last) = self._layer_keys
        h = y
        for w, b in hidden:
            h = _activation(self.activation, h @ params[w] + params[b], xp)
        return h @ params[w_last] + params[b_last]

    @functools.cached_property
    def _param_keys(self) -> tuple[str, ...]:
        return tuple(k for pair in self._layer_keys for k in pair)

    def _forward_kept(self, params: Params, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The forward pass in NumPy, keeping the input of every layer and the pre-activations."""
        act = _NUMPY_ACTIVATIONS[self.activation][0]
        inputs, pre = [y], []
        h = y
        for w, b in self._layer_keys[:-1]:
            z = h @ params[w] + params[b]
            h = act(z)
            pre.append(z)
            inputs.append(h)
        return inputs, pre

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        # hot path of the NumPy adjoint: no per-call dispatch or key formatting
        act_grad = _NUMPY_ACTIVATIONS[self.activation][1]
        keys = self._layer_keys
        inputs, pre = self._forward_kept(params, y)
        # backward
        grads: list[np.ndarray] = [a] * (2 * len(keys))
        g = a
        for i in range(len(keys) - 1, -1, -1):
            grads[2 * i] = inputs[i].T @ g
            grads[2 * i + 1] = g.sum(axis=0)
            g = g @ params[keys[i][0]].T
            if i > 0:
                g = g * act_grad(pre[i - 1], inputs[i])
        return g, dict(zip(self._param_keys, grads, strict=True))

    def flat_vjp_numpy(self, params: Params, shape: tuple[int, ...], offset: int = 0) -> FlatVJP:
        """`vjp_numpy`'s arithmetic written into one reused buffer (`np.matmul(..., out=)`),
        so that the adjoint concatenates nothing.  A subclass that overrides `vjp_numpy`
        gets the default (its own `vjp_numpy`, concatenated): this one knows only the MLP's."""
        if type(self).vjp_numpy is not MLP.vjp_numpy:
            return super().flat_vjp_numpy(params, shape, offset)
        act_grad = _NUMPY_ACTIVATIONS[self.activation][1]
        keys = self._layer_keys
        n_y = math.prod(shape)
        out = np.empty(offset + n_y + sum(np.size(v) for v in params.values()))
        a_y = out[offset : offset + n_y].reshape(shape)
        views, start = {}, offset + n_y
        for key, value in params.items():
            views[key] = out[start : start + np.size(value)].reshape(np.shape(value))
            start += np.size(value)
        grad_views = [(views[w], views[b]) for w, b in keys]

        def flat(params: Params, y: np.ndarray, a: np.ndarray) -> np.ndarray:
            inputs, pre = self._forward_kept(params, y)
            g = a
            for i in range(len(keys) - 1, -1, -1):
                g_w, g_b = grad_views[i]
                np.matmul(inputs[i].T, g, out=g_w)
                np.add.reduce(g, axis=0, out=g_b)
                if i > 0:
                    g = g @ params[keys[i][0]].T
                    g *= act_grad(pre[i - 1], inputs[i])
                else:
                    np.matmul(g, params[keys[0][0]].T, out=a_y)
            return out

        return flat


@dataclasses.dataclass(frozen=True)
class Parametric(AbstractVectorField):
    """A physical model with trainable physical parameters.

    **Arguments:**

    - `name`: what the model is, for reports.
    - `field`: `field(params, y, xp) -> dy/dt`, written once against the array API.
    - `vjp`: `vjp(params, y, a) -> (a_y, a_params)`, the hand-written NumPy VJP of `field`.
    - `initial`: `initial(seed) -> params`, NumPy float64.
    """

    name: str
    field: Callable[[Params, Any, Any], Any]
    vjp: Callable[[Params, np.ndarray, np.ndarray], tuple[np.ndarray, Params]]
    initial: Callable[[int], Params]

    def init_params(self, seed: int) -> Params:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.initial(seed).items()}

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        return self.field(params, y, xp)

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        return self.vjp(params, y, a)


@dataclasses.dataclass(frozen=True)
class TimeScaled(AbstractVectorField):
    """`inner` on trajectories of different lengths, in one batch on one time grid.

    The last state component of each trajectory is its duration T (constant in time):
    with s = t / T in [0, 1], dx/ds = T f(x) and dT/ds = 0.  So a batch of pairs
    (x(t_i), x(t_i + T_i)) with different T_i becomes one solve over s in [0, 1]: what 002
    §3.2 does ("we actually just integrate forward from t = 0 to t = T ... the number of
    iterations between 0 and T is a constant 100 steps").  A trajectory with T = 1 runs in
    real time.  The loss sees T as an exactly reproduced state component, which adds 0.
    """

    inner: AbstractVectorField

    def init_params(self, seed: int) -> Params:
        return self.inner.init_params(seed)

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        duration = y[:, -1:]
        return xp.concat([duration * self.inner.rhs(params, y[:, :-1], xp), 0.0 * duration], axis=1)

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        x, duration, a_x = y[:, :-1], y[:, -1:], a[:, :-1]
        a_inner, a_params = self.inner.vjp_numpy(params, x, duration * a_x)
        a_duration = np.sum(a_x * self.inner.rhs(params, x, np), axis=1, keepdims=True)
        return np.concatenate([a_inner, a_duration], axis=1), a_params


@dataclasses.dataclass(frozen=True)
class InputTransformed(AbstractVectorField):
    """`inner` applied to an elementwise transform of the state: f(y) = inner(g(y)).

    E.g. torchdiffeq's `ode_demo` spiral, an MLP on y**3: `InputTransformed(MLP(...),
    transform=lambda y, xp: y**3, derivative=lambda y: 3 * y**2, name="cube")`.

    **Arguments:**

    - `inner`: the vector field applied to g(y) (same width as y).
    - `transform`: `g(y, xp)`, elementwise, written once against the array API.
    - `derivative`: `g'(y)` in NumPy (elementwise), for the hand-written VJP.
    - `name`: what g is, for reports.
    """

    inner: AbstractVectorField
    transform: Callable[[Any, Any], Any]
    derivative: Callable[[np.ndarray], np.ndarray]
    name: str = "g"

    def init_params(self, seed: int) -> Params:
        return self.inner.init_params(seed)

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        return self.inner.rhs(params, self.transform(y, xp), xp)

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        a_g, a_params = self.inner.vjp_numpy(params, self.transform(y, np), a)
        return a_g * self.derivative(y), a_params


class AbstractMap(AbstractModel):
    """A discrete model: a map z_0 -> z_K with no vector field (e.g. a ResNet).

    A back-end "solves" it over times of length 2 with `states`; its work is
    `n_evaluations` map evaluations forward and as many vector-Jacobian products backward.
    """

    @property
    @abc.abstractmethod
    def n_evaluations(self) -> int:
        """Evaluations (e.g. residual blocks) of one application of the map."""

    @abc.abstractmethod
    def apply(self, params: Params, y0: Any, xp: Any) -> Any:
        """z_K from z_0 = `y0` (B, N), in the array namespace `xp`."""

    @property
    def has_numpy_vjp(self) -> bool:
        """Whether this map writes `apply_vjp_numpy` (the reference gradient needs it)."""
        return type(self).apply_vjp_numpy is not AbstractMap.apply_vjp_numpy

    def apply_vjp_numpy(self, params: Params, y0: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        """Optional hand-written backpropagation through `apply` in NumPy:
        `(a^T dz_K/dy0, a^T dz_K/dparams)`, the second summed over the batch."""
        raise NotImplementedError(f"{self.label} has no hand-written apply_vjp_numpy")

    def states(self, params: Params, y0: Any, n_times: int, xp: Any) -> Any:
        """What a solve over `n_times` (1 or 2) times returns: `y0`, then `apply(y0)`."""
        if n_times == 1:
            return y0[None]
        if n_times != 2:
            raise ValueError(f"a discrete model has states at 2 times only, not {n_times}")
        return xp.stack([y0, self.apply(params, y0, xp)])


class AbstractLayer(AbstractModel):
    """A learnt map between flat batches that is not an ODE: a `Composite`'s encoder
    (e.g. convolutional down-sampling) or decoder (e.g. a classifier head)."""

    @property
    @abc.abstractmethod
    def in_dim(self) -> int:
        """Features per batch member of the input."""

    @property
    @abc.abstractmethod
    def out_dim(self) -> int:
        """Features per batch member of the output."""

    @abc.abstractmethod
    def apply(self, params: Params, x: Any, xp: Any) -> Any:
        """The output (B, out_dim) of an input batch `x` (B, in_dim), in the namespace `xp`."""

    @abc.abstractmethod
    def vjp_numpy(self, params: Params, x: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        """Hand-written vector-Jacobian product in NumPy.

        **Returns:** `(a^T dy/dx, a^T dy/dparams)`, the second summed over the batch.
        """


@dataclasses.dataclass(frozen=True)
class Composite(AbstractModel):
    """A core model between two learnt layers: x -> h(t_0) = encoder(x) -> core -> the
    decoder applied to h at every requested time.  Chen et al.'s ODE-Net (003, torchdiffeq's
    `examples/odenet_mnist.py`) is one: convolutional down-sampling, an ODE block, a pooled
    linear head; its ResNet has a discrete core.

    A back-end that builds `Composite` solves (or applies) the core as it would alone, from
    the encoded batch, and returns the decoder's outputs as the states: `predict(times, x)`
    has shape (len(times), B, decoder.out_dim), and the task's loss sees those.  The three
    parts' parameter names must be disjoint; all three are trained.

    **Arguments:** `encoder`, `core` (an `AbstractVectorField` or `AbstractMap`), `decoder`.
    """

    encoder: AbstractLayer
    core: AbstractModel
    decoder: AbstractLayer

    def __post_init__(self) -> None:
        if not isinstance(self.core, AbstractVectorField | AbstractMap):
            raise TypeError(f"a Composite's core is a vector field or a map, not {type(self.core).__name__}")

    @property
    def label(self) -> str:
        return f"Composite({self.encoder.label}, {self.core.label}, {self.decoder.label})"

    @property
    def parts(self) -> tuple[AbstractModel, AbstractModel, AbstractModel]:
        return self.encoder, self.core, self.decoder

    def init_params(self, seed: int) -> Params:
        """The parts' parameters, each from its own seed derived from (`seed`, part index)."""
        params: Params = {}
        for i, part in enumerate(self.parts):
            own = part.init_params(int(np.random.SeedSequence([seed, i]).generate_state(1)[0]))
            clash = set(own) & set(params)
            if clash:
                raise ValueError(f"{self.label}: parameter names {sorted(clash)} are used by two parts")
            params.update(own)
        return params

    def split(self, params: Params) -> tuple[Params, Params, Params]:
        """`params` as (encoder's, core's, decoder's), each in its part's own order."""
        keys = self.part_keys
        return tuple({k: params[k] for k in part} for part in keys)  # type: ignore[return-value]

    @functools.cached_property
    def part_keys(self) -> tuple[tuple[str, ...], ...]:
        """The parameter names of each part (from `init_params(0)`; shapes do not depend on the seed)."""
        return tuple(tuple(part.init_params(0)) for part in self.parts)

    def encode_vjp_numpy(self, params: Params, x: np.ndarray, a: np.ndarray) -> Params:
        """The encoder's parameter cotangents for the cotangent `a` of its output."""
        return self.encoder.vjp_numpy(self.split(params)[0], x, a)[1]

    def decode(self, params: Params, states: Any, xp: Any) -> Any:
        """The decoder at every time of `states` (T, B, N): shape (T, B, decoder.out_dim)."""
        return xp.stack([self.decoder.apply(params, states[i], xp) for i in range(states.shape[0])])

    def decode_vjp_numpy(
        self, params: Params, states: np.ndarray, cot: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """The cotangents of the core's states (T, B, N) from those of the decoded outputs
        `cot` (T, B, out_dim), and the decoder's parameter cotangents summed over times."""
        a_states = np.zeros_like(states)
        own = self.split(params)[2]
        grads: Params = {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in own.items()}
        for i in range(states.shape[0]):
            if not np.any(cot[i]):  # no loss at this time (e.g. a classifier's t_0)
                continue
            a_states[i], a_p = self.decoder.vjp_numpy(own, states[i], cot[i])
            for k in grads:
                grads[k] = grads[k] + a_p[k]
        return a_states, grads
