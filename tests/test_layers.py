"""`harness.zoo.layers`: conv2d, group_norm and relu on NumPy, PyTorch and JAX arrays, and
the hand-written NumPy VJPs against central differences and against torch autograd."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import array_api_compat
import numpy as np
import pytest

from harness.zoo import layers

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # before any JAX array exists (conftest does it too)
jnp = jax.numpy

TXP = array_api_compat.array_namespace(torch.zeros(1))
JXP = array_api_compat.array_namespace(jnp.zeros(1))

#: (batch, Cin, Cout, H, W, kernel, stride, padding): strides 1/2, paddings 0/1, kernels 3/4,
#: odd and non-square sizes, sizes the stride does not divide; the VJP's two ways to the input
#: cotangent: col2im (stride 2, or Cout > Cin) and a convolution (stride 1 and Cout <= Cin)
CONV_CASES = [
    (2, 3, 4, 7, 9, 3, 1, 0),
    (2, 3, 4, 7, 9, 3, 2, 1),
    (3, 2, 5, 13, 13, 4, 2, 1),
    (2, 1, 3, 8, 5, 4, 1, 0),
    (2, 5, 2, 6, 7, 4, 2, 0),
    (2, 4, 3, 5, 5, 3, 1, 1),
    (2, 5, 5, 6, 5, 4, 1, 1),
    (2, 3, 2, 7, 6, 3, 1, 0),
]
#: (shape, groups): one channel per group, several per group, 32 groups of 2 (C = 64)
GN_CASES = [((2, 4, 5, 3), 4), ((3, 6, 3, 5), 3), ((2, 64, 2, 3), 32), ((2, 6, 7), 2)]


def max_rel(x: object, ref: object) -> float:
    """Largest absolute difference relative to the largest entry of `ref`."""
    x, ref = np.asarray(x), np.asarray(ref)
    assert x.shape == ref.shape
    return float(np.max(np.abs(x - ref)) / np.max(np.abs(ref)))


def check_directional(
    phi: Callable[..., float],
    args: Sequence[np.ndarray],
    grads: Sequence[np.ndarray],
    rng: np.random.Generator,
    n_dirs: int = 2,
    h: float = 1e-6,
) -> None:
    """`grads` = d phi / d `args` against central differences of the scalar `phi(*args)` along
    `n_dirs` random directions in each argument in turn (so no argument's error hides
    behind another's) and in all of them at once."""
    assert len(args) == len(grads)
    for arg, grad in zip(args, grads, strict=True):
        assert np.shape(grad) == np.shape(arg)
    moves = [[i] for i in range(len(args))] + [list(range(len(args)))]
    for which in moves:
        for _ in range(n_dirs):
            dirs = [rng.standard_normal(np.shape(a)) if i in which else 0.0 for i, a in enumerate(args)]
            plus = phi(*[a + h * d for a, d in zip(args, dirs, strict=True)])
            minus = phi(*[a - h * d for a, d in zip(args, dirs, strict=True)])
            fd = (plus - minus) / (2 * h)
            exact = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs, strict=True))
            scale = sum(float(np.sum(np.abs(g * d))) for g, d in zip(grads, dirs, strict=True))
            # central differences h=1e-6: truncation ~h^2 |phi'''| ~ 1e-12 relative, rounding ~1e-16
            # sum|a f| / h ~ 1e-10 |phi| (seen here: at most 3e-9 of `scale`, and 1e-9 |phi| where the
            # exact derivative is 0, a bias before a GroupNorm); a wrong gradient entry is off by O(scale)
            assert abs(fd - exact) <= 1e-7 * scale + 1e-8 * (1.0 + abs(plus)), (which, fd, exact)


def _conv_inputs(case: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    batch, cin, cout, height, width, kernel, _, _ = case
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((batch, cin, height, width)),
        rng.standard_normal((cout, cin, kernel, kernel)),
        rng.standard_normal(cout),
    )


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch_and_jax(case: tuple[int, ...]) -> None:
    x, w, b = _conv_inputs(case)
    stride, padding = case[6], case[7]
    ref = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride, padding=padding
    )
    for bias in (b, None):
        ref_b = ref if bias is not None else ref - torch.tensor(b).reshape(1, -1, 1, 1)
        out = layers.conv2d(x, w, bias, stride=stride, padding=padding, xp=np)
        assert out.shape == tuple(ref.shape)
        assert out.shape[2] == layers.conv_output_size(x.shape[2], w.shape[2], stride, padding)
        assert max_rel(out, ref_b) < 1e-12
        tb = None if bias is None else torch.tensor(bias)
        out_t = layers.conv2d(torch.tensor(x), torch.tensor(w), tb, stride=stride, padding=padding, xp=TXP)
        assert max_rel(out_t, ref_b) < 1e-12
        jb = None if bias is None else jnp.asarray(bias)
        out_j = layers.conv2d(jnp.asarray(x), jnp.asarray(w), jb, stride=stride, padding=padding, xp=JXP)
        assert out_j.dtype == jnp.float64
        assert max_rel(out_j, ref_b) < 1e-12


@pytest.mark.parametrize(("shape", "groups"), GN_CASES)
def test_group_norm_matches_torch_and_jax(shape: tuple[int, ...], groups: int) -> None:
    rng = np.random.default_rng(1)
    x = 3.0 + 2.0 * rng.standard_normal(shape)  # an offset: the mean must be taken out
    weight, bias = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    ref = torch.nn.functional.group_norm(
        torch.tensor(x), groups, torch.tensor(weight), torch.tensor(bias), eps=1e-5
    )
    assert max_rel(layers.group_norm(x, weight, bias, groups, np), ref) < 1e-12
    t_args = [torch.tensor(v) for v in (x, weight, bias)]
    assert max_rel(layers.group_norm(*t_args, groups, TXP), ref) < 1e-12
    j_args = [jnp.asarray(v) for v in (x, weight, bias)]
    assert max_rel(layers.group_norm(*j_args, groups, JXP), ref) < 1e-12
    y, _ = layers.group_norm_forward_chwn(layers.to_chwn(x), weight, bias, groups)
    assert max_rel(layers.from_chwn(y), ref) < 1e-12


def test_relu_on_every_namespace() -> None:
    x = np.array([[-1.5, 0.0, 2.0], [3.0, -0.0, -4.0]])
    expected = np.array([[0.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    np.testing.assert_array_equal(layers.relu(x, np), expected)
    np.testing.assert_array_equal(layers.relu(torch.tensor(x), TXP).numpy(), expected)
    np.testing.assert_array_equal(np.asarray(layers.relu(jnp.asarray(x), JXP)), expected)


def test_conv2d_rejects_other_namespaces() -> None:
    class Other:
        __name__ = "other"

    with pytest.raises(TypeError, match="NumPy, PyTorch and JAX"):
        layers.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), None, stride=1, padding=0, xp=Other())


# ----------------------------------------------------------------------------- VJPs


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_vjp(case: tuple[int, ...]) -> None:
    x, w, b = _conv_inputs(case, seed=2)
    stride, padding = case[6], case[7]
    rng = np.random.default_rng(3)
    g = rng.standard_normal(layers.conv2d(x, w, b, stride=stride, padding=padding, xp=np).shape)
    gx, gw, gb = layers.conv2d_vjp_numpy(x, w, g, stride=stride, padding=padding)

    def phi(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> float:
        return float(np.sum(g * layers.conv2d(x, w, b, stride=stride, padding=padding, xp=np)))

    check_directional(phi, [x, w, b], [gx, gw, gb], rng)

    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    out = layers.conv2d(tx, tw, tb, stride=stride, padding=padding, xp=TXP)
    out.backward(torch.tensor(g))
    assert tx.grad is not None and tw.grad is not None and tb.grad is not None
    # the same sums in another order: a few ulps of the largest entry
    assert max_rel(gx, tx.grad) < 1e-12
    assert max_rel(gw, tw.grad) < 1e-12
    assert max_rel(gb, tb.grad) < 1e-12


@pytest.mark.parametrize(("shape", "groups"), GN_CASES)
def test_group_norm_vjp(shape: tuple[int, ...], groups: int) -> None:
    rng = np.random.default_rng(4)
    x = 1.0 + rng.standard_normal(shape)
    weight, bias = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    g = rng.standard_normal(shape)
    gx, gweight, gbias = layers.group_norm_vjp_numpy(x, weight, groups, g)

    def phi(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> float:
        return float(np.sum(g * layers.group_norm(x, weight, bias, groups, np)))

    check_directional(phi, [x, weight, bias], [gx, gweight, gbias], rng)

    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, weight, bias))
    layers.group_norm(tx, tw, tb, groups, TXP).backward(torch.tensor(g))
    assert tx.grad is not None and tw.grad is not None and tb.grad is not None
    assert max_rel(gx, tx.grad) < 1e-12
    assert max_rel(gweight, tw.grad) < 1e-12
    assert max_rel(gbias, tb.grad) < 1e-12
    # and torch's own group_norm, not only our expression run through torch
    tx.grad = None
    torch.nn.functional.group_norm(tx, groups, tw.detach(), tb.detach()).backward(torch.tensor(g))
    assert max_rel(gx, tx.grad) < 1e-12


def test_group_norm_vjp_of_constant_group_is_finite() -> None:
    """A group with zero variance (e.g. a constant time channel) is normalised by sqrt(eps)."""
    x = np.ones((2, 2, 3, 3))
    g = np.random.default_rng(5).standard_normal(x.shape)
    weight = np.array([0.5, 2.0])
    gx, gweight, gbias = layers.group_norm_vjp_numpy(x, weight, 2, g)
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, weight, np.zeros(2)))
    torch.nn.functional.group_norm(tx, 2, tw, tb).backward(torch.tensor(g))
    assert tx.grad is not None and tw.grad is not None and tb.grad is not None
    assert np.all(np.isfinite(gx))
    for ours, ref in ((gx, tx.grad), (gweight, tw.grad), (gbias, tb.grad)):
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-12, atol=1e-12)
