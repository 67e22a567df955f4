"""`harness.zoo.convnets`: the MNIST ODE-Net and ResNet of torchdiffeq's `odenet_mnist.py`.

The specs against a small torch.nn reconstruction of the example's modules (built only
here), their forward passes on NumPy, PyTorch and JAX arrays, the hand-written NumPy VJPs
against central differences and torch autograd, parameter counts and initialisation."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest
from test_layers import check_directional, max_rel

from harness.core.models import AbstractMap, AbstractVectorField, Params, flatten
from harness.zoo.convnets import (
    AbstractLayer,
    ConvDownsampling,
    ConvODEField,
    ConvResBlocks,
    PoolLinearHead,
)

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
nn = torch.nn

TXP = array_api_compat.array_namespace(torch.zeros(1))
JXP = array_api_compat.array_namespace(jnp.zeros(1))

#: small instances of every spec; (B, C=64, 2, 2) exercises GroupNorm with 2 channels per group
MODELS: dict[str, Any] = {
    "field": ConvODEField(channels=4, size=5),
    "field-64": ConvODEField(channels=64, size=2),
    "down": ConvDownsampling(channels=4, image=14),
    "down-time": ConvDownsampling(channels=3, image=11, time_column=True),
    "blocks": ConvResBlocks(channels=4, size=3, n_blocks=2),
    "head": PoolLinearHead(channels=4, size=3, n_classes=5),
    "head-time": PoolLinearHead(channels=8, size=2, time_column=True),
}


def _width(model: Any) -> int:
    return model.in_dim if isinstance(model, AbstractLayer) else model.state_dim


def _call(model: Any, params: Params, y: Any, xp: Any) -> Any:
    """The model's forward pass: rhs, apply of a map, apply of a layer."""
    return model.rhs(params, y, xp) if isinstance(model, AbstractVectorField) else model.apply(params, y, xp)


def _vjp(model: Any, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
    return (
        model.apply_vjp_numpy(params, y, a)
        if isinstance(model, AbstractMap)
        else model.vjp_numpy(params, y, a)
    )


def _inputs(model: Any, seed: int = 0, batch: int = 3) -> tuple[Params, np.ndarray, np.ndarray]:
    """(params, y, a): parameters perturbed away from GroupNorm's 1 / 0, a state with t = 0.3
    for a field, a random output cotangent (also on the time / ignored columns)."""
    rng = np.random.default_rng(seed)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in model.init_params(seed).items()}
    y = rng.standard_normal((batch, _width(model)))
    if isinstance(model, ConvODEField):
        y[:, -1] = 0.3
    a = rng.standard_normal(np.shape(_call(model, params, y, np)))
    return params, y, a


# ----------------------------------------------------------------------------- torchdiffeq's modules


def norm(dim: int) -> Any:
    return nn.GroupNorm(min(32, dim), dim)


class ConcatConv2d(nn.Module):
    """torchdiffeq's: the time as a constant channel in front of the input channels."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self._layer = nn.Conv2d(dim_in + 1, dim_out, kernel_size=3, stride=1, padding=1)

    def forward(self, t: Any, x: Any) -> Any:
        tt = torch.ones_like(x[:, :1, :, :]) * t
        return self._layer(torch.cat([tt, x], 1))


class ODEfunc(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1, self.norm2 = norm(dim), ConcatConv2d(dim, dim), norm(dim)
        self.conv2, self.norm3 = ConcatConv2d(dim, dim), norm(dim)
        self.relu = nn.ReLU()

    def forward(self, t: Any, x: Any) -> Any:
        out = self.conv1(t, self.relu(self.norm1(x)))
        return self.norm3(self.conv2(t, self.relu(self.norm2(out))))


class ResBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = norm(dim), norm(dim)
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: Any) -> Any:
        out = self.conv1(self.relu(self.norm1(x)))
        return self.conv2(self.relu(self.norm2(out))) + x


def downsampling(dim: int) -> Any:
    return nn.Sequential(
        nn.Conv2d(1, dim, 3, 1),
        norm(dim),
        nn.ReLU(),
        nn.Conv2d(dim, dim, 4, 2, 1),
        norm(dim),
        nn.ReLU(),
        nn.Conv2d(dim, dim, 4, 2, 1),
    )


def head(dim: int, n_classes: int = 10) -> Any:
    return nn.Sequential(
        norm(dim), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(dim, n_classes)
    )


def n_torch(*modules: Any) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def load(module: Any, params: Params, names: dict[str, str]) -> None:
    """Copy `params` into `module`'s parameters: `names` maps torch's names to ours."""
    state = {
        t: torch.tensor(params[ours].T if ours == "head_W" else params[ours]) for t, ours in names.items()
    }
    assert set(state) == {n for n, _ in module.named_parameters()}
    module.double()  # first: loading into float32 parameters would round the weights
    module.load_state_dict(state, strict=True)


def test_parameter_counts_at_64_channels() -> None:
    count = lambda model: flatten(model.init_params(0)).size
    down, field, head64 = ConvDownsampling(64), ConvODEField(64), PoolLinearHead(64)
    odenet = count(down) + count(field) + count(head64)
    resnet = count(down) + count(ConvResBlocks(64)) + count(head64)
    assert (odenet, resnet) == (208266, 576778)
    assert odenet == n_torch(downsampling(64), ODEfunc(64), head(64))
    assert resnet == n_torch(downsampling(64), *[ResBlock(64) for _ in range(6)], head(64))
    assert down.size == 6 and ConvDownsampling(64, time_column=True).out_dim == field.state_dim == 64 * 36 + 1


def test_matches_torchdiffeq_modules() -> None:
    """Each spec's forward pass equals that of the example's modules holding the same weights
    (the time channel in front, GroupNorm's groups, the head's pooling and linear layer)."""
    c, batch = 4, 2
    rng = np.random.default_rng(7)
    x = rng.uniform(size=(batch, 28 * 28))

    down = ConvDownsampling(c, time_column=True)
    p_down = down.init_params(1)
    t_down = downsampling(c)
    names = {}
    for i, ours in zip((0, 1, 3, 4, 6), ("down0", "down1_gn", "down1", "down2_gn", "down2"), strict=True):
        names |= {f"{i}.weight": f"{ours}_w", f"{i}.bias": f"{ours}_b"}
    load(t_down, p_down, names)
    h = t_down(torch.tensor(x).reshape(batch, 1, 28, 28))
    state = down.apply(p_down, x, np)
    assert max_rel(state[:, :-1], h.reshape(batch, -1).detach()) < 1e-12
    np.testing.assert_array_equal(state[:, -1], 0.0)

    field = ConvODEField(c, down.size)
    p_field = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in field.init_params(2).items()}
    t_field = ODEfunc(c)
    names = {"norm1": "gn1", "conv1._layer": "conv1", "norm2": "gn2", "conv2._layer": "conv2", "norm3": "gn3"}
    load(
        t_field,
        p_field,
        {f"{m}.{wb}": f"{ours}_{wb[0]}" for m, ours in names.items() for wb in ("weight", "bias")},
    )
    state[:, -1] = 0.7
    dh = field.rhs(p_field, state, np)
    assert (
        max_rel(dh[:, :-1], t_field(torch.tensor(0.7, dtype=torch.float64), h).reshape(batch, -1).detach())
        < 1e-12
    )
    np.testing.assert_array_equal(dh[:, -1], 1.0)

    blocks = ConvResBlocks(c, down.size, n_blocks=3)
    p_blocks = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in blocks.init_params(3).items()}
    t_blocks = nn.Sequential(*[ResBlock(c) for _ in range(3)])
    names = {"norm1.weight": "gn1_w", "norm1.bias": "gn1_b", "conv1.weight": "conv1_w"}
    names |= {"norm2.weight": "gn2_w", "norm2.bias": "gn2_b", "conv2.weight": "conv2_w"}
    load(t_blocks, p_blocks, {f"{k}.{tn}": f"blk{k}_{ours}" for k in range(3) for tn, ours in names.items()})
    z = blocks.apply(p_blocks, state[:, :-1], np)
    assert max_rel(z, t_blocks(h).reshape(batch, -1).detach()) < 1e-12

    top = PoolLinearHead(c, down.size, time_column=True)
    p_head = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in top.init_params(4).items()}
    t_head = head(c)
    names = {"0.weight": "head_gn_w", "0.bias": "head_gn_b", "4.weight": "head_W", "4.bias": "head_b"}
    load(t_head, p_head, names)
    assert max_rel(top.apply(p_head, state, np), t_head(h).detach()) < 1e-12


def test_parameter_names_and_initialisation() -> None:
    field = ConvODEField(8, 6)
    params = field.init_params(0)
    assert list(params) == [
        *("gn1_w", "gn1_b", "conv1_w", "conv1_b", "gn2_w", "gn2_b"),
        *("conv2_w", "conv2_b", "gn3_w", "gn3_b"),
    ]
    assert params["conv1_w"].shape == (8, 9, 3, 3)
    assert list(ConvDownsampling(8).init_params(0)) == [
        *("down0_w", "down0_b", "down1_gn_w", "down1_gn_b", "down1_w", "down1_b"),
        *("down2_gn_w", "down2_gn_b", "down2_w", "down2_b"),
    ]
    assert list(ConvResBlocks(8, n_blocks=2).init_params(0)) == [
        f"blk{k}_{n}" for k in range(2) for n in ("gn1_w", "gn1_b", "conv1_w", "gn2_w", "gn2_b", "conv2_w")
    ]
    assert list(PoolLinearHead(8).init_params(0)) == ["head_gn_w", "head_gn_b", "head_W", "head_b"]
    for model in MODELS.values():
        a, b, c = model.init_params(5), model.init_params(5), model.init_params(6)
        assert all(v.dtype == np.float64 for v in a.values())
        np.testing.assert_array_equal(flatten(a), flatten(b))
        assert not np.array_equal(flatten(a), flatten(c))
    # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); GroupNorm weight 1, bias 0
    bound = 1 / np.sqrt(9 * 9)
    assert np.max(np.abs(params["conv1_w"])) <= bound and np.max(np.abs(params["conv1_w"])) > 0.9 * bound
    np.testing.assert_array_equal(params["gn1_w"], 1.0)
    np.testing.assert_array_equal(params["gn1_b"], 0.0)
    # each block seeded from (seed, k): block 0 does not depend on the number of blocks
    two, three = (
        ConvResBlocks(4, 3, n_blocks=2).init_params(0),
        ConvResBlocks(4, 3, n_blocks=3).init_params(0),
    )
    assert all(np.array_equal(two[k], three[k]) for k in two)
    assert not np.array_equal(three["blk0_conv1_w"], three["blk1_conv1_w"])


def test_rejects_channels_groupnorm_cannot_split() -> None:
    with pytest.raises(ValueError, match=r"channels \(48\) must be a multiple of GroupNorm's groups \(32\)"):
        ConvODEField(channels=48)  # the example's min(32, C) groups
    with pytest.raises(ValueError, match=r"channels \(16\) must be a multiple of GroupNorm's groups \(6\)"):
        ConvODEField(channels=16, groups=6)
    assert ConvODEField(channels=48, groups=24).groups == 24  # two channels per group
    with pytest.raises(ValueError, match="too small"):
        ConvDownsampling(channels=4, image=5)


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_on_every_namespace(name: str) -> None:
    model = MODELS[name]
    params, y, _ = _inputs(model, batch=2)
    ref = _call(model, params, y, np)
    out_t = _call(model, {k: torch.tensor(v) for k, v in params.items()}, torch.tensor(y), TXP)
    # under jax.jit, as the JAX back-ends run it (and one compilation is faster than eager ops')
    forward = jax.jit(lambda p, y: _call(model, p, y, JXP))
    out_j = forward({k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(y))
    assert ref.shape == (2, model.out_dim if isinstance(model, AbstractLayer) else _width(model))
    assert max_rel(out_t, ref) < 1e-12
    assert max_rel(out_j, ref) < 1e-12


@pytest.mark.parametrize("name", list(MODELS))
def test_vjp(name: str) -> None:
    """The hand-written VJP against torch autograd of the same expression (through `xp` =
    torch), then against central differences along random directions in the state and in
    each parameter."""
    model = MODELS[name]
    params, y, a = _inputs(model)
    a_y, a_p = _vjp(model, params, y, a)
    assert a_y.shape == y.shape and list(a_p) == list(params)

    ty = torch.tensor(y, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    (_call(model, tp, ty, TXP) * torch.tensor(a)).sum().backward()
    # the same sums in another order: a few ulps of the largest entry.  Per parameter relative to
    # the largest entry of the whole gradient: a bias just before a GroupNorm of one channel per
    # group has a zero gradient (the normalisation takes it out again), rounding noise in both
    assert max_rel(a_y, ty.grad) < 1e-12
    scale = np.max(np.abs(flatten({k: v.grad for k, v in tp.items()})))
    for key in params:
        assert np.max(np.abs(a_p[key] - tp[key].grad.numpy())) < 1e-12 * scale, key

    keys = list(params)

    def phi(y: np.ndarray, *values: np.ndarray) -> float:
        return float(np.sum(a * _call(model, dict(zip(keys, values, strict=True)), y, np)))

    check_directional(phi, [y, *params.values()], [a_y, *a_p.values()], np.random.default_rng(8), n_dirs=1)

    if isinstance(model, ConvODEField):  # the time enters both ConcatConv2d's
        assert np.all(np.abs(a_y[:, -1]) > 0)
    if getattr(model, "time_column", False) and isinstance(model, PoolLinearHead):
        np.testing.assert_array_equal(a_y[:, -1], 0.0)


def test_field_flat_vjp() -> None:
    """The adjoint's flat VJP (the default, from `vjp_numpy`) for the convolutional field."""
    model = MODELS["field"]
    params, y, a = _inputs(model, batch=2)
    a_y, a_p = model.vjp_numpy(params, y, a)
    flat = model.flat_vjp_numpy(params, y.shape, offset=2)(params, y, a)
    np.testing.assert_array_equal(flat[2:], np.concatenate([a_y.ravel(), flatten(a_p)]))
