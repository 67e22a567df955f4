"""Model specs of the convolutional MNIST ODE-Net and ResNet of Chen et al. (2018).

The architecture of torchdiffeq's `examples/odenet_mnist.py`, which document 003 follows,
split into specs that act on flat batches (B, N) like every model of `harness.core.models`:

- `ConvDownsampling`: Conv2d(1, C, 3) 28 -> 26, GroupNorm, ReLU, Conv2d(C, C, 4, 2, 1) 26 -> 13,
  GroupNorm, ReLU, Conv2d(C, C, 4, 2, 1) 13 -> 6.
- `ConvODEField`: the ODE function, GroupNorm, ReLU, ConcatConv2d, GroupNorm, ReLU,
  ConcatConv2d, GroupNorm; a ConcatConv2d puts a constant channel equal to the time t in
  front of its input channels.  The time is the state's last column, so the field is
  autonomous (dt/dt = 1).
- `ConvResBlocks`: the ResNet's 6 residual blocks x + conv(relu(norm(conv(relu(norm(x)))))),
  a discrete map.
- `PoolLinearHead`: GroupNorm, ReLU, average over the positions, Linear(C, 10).

GroupNorm has min(32, C) groups and eps 1e-5; convolutions and the linear layer start from
PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.  At C = 64 the
ODE-Net (downsampling, field, head) has 208266 parameters and the ResNet (downsampling, 6
blocks, head) 576778, as PyTorch counts for torchdiffeq's example.

Every forward pass is written once against the array API, convolutions dispatched by
`harness.zoo.layers.conv2d`; the NumPy vector-Jacobian products are hand-written
(`harness.zoo.layers`) and run the same list of layers backwards.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

# `AbstractLayer` (abstract `in_dim`, `out_dim`, `apply`, `vjp_numpy`) lives beside `Composite`, which
# takes one as its encoder and decoder; re-exported here
from harness.core.models import AbstractLayer, AbstractMap, AbstractVectorField, Params
from harness.zoo.layers import (
    conv2d,
    conv2d_backward_chwn,
    conv2d_forward_chwn,
    conv_output_size,
    group_norm,
    group_norm_backward_chwn,
    group_norm_forward_chwn,
    relu,
)

__all__ = [
    "AbstractLayer",
    "ConvDownsampling",
    "ConvODEField",
    "ConvResBlocks",
    "PoolLinearHead",
    "gn_groups",
]


def gn_groups(channels: int, groups: int = 0) -> int:
    """GroupNorm's number of groups: `groups`, or when 0 torchdiffeq's example's min(32, channels)."""
    return groups or min(32, channels)


def _check_channels(channels: int, groups: int = 0) -> None:
    if groups < 0 or channels < 1 or channels % gn_groups(channels, groups):
        raise ValueError(
            f"channels ({channels}) must be a multiple of GroupNorm's groups ({gn_groups(channels, groups)})"
        )


# ----------------------------------------------------------------------------- layer lists


@dataclasses.dataclass(frozen=True)
class _Norm:
    """GroupNorm(min(32, channels), channels) with parameters `weight`, `bias`."""

    weight: str
    bias: str
    channels: int
    groups: int = 0


@dataclasses.dataclass(frozen=True)
class _ReLU:
    pass


@dataclasses.dataclass(frozen=True)
class _Conv:
    """Conv2d(cin, cout, kernel, stride, padding), bias `bias` or none; with `time`, a
    ConcatConv2d: the time channel in front of the `cin` input channels (cin + 1 in all)."""

    weight: str
    bias: str | None
    cin: int
    cout: int
    kernel: int
    stride: int = 1
    padding: int = 1
    time: bool = False


_Layer = _Norm | _ReLU | _Conv


def _init_layers(layers: tuple[_Layer, ...], rng: np.random.Generator) -> Params:
    """PyTorch's default initialisation, parameters in the order of `layers`."""
    params: Params = {}
    for layer in layers:
        if isinstance(layer, _Norm):
            params[layer.weight] = np.ones(layer.channels)
            params[layer.bias] = np.zeros(layer.channels)
        elif isinstance(layer, _Conv):
            cin = layer.cin + int(layer.time)
            bound = 1.0 / math.sqrt(cin * layer.kernel**2)
            params[layer.weight] = rng.uniform(
                -bound, bound, size=(layer.cout, cin, layer.kernel, layer.kernel)
            )
            if layer.bias is not None:
                params[layer.bias] = rng.uniform(-bound, bound, size=(layer.cout,))
    return params


def _with_time(h: Any, t: Any, xp: Any) -> Any:
    """ConcatConv2d's input: a channel equal to t (B, 1) in front of h (B, C, H, W)."""
    batch, _, height, width = h.shape
    time = xp.broadcast_to(xp.reshape(t, (batch, 1, 1, 1)), (batch, 1, height, width))
    return xp.concat([time, h], axis=1)


def _forward(layers: tuple[_Layer, ...], params: Params, h: Any, t: Any, xp: Any) -> Any:
    """`layers` applied to h (B, C, H, W) in the namespace `xp`; `t` (B, 1) for ConcatConv2d."""
    for layer in layers:
        if isinstance(layer, _Norm):
            h = group_norm(
                h, params[layer.weight], params[layer.bias], gn_groups(layer.channels, layer.groups), xp
            )
        elif isinstance(layer, _ReLU):
            h = relu(h, xp)
        else:
            if layer.time:
                h = _with_time(h, t, xp)
            bias = None if layer.bias is None else params[layer.bias]
            h = conv2d(h, params[layer.weight], bias, stride=layer.stride, padding=layer.padding, xp=xp)
    return h


def _flat_to_chwn(x: np.ndarray, channels: int, size: int) -> np.ndarray:
    """Flat feature maps (B, channels * size * size), C order, to (C, S, S, B), contiguous."""
    return np.ascontiguousarray(x.T).reshape(channels, size, size, x.shape[0])


def _chwn_to_flat(x: np.ndarray) -> np.ndarray:
    """(C, S, S, B) to flat feature maps (B, C * S * S): a transposed view."""
    return x.reshape(-1, x.shape[-1]).T


def _forward_numpy(
    layers: tuple[_Layer, ...], params: Params, h: np.ndarray, t: np.ndarray | None, *, keep: bool = True
) -> tuple[np.ndarray, list[Any]]:
    """`_forward` in NumPy on h (C, H, W, B) (batch last, `harness.zoo.layers`), `t` (B,) for
    ConcatConv2d; with `keep`, also the tape: per layer what `_backward` needs."""
    tape: list[Any] = []
    for layer in layers:
        if isinstance(layer, _Norm):
            groups = gn_groups(layer.channels, layer.groups)
            h, kept = group_norm_forward_chwn(h, params[layer.weight], params[layer.bias], groups)
        elif isinstance(layer, _ReLU):
            kept = h > 0
            h = h * kept
        else:
            if layer.time:
                assert t is not None
                h = np.concatenate([np.broadcast_to(t, (1, *h.shape[1:])), h], axis=0)
            bias = None if layer.bias is None else params[layer.bias]
            shape = h.shape
            h, cols = conv2d_forward_chwn(
                h, params[layer.weight], bias, stride=layer.stride, padding=layer.padding
            )
            kept = (cols, shape)
        if keep:
            tape.append(kept)
    return h, tape


def _backward(
    layers: tuple[_Layer, ...], params: Params, tape: list[Any], g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Backpropagation of the output cotangent g (C, H, W, B) through `layers` from
    `_forward_numpy`'s tape.

    **Returns:** `(a_h, a_t, a_params)`: the input's cotangent (C, H, W, B), the time's (B,)
    (zeros without ConcatConv2d) and the parameters' (summed over the batch).
    """
    grads: Params = {}
    a_t = np.zeros(g.shape[-1], dtype=g.dtype)
    for layer, kept in zip(reversed(layers), reversed(tape), strict=True):
        if isinstance(layer, _Norm):
            g, grads[layer.weight], grads[layer.bias] = group_norm_backward_chwn(
                kept, params[layer.weight], g
            )
        elif isinstance(layer, _ReLU):
            g = g * kept
        else:
            cols, shape = kept
            gx, gw, gb = conv2d_backward_chwn(
                cols, shape, params[layer.weight], g, stride=layer.stride, padding=layer.padding
            )
            assert gx is not None
            grads[layer.weight] = gw
            if layer.bias is not None:
                grads[layer.bias] = gb
            if layer.time:  # the time channel is channel 0 of the input
                a_t += gx[0].sum(axis=(0, 1))
                gx = gx[1:]
            g = gx
    return g, a_t, grads


def _ordered(grads: Params, params: Params) -> Params:
    return {key: grads[key] for key in params}


# ----------------------------------------------------------------------------- specs


@dataclasses.dataclass(frozen=True)
class ConvDownsampling(AbstractLayer):
    """torchdiffeq's downsampling layers: flat images (B, image * image) to feature maps
    (B, channels * size * size), flattened in C order.

    Conv2d(1, C, 3) -> GroupNorm -> ReLU -> Conv2d(C, C, 4, 2, 1) -> GroupNorm -> ReLU ->
    Conv2d(C, C, 4, 2, 1): 28 -> 26 -> 13 -> 6 pixels.

    **Arguments:**

    - `channels`: C (at most 32, or a multiple of 32).
    - `image`: the side of the square input images.
    - `time_column`: append a last column equal to 0, the initial time of a `ConvODEField`
      state (its cotangent is ignored).

    Parameters: `down0_w, down0_b, down1_gn_w, down1_gn_b, down1_w, down1_b, down2_gn_w,
    down2_gn_b, down2_w, down2_b`.
    """

    channels: int
    image: int = 28
    time_column: bool = False
    groups: int = 0

    def __post_init__(self) -> None:
        _check_channels(self.channels, self.groups)
        if self.size < 1:
            raise ValueError(f"an image of {self.image} pixels is too small for the downsampling layers")

    @property
    def size(self) -> int:
        """S, the side of the output feature maps (6 for 28)."""
        size = conv_output_size(self.image, 3, 1, 0)
        return conv_output_size(conv_output_size(size, 4, 2, 1), 4, 2, 1)

    @property
    def in_dim(self) -> int:
        return self.image * self.image

    @property
    def out_dim(self) -> int:
        return self.channels * self.size**2 + int(self.time_column)

    @functools.cached_property
    def _layers(self) -> tuple[_Layer, ...]:
        c = self.channels
        return (
            _Conv("down0_w", "down0_b", 1, c, 3, stride=1, padding=0),
            _Norm("down1_gn_w", "down1_gn_b", c, self.groups),
            _ReLU(),
            _Conv("down1_w", "down1_b", c, c, 4, stride=2, padding=1),
            _Norm("down2_gn_w", "down2_gn_b", c, self.groups),
            _ReLU(),
            _Conv("down2_w", "down2_b", c, c, 4, stride=2, padding=1),
        )

    def init_params(self, seed: int) -> Params:
        return _init_layers(self._layers, np.random.default_rng(seed))

    def apply(self, params: Params, x: Any, xp: Any) -> Any:
        batch = x.shape[0]
        h = _forward(self._layers, params, xp.reshape(x, (batch, 1, self.image, self.image)), None, xp)
        out = xp.reshape(h, (batch, self.channels * self.size**2))
        if self.time_column:
            out = xp.concat([out, xp.zeros_like(out[:, :1])], axis=1)
        return out

    def vjp_numpy(self, params: Params, x: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        _, tape = _forward_numpy(self._layers, params, _flat_to_chwn(x, 1, self.image), None)
        g = _flat_to_chwn(a[:, : self.channels * self.size**2], self.channels, self.size)
        a_x, _, grads = _backward(self._layers, params, tape, g)
        return np.ascontiguousarray(_chwn_to_flat(a_x)), _ordered(grads, params)


@dataclasses.dataclass(frozen=True)
class ConvODEField(AbstractVectorField):
    """torchdiffeq's ODEfunc: GroupNorm -> ReLU -> ConcatConv2d -> GroupNorm -> ReLU ->
    ConcatConv2d -> GroupNorm, each ConcatConv2d a Conv2d(C + 1, C, 3, 1, 1) whose first
    input channel is the time t.

    The state (B, channels * size * size + 1) is the feature map (C, S, S) flattened in C
    order, then t as the last column; the field is the ODE function flattened, then 1 (so
    it is autonomous and t(0) = 0 is the `ConvDownsampling(time_column=True)` output's).

    Parameters: `gn1_w, gn1_b, conv1_w (C, C + 1, 3, 3), conv1_b, gn2_w, gn2_b, conv2_w,
    conv2_b, gn3_w, gn3_b`.
    """

    channels: int
    size: int = 6
    groups: int = 0

    def __post_init__(self) -> None:
        _check_channels(self.channels, self.groups)

    @property
    def state_dim(self) -> int:
        """N = channels * size * size + 1 (the time)."""
        return self.channels * self.size**2 + 1

    @functools.cached_property
    def _layers(self) -> tuple[_Layer, ...]:
        c = self.channels
        return (
            _Norm("gn1_w", "gn1_b", c, self.groups),
            _ReLU(),
            _Conv("conv1_w", "conv1_b", c, c, 3, time=True),
            _Norm("gn2_w", "gn2_b", c, self.groups),
            _ReLU(),
            _Conv("conv2_w", "conv2_b", c, c, 3, time=True),
            _Norm("gn3_w", "gn3_b", c, self.groups),
        )

    def init_params(self, seed: int) -> Params:
        return _init_layers(self._layers, np.random.default_rng(seed))

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        batch, n = y.shape[0], self.state_dim - 1
        t = y[:, n:]
        h = xp.reshape(y[:, :n], (batch, self.channels, self.size, self.size))
        out = xp.reshape(_forward(self._layers, params, h, t, xp), (batch, n))
        return xp.concat([out, xp.ones_like(t)], axis=1)

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        n = self.state_dim - 1
        h = _flat_to_chwn(y[:, :n], self.channels, self.size)
        _, tape = _forward_numpy(self._layers, params, h, y[:, n])
        g = _flat_to_chwn(a[:, :n], self.channels, self.size)
        a_h, a_t, grads = _backward(self._layers, params, tape, g)
        return np.concatenate([_chwn_to_flat(a_h), a_t[:, None]], axis=1), _ordered(grads, params)


@dataclasses.dataclass(frozen=True)
class ConvResBlocks(AbstractMap):
    """torchdiffeq's ResNet: `n_blocks` residual blocks z + conv2(relu(norm2(conv1(relu(
    norm1(z)))))), the convolutions 3x3, stride 1, padding 1, without bias; a discrete map on
    feature maps (B, channels * size * size) flattened in C order.

    Parameters per block k: `blk{k}_gn1_w, blk{k}_gn1_b, blk{k}_conv1_w, blk{k}_gn2_w,
    blk{k}_gn2_b, blk{k}_conv2_w`; each block's initial weights are seeded from (seed, k).
    """

    channels: int
    size: int = 6
    n_blocks: int = 6
    groups: int = 0

    def __post_init__(self) -> None:
        _check_channels(self.channels, self.groups)

    @property
    def n_evaluations(self) -> int:
        return self.n_blocks

    @property
    def state_dim(self) -> int:
        """N = channels * size * size."""
        return self.channels * self.size**2

    @functools.cached_property
    def _blocks(self) -> tuple[tuple[_Layer, ...], ...]:
        c = self.channels
        return tuple(
            (
                _Norm(f"blk{k}_gn1_w", f"blk{k}_gn1_b", c, self.groups),
                _ReLU(),
                _Conv(f"blk{k}_conv1_w", None, c, c, 3),
                _Norm(f"blk{k}_gn2_w", f"blk{k}_gn2_b", c, self.groups),
                _ReLU(),
                _Conv(f"blk{k}_conv2_w", None, c, c, 3),
            )
            for k in range(self.n_blocks)
        )

    def init_params(self, seed: int) -> Params:
        params: Params = {}
        for k, layers in enumerate(self._blocks):
            block_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
            params.update(_init_layers(layers, np.random.default_rng(block_seed)))
        return params

    def apply(self, params: Params, y0: Any, xp: Any) -> Any:
        batch = y0.shape[0]
        z = xp.reshape(y0, (batch, self.channels, self.size, self.size))
        for layers in self._blocks:
            z = z + _forward(layers, params, z, None, xp)
        return xp.reshape(z, (batch, self.state_dim))

    def apply_vjp_numpy(self, params: Params, y0: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        """Hand-written backpropagation through the blocks in NumPy (each block's forward
        pass is run again on the way back, keeping only the block inputs on the way out).

        **Returns:** `(a^T dz_K/dy0, a^T dz_K/dparams)`, the second summed over the batch.
        """
        states = [_flat_to_chwn(y0, self.channels, self.size)]
        for layers in self._blocks[:-1]:
            states.append(states[-1] + _forward_numpy(layers, params, states[-1], None, keep=False)[0])
        a_z = _flat_to_chwn(a, self.channels, self.size)
        grads: Params = {}
        for layers, z in zip(reversed(self._blocks), reversed(states), strict=True):
            _, tape = _forward_numpy(layers, params, z, None)
            a_block, _, block_grads = _backward(layers, params, tape, a_z)
            grads.update(block_grads)
            a_z = a_z + a_block  # z_{k+1} = z_k + f_k(z_k)
        return np.ascontiguousarray(_chwn_to_flat(a_z)), _ordered(grads, params)


@dataclasses.dataclass(frozen=True)
class PoolLinearHead(AbstractLayer):
    """torchdiffeq's head: GroupNorm -> ReLU -> average over the size * size positions ->
    Linear(channels, n_classes), from feature maps (B, channels * size * size) flattened in C
    order to logits (B, n_classes).

    **Arguments:** `channels`, `size`, `n_classes`; with `time_column`, the input has one more
    last column (a `ConvODEField` state's time), ignored (its cotangent is 0).

    Parameters: `head_gn_w, head_gn_b, head_W (channels, n_classes), head_b`; y = h @ W + b.
    """

    channels: int
    size: int = 6
    n_classes: int = 10
    time_column: bool = False
    groups: int = 0

    def __post_init__(self) -> None:
        _check_channels(self.channels, self.groups)

    @property
    def in_dim(self) -> int:
        return self.channels * self.size**2 + int(self.time_column)

    @property
    def out_dim(self) -> int:
        return self.n_classes

    @functools.cached_property
    def _layers(self) -> tuple[_Layer, ...]:
        return (_Norm("head_gn_w", "head_gn_b", self.channels, self.groups), _ReLU())

    def init_params(self, seed: int) -> Params:
        rng = np.random.default_rng(seed)
        params = _init_layers(self._layers, rng)
        bound = 1.0 / math.sqrt(self.channels)
        params["head_W"] = rng.uniform(-bound, bound, size=(self.channels, self.n_classes))
        params["head_b"] = rng.uniform(-bound, bound, size=(self.n_classes,))
        return params

    def apply(self, params: Params, x: Any, xp: Any) -> Any:
        batch, n = x.shape[0], self.channels * self.size**2
        h = xp.reshape(x[:, :n], (batch, self.channels, self.size, self.size))
        h = xp.reshape(_forward(self._layers, params, h, None, xp), (batch, self.channels, self.size**2))
        return xp.mean(h, axis=2) @ params["head_W"] + params["head_b"]

    def vjp_numpy(self, params: Params, x: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        batch, n = x.shape[0], self.channels * self.size**2
        h, tape = _forward_numpy(
            self._layers, params, _flat_to_chwn(x[:, :n], self.channels, self.size), None
        )
        pooled = h.mean(axis=(1, 2))  # (C, B)
        g_pooled = (params["head_W"] @ a.T) / self.size**2  # (C, B)
        a_h, _, grads = _backward(
            self._layers, params, tape, np.broadcast_to(g_pooled[:, None, None], h.shape)
        )
        grads["head_W"] = pooled @ a
        grads["head_b"] = a.sum(axis=0)
        a_x = np.zeros((batch, self.in_dim), dtype=a_h.dtype)  # the time column's stays 0
        a_x[:, :n] = _chwn_to_flat(a_h)
        return a_x, _ordered(grads, params)
