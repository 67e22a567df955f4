"""Convolutional layers for the MNIST ODE-Net of Chen et al. (2018), on every array namespace.

The architecture is that of torchdiffeq's `examples/odenet_mnist.py`
(https://github.com/rtqichen/torchdiffeq/blob/master/examples/odenet_mnist.py), which document
003 follows: 2-D convolutions, group normalisation (`nn.GroupNorm(min(32, C), C)`) and ReLU.
The model specs built from them are in `harness.zoo.convnets`.

What is written against the array API (one expression for NumPy, PyTorch and JAX arrays):
`group_norm` and `relu`.  `conv2d` dispatches on the namespace: PyTorch's
`torch.nn.functional.conv2d`, JAX's `jax.lax.conv_general_dilated` (NCHW / OIHW), and for
NumPy a hand-written im2col (a strided window view copied once) and one matrix product.

What is hand-written in NumPy, for the back-ends and references that use no autodiff library:
the vector-Jacobian products `conv2d_vjp_numpy` (im2col and matrix products; the input
cotangent of a stride-1 convolution with Cout <= Cin as a convolution with the flipped kernel,
otherwise by col2im, which loops over the kh * kw kernel offsets, never over pixels) and
`group_norm_vjp_numpy`.

The NumPy kernels work in a batch-last layout, (C, H, W, B) ("CHWN"): there every copy that
im2col and col2im make runs over B contiguous numbers instead of W (6 at the ODE block's 6x6
maps), 2-6 times faster, and a convolution's matrix product writes its output in the same
layout.  The NCHW entry points (`conv2d` on NumPy arrays, the `*_vjp_numpy`) transpose in and
out; a model's NumPy VJP (`harness.zoo.convnets`) stays in CHWN from its input to its output
with the `*_forward_chwn` / `*_backward_chwn` pairs: a forward pass that keeps what the
backward pass needs (the im2col matrix, the normalised input), so each im2col is paid once.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "GN_EPS",
    "conv2d",
    "conv2d_backward_chwn",
    "conv2d_forward_chwn",
    "conv2d_vjp_numpy",
    "conv_output_size",
    "from_chwn",
    "group_norm",
    "group_norm_backward_chwn",
    "group_norm_forward_chwn",
    "group_norm_vjp_numpy",
    "relu",
    "to_chwn",
]

#: `torch.nn.GroupNorm`'s default epsilon
GN_EPS = 1e-5


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial size of a convolution's output: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


# ----------------------------------------------------------------------------- array API


def relu(x: Any, xp: Any) -> Any:
    """max(x, 0) elementwise; its derivative is taken as 0 at x = 0 (as the NumPy VJPs do)."""
    return xp.where(x > 0, x, xp.zeros_like(x))


def group_norm(x: Any, weight: Any, bias: Any, groups: int, xp: Any, eps: float = GN_EPS) -> Any:
    """`torch.nn.functional.group_norm` written against the array API.

    **Arguments:** `x` (B, C, ...), `weight` and `bias` (C,), `groups` dividing C.  Each group
    of C // groups channels (and all positions) is normalised by its mean and biased variance,
    then scaled and shifted per channel.
    """
    shape = tuple(x.shape)
    batch, channels = shape[0], shape[1]
    xg = xp.reshape(x, (batch, groups, -1))
    centred = xg - xp.mean(xg, axis=2, keepdims=True)
    var = xp.mean(centred * centred, axis=2, keepdims=True)
    xhat = xp.reshape(centred / xp.sqrt(var + eps), shape)
    affine = (1, channels) + (1,) * (len(shape) - 2)
    return xhat * xp.reshape(weight, affine) + xp.reshape(bias, affine)


def conv2d(x: Any, w: Any, b: Any | None, *, stride: int, padding: int, xp: Any) -> Any:
    """2-D cross-correlation, `torch.nn.functional.conv2d(x, w, b, stride, padding)`.

    **Arguments:** `x` (B, Cin, H, W), `w` (Cout, Cin, kh, kw), `b` (Cout,) or None; the same
    `stride` and zero `padding` along both axes.  `xp`: the namespace of `x` (NumPy, PyTorch
    or JAX).

    **Returns:** (B, Cout, Ho, Wo), Ho = `conv_output_size(H, kh, stride, padding)`.
    """
    if array_api_compat.is_numpy_namespace(xp):
        return from_chwn(conv2d_forward_chwn(to_chwn(x), w, b, stride=stride, padding=padding)[0])
    if array_api_compat.is_torch_namespace(xp):
        import torch

        return torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
    if array_api_compat.is_jax_namespace(xp):
        import jax

        y = jax.lax.conv_general_dilated(
            x,
            w,
            window_strides=(stride, stride),
            padding=((padding, padding), (padding, padding)),
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        return y if b is None else y + xp.reshape(b, (1, -1, 1, 1))
    raise TypeError(f"conv2d supports NumPy, PyTorch and JAX arrays, not the namespace {xp.__name__}")


# ----------------------------------------------------------------------------- NumPy (CHWN)


def to_chwn(x: np.ndarray) -> np.ndarray:
    """(B, C, ...) -> (C, ..., B), contiguous."""
    return np.ascontiguousarray(np.moveaxis(x, 0, -1))


def from_chwn(x: np.ndarray) -> np.ndarray:
    """(C, ..., B) -> (B, C, ...), contiguous."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    """Zero padding of the two spatial axes of x (C, H, W, B)."""
    if padding == 0:
        return x
    channels, height, width, batch = x.shape
    out = np.zeros((channels, height + 2 * padding, width + 2 * padding, batch), dtype=x.dtype)
    out[:, padding : padding + height, padding : padding + width] = x
    return out


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """The patches of x (Cin, H, W, B) as a (Cin * kh * kw, Ho * Wo * B) matrix, rows ordered
    as the columns of `w.reshape(Cout, -1)`: one copy of a strided window view."""
    windows = sliding_window_view(_pad(x, padding), (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(x.shape[0] * kh * kw, -1)  # (Cin, Ho, Wo, B, kh, kw)


def _col2im(
    cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: int, padding: int
) -> np.ndarray:
    """The adjoint of `_im2col`: patch cotangents (Cin * kh * kw, Ho * Wo * B) summed back onto
    the input (Cin, H, W, B), one strided slice per kernel offset."""
    channels, height, width, batch = x_shape
    ho = conv_output_size(height, kh, stride, padding)
    wo = conv_output_size(width, kw, stride, padding)
    patches = cols.reshape(channels, kh, kw, ho, wo, batch)
    out = np.zeros((channels, height + 2 * padding, width + 2 * padding, batch), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride] += patches[
                :, i, j
            ]
    return out[:, padding : padding + height, padding : padding + width]


def conv2d_forward_chwn(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, stride: int, padding: int
) -> tuple[np.ndarray, np.ndarray]:
    """`conv2d` of x (Cin, H, W, B) in NumPy: y (Cout, Ho, Wo, B), and the im2col matrix
    (Cin * kh * kw, Ho * Wo * B) that `conv2d_backward_chwn` needs."""
    cout, _, kh, kw = w.shape
    ho = conv_output_size(x.shape[1], kh, stride, padding)
    wo = conv_output_size(x.shape[2], kw, stride, padding)
    cols = _im2col(x, kh, kw, stride, padding)
    y = w.reshape(cout, -1) @ cols
    if b is not None:
        y += b[:, None]
    return y.reshape(cout, ho, wo, x.shape[3]), cols


def conv2d_backward_chwn(
    cols: np.ndarray,
    x_shape: tuple[int, ...],
    w: np.ndarray,
    g: np.ndarray,
    *,
    stride: int,
    padding: int,
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The VJP of `conv2d_forward_chwn` from its `cols`, the input's shape (Cin, H, W, B) and
    the output cotangent `g` (Cout, Ho, Wo, B).

    The input cotangent of a stride-1 convolution with Cout <= Cin (the ODE block's, the
    residual blocks') is itself a convolution (of `g` padded by k - 1 - padding, with the
    kernel flipped and its channel axes swapped): one im2col of `g` and one matrix product,
    faster than col2im's kh * kw strided additions.  Otherwise col2im, whose patch matrix
    has Cin rather than Cout rows per kernel offset (9 rather than 9 Cout for the first
    downsampling layer, Cin = 1).

    **Returns:** `(gx, gw, gb)`; `gx` is None when `input_grad` is False.
    """
    cout, cin, kh, kw = w.shape
    g2 = g.reshape(cout, -1)
    gw = (g2 @ cols.T).reshape(w.shape)
    gb = g2.sum(axis=1)
    if not input_grad:
        return None, gw, gb
    if stride == 1 and kh == kw and padding <= kh - 1 and cout <= cin:
        w_t = np.ascontiguousarray(np.swapaxes(w[:, :, ::-1, ::-1], 0, 1))  # (Cin, Cout, kh, kw)
        gx, _ = conv2d_forward_chwn(g, w_t, None, stride=1, padding=kh - 1 - padding)
    else:
        gx = _col2im(w.reshape(cout, cin * kh * kw).T @ g2, x_shape, kh, kw, stride, padding)
    return gx, gw, gb


def conv2d_vjp_numpy(
    x: np.ndarray, w: np.ndarray, g: np.ndarray, *, stride: int, padding: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand-written VJP of `conv2d` (NCHW) for the output cotangent `g` (B, Cout, Ho, Wo).

    **Returns:** `(gx, gw, gb)`: the cotangents of `x`, of `w` and of the bias (`g` summed
    over the batch and the positions; it does not depend on whether the bias is used).
    """
    kh, kw = w.shape[2:]
    x_chwn = to_chwn(x)
    cols = _im2col(x_chwn, kh, kw, stride, padding)
    gx, gw, gb = conv2d_backward_chwn(cols, x_chwn.shape, w, to_chwn(g), stride=stride, padding=padding)
    assert gx is not None
    return from_chwn(gx), gw, gb


def group_norm_forward_chwn(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, groups: int, eps: float = GN_EPS
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """`group_norm` of x (C, ..., B) in NumPy, also returning what `group_norm_backward_chwn`
    needs: the normalised input x̂ (groups, M, B) and 1 / sqrt(var + eps) (groups, 1, B)."""
    shape = x.shape
    xg = x.reshape(groups, -1, shape[-1])
    centred = xg - xg.mean(axis=1, keepdims=True)
    rstd = 1.0 / np.sqrt(np.mean(centred * centred, axis=1, keepdims=True) + eps)
    xhat = centred * rstd
    affine = (shape[0],) + (1,) * (len(shape) - 1)
    y = xhat.reshape(shape) * weight.reshape(affine) + bias.reshape(affine)
    return y, (xhat, rstd)


def group_norm_backward_chwn(
    kept: tuple[np.ndarray, np.ndarray], weight: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The VJP of `group_norm_forward_chwn` from its kept arrays, for g (C, ..., B).

    With x̂ = (x - mean) * rstd per group of M entries and y = weight * x̂ + bias:
    gx = rstd * (gx̂ - mean(gx̂) - x̂ mean(gx̂ x̂)), gx̂ = g * weight.
    """
    xhat, rstd = kept
    shape = g.shape
    affine = (shape[0],) + (1,) * (len(shape) - 1)
    channels = shape[0]
    gweight = np.sum((g * xhat.reshape(shape)).reshape(channels, -1), axis=1)
    gbias = np.sum(g.reshape(channels, -1), axis=1)
    gxhat = (g * weight.reshape(affine)).reshape(xhat.shape)
    mean_g = gxhat.mean(axis=1, keepdims=True)
    mean_gx = np.mean(gxhat * xhat, axis=1, keepdims=True)
    gx = (rstd * (gxhat - mean_g - xhat * mean_gx)).reshape(shape)
    return gx, gweight, gbias


def group_norm_vjp_numpy(
    x: np.ndarray, weight: np.ndarray, groups: int, g: np.ndarray, eps: float = GN_EPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand-written VJP of `group_norm` (x of shape (B, C, ...)) for the output cotangent `g`.

    **Returns:** `(gx, gweight, gbias)`.
    """
    _, kept = group_norm_forward_chwn(to_chwn(x), weight, np.zeros_like(weight), groups, eps)
    gx, gweight, gbias = group_norm_backward_chwn(kept, weight, to_chwn(g))
    return from_chwn(gx), gweight, gbias
