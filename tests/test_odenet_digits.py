"""The 003 tasks `odenet_digits` and `resnet_digits`: IDX reader, data, loss, the discrete
ResNet on every back-end that builds it, training, metrics and the command line."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import rel_error
from test_cli import harness

from harness.core import registry
from harness.core.errors import UsageError
from harness.core.models import AbstractMap, flatten, unflatten
from harness.numerics import driver
from harness.numerics.reference import forward_sensitivity_gradient
from tasks import odenet_digits
from tasks._common.classification import cross_entropy, cross_entropy_cotangent
from tasks._common.idx import MNIST_FILES, DataDirError, idx_image_shape, read_idx
from tasks._common.images import average_pool
from tasks.odenet_digits import OdenetDigits, ResnetDigits

SMALL = {"n_train": 64, "n_test": 32}
#: numpy-adjoint's skip reason for the ResNet (a discrete map, not a vector field)
SKIP_RESNET = "numpy-adjoint does not build ResidualStack (it builds subclasses of AbstractVectorField)"

#: IDX type codes (independent of the reader's table): code -> big-endian dtype
IDX_CODES = {0x08: ">u1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def write_idx(path: Path, array: np.ndarray, code: int = 0x08) -> Path:
    """An IDX file written by hand: two zero bytes, the type code, the number of
    dimensions, big-endian uint32 sizes, then the big-endian data (gzipped for .gz)."""
    raw = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += np.asarray(array, dtype=IDX_CODES[code]).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_mnist(directory: Path, *, n_train: int = 30, n_test: int = 20, gz: bool = False) -> dict:
    """Small MNIST-shaped IDX files (28x28 uint8 images, labels 0-9) in `directory`."""
    rng = np.random.default_rng(1)
    arrays = {
        MNIST_FILES[0]: rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        MNIST_FILES[1]: np.arange(n_train, dtype=np.uint8) % 10,
        MNIST_FILES[2]: rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        MNIST_FILES[3]: np.arange(n_test, dtype=np.uint8)[::-1] % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / (f"{name}.gz" if gz else name), array)
    return arrays


# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("code", sorted(IDX_CODES))
def test_idx_round_trip(tmp_path: Path, code: int, suffix: str) -> None:
    array = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 7 % 256).astype(IDX_CODES[code])
    out = read_idx(write_idx(tmp_path / f"a-idx3-ubyte{suffix}", array, code))
    assert out.shape == (2, 3, 5) and out.dtype == np.dtype(IDX_CODES[code]).newbyteorder("=")
    np.testing.assert_array_equal(out, array)


def test_idx_malformed_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x08\x03\x00\x00")
    with pytest.raises(ValueError, match="not an IDX file: bad magic number") as info:
        read_idx(bad)
    assert "\n" not in str(info.value)
    short = write_idx(tmp_path / "short", np.zeros((4, 2), dtype=np.uint8))
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"19 bytes, the header \(4, 2\) needs 20"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize(
    ("name", "content"),
    [("not-gzip.gz", b"plain bytes, not gzip"), ("cut.gz", None), ("a-directory", "dir")],
)
def test_unreadable_idx_files_are_one_line(tmp_path: Path, name: str, content: bytes | str | None) -> None:
    import gzip

    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is None:  # a gzip stream cut short
        path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(64))[:-12])
    else:
        path.write_bytes(content)
    for reader in (read_idx, idx_image_shape):
        with pytest.raises(ValueError, match=f"'{path}' cannot be read: ") as info:
            reader(path)
        assert "\n" not in str(info.value)


def test_average_pool() -> None:
    images = np.arange(2 * 5 * 5, dtype=float).reshape(2, 5, 5)
    pooled = average_pool(images, 2)  # the last row and column are dropped
    assert pooled.shape == (2, 4)
    np.testing.assert_allclose(pooled[0], [(0 + 1 + 5 + 6) / 4, (2 + 3 + 7 + 8) / 4, 13.0, 15.0])


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_data_dir(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path, gz=gz)
    task = OdenetDigits(data_dir=str(tmp_path))
    assert task.pool_size == 4 and task.n_features == 49 and task.model.sizes == (49, 64, 49)
    data = task.make_data(0)
    assert data.y0.shape == (30, 49) and data.y.shape == (2, 30, 49)
    expected = average_pool(arrays[MNIST_FILES[0]] / 255.0, 4)
    np.testing.assert_allclose(data.y0, expected)
    np.testing.assert_array_equal(np.argmax(data.y[-1, :, :10], axis=1), arrays[MNIST_FILES[1]])
    assert np.all(data.y[0] == 0) and np.all(data.y[-1, :, 10:] == 0)
    np.testing.assert_array_equal(data.test.labels, arrays[MNIST_FILES[3]])
    capped = OdenetDigits(data_dir=str(tmp_path), pool=7, n_train=8, n_test=5).make_data(3)
    assert capped.y0.shape == (8, 16) and capped.test.x.shape == (5, 16)


def test_mnist_training_set_is_capped_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path)
    monkeypatch.setattr(odenet_digits, "MNIST_TRAIN_CAP", 12)
    data = OdenetDigits(data_dir=str(tmp_path)).make_data(0)
    assert data.y0.shape == (12, 49) and data.test.x.shape == (20, 49)


def test_pool_leaving_too_few_pixels_is_one_line() -> None:
    with pytest.raises(UsageError, match="pool=3 leaves 4 pixels; the read-out needs at least 10"):
        OdenetDigits(pool=3)


def test_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        OdenetDigits(data_dir=str(missing))
    message = str(info.value)
    assert isinstance(info.value, DataDirError) and "\n" not in message
    assert str(missing) in message and all(name in message for name in MNIST_FILES)
    write_mnist(tmp_path / "partial")
    (tmp_path / "partial" / MNIST_FILES[3]).unlink()
    with pytest.raises(DataDirError, match=f"no MNIST file '{MNIST_FILES[3]}'"):
        ResnetDigits(data_dir=str(tmp_path / "partial"))


def test_cli_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    proc = harness("run", "--task", "odenet_digits", "--set", "data_dir=/no/such/dir", "--quiet")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data_dir '/no/such/dir' is not a directory" in lines[0], proc.stderr


# ----------------------------------------------------------------------------- data and loss


def test_default_data_is_the_digits_split() -> None:
    task = OdenetDigits()
    data = task.make_data(0)
    assert data.y0.shape == (1437, 64) and data.test.x.shape == (360, 64)  # 80/20 of 1797
    assert 0.0 <= data.y0.min() and data.y0.max() <= 1.0
    # stratified: every class in both sets, in proportion
    counts = np.bincount(data.test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    np.testing.assert_array_equal(task.make_data(0).y0, data.y0)  # deterministic per seed
    assert not np.array_equal(task.make_data(1).y0, data.y0)


def test_loss_and_cotangent_against_finite_differences() -> None:
    """Central differences, step 1e-5: truncation error ~ h^2 |L'''| ~ 1e-10 and rounding
    ~ eps |L| / h ~ 1e-11, so 1e-8 absolute is a safe bound for derivatives of order 0.1."""
    rng = np.random.default_rng(0)
    pred, labels = rng.normal(size=(2, 5, 12)) * 3.0, rng.integers(0, 10, size=5)
    obs = np.zeros_like(pred)
    obs[-1, np.arange(5), labels] = 1.0
    grad = cross_entropy_cotangent(pred, obs)
    h, fd = 1e-5, np.zeros_like(pred)
    for idx in np.ndindex(pred.shape):
        step = np.zeros_like(pred)
        step[idx] = h
        fd[idx] = (cross_entropy(pred + step, obs) - cross_entropy(pred - step, obs)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-8)
    assert np.all(grad[0] == 0) and np.all(grad[-1, :, 10:] == 0)
    # the definition: mean of -log softmax at the label
    z = pred[-1, :, :10]
    direct = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(5), labels])
    assert cross_entropy(pred, obs) == pytest.approx(direct, rel=1e-14)
    assert np.isfinite(cross_entropy(pred * 1e3, obs))  # the maximum is subtracted


def test_loss_is_the_same_expression_in_every_framework() -> None:
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    rng = np.random.default_rng(1)
    pred, obs = rng.normal(size=(2, 4, 11)), np.zeros((2, 4, 11))
    obs[-1, :, 3] = 1.0
    expected = cross_entropy(pred, obs)
    for array in (torch.as_tensor, jnp.asarray):
        assert float(cross_entropy(array(pred), array(obs))) == pytest.approx(expected, rel=1e-14)


def test_odenet_adjoint_reference_matches_forward_sensitivities() -> None:
    """The ODENet's reference (continuous adjoint over the batch) against forward
    sensitivities, both DOP853 at 1e-12, on 2 images and width 4 (forward sensitivities
    cost N (1 + M) states per image): 1e-9 relative, as for the trajectory tasks."""
    task = OdenetDigits(n_train=2, width=4)
    data, params = task.make_data(0), task.init_params(0)
    loss, grad, how = task.reference_gradient(params, data)
    fs_loss, fs_grad, _ = forward_sensitivity_gradient(
        task.model, params, data, loss=task.loss, cotangent=task.loss_cotangent
    )
    assert "adjoint" in how and loss == pytest.approx(fs_loss, rel=1e-12)
    assert rel_error(grad, fs_grad) < 1e-9


# ----------------------------------------------------------------------------- the ResNet


def test_resnet_parameters_and_map() -> None:
    task = ResnetDigits(**SMALL)
    model, params = task.model, task.init_params(0)
    assert isinstance(model, AbstractMap) and model.n_blocks == 6
    assert list(params)[:4] == ["blk0_W0", "blk0_b0", "blk0_W1", "blk0_b1"]
    assert flatten(params).size == 6 * flatten(OdenetDigits().init_params(0)).size
    assert not np.array_equal(params["blk0_W0"], params["blk1_W0"])  # own weights per block
    y0 = task.make_data(0).y0
    z = y0
    for k in range(6):  # eq. (1) of 003 §2, by hand
        h = np.tanh(z @ params[f"blk{k}_W0"] + params[f"blk{k}_b0"])
        z = z + h @ params[f"blk{k}_W1"] + params[f"blk{k}_b1"]
    np.testing.assert_allclose(model.apply(params, y0, np), z, rtol=1e-14, atol=1e-14)


def test_resnet_backprop_against_finite_differences() -> None:
    """The NumPy backprop (the ResNet's reference) along 3 random directions, central
    differences with step 1e-6 on a loss of order 1: agreement to 1e-7 relative."""
    task = ResnetDigits(n_train=16, width=8)
    data, params = task.make_data(0), task.init_params(0)
    _, grad, how = task.reference_gradient(params, data)
    assert "backpropagation" in how
    g, x = flatten(grad), flatten(params)
    model = task.model

    def loss(vector: np.ndarray) -> float:
        p = unflatten(vector, params)
        return float(task.loss(np.stack([data.y0, model.apply(p, data.y0, np)]), data.y))

    rng = np.random.default_rng(2)
    for _ in range(3):
        v = rng.normal(size=x.size)
        fd = (loss(x + 1e-6 * v) - loss(x - 1e-6 * v)) / 2e-6
        assert g @ v == pytest.approx(fd, rel=1e-7)


@pytest.mark.parametrize("impl_name", ["torch-adjoint", "rk4-unrolled", "jax-checkpoint"])
def test_resnet_gradient_matches_numpy_backprop(impl_name: str) -> None:
    """Autodiff through the same 6 blocks in double precision: 1e-12 relative."""
    cls = registry.BACKENDS[impl_name]
    if not cls.available():
        pytest.skip(f"{impl_name} unavailable")
    task = ResnetDigits(**SMALL)
    data, params = task.make_data(0), task.init_params(0)
    ref_loss, ref_grad, _ = task.reference_gradient(params, data)
    impl = cls(task, data)
    loss, grad = impl.value_and_grad(params)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    assert rel_error(grad, ref_grad) < 1e-12
    assert impl.count_nfe(params) == (6, 6)
    states = impl.predict(params, data.t, data.y0)
    np.testing.assert_allclose(states[-1], task.model.apply(params, data.y0, np), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="2 times only"):
        impl.predict(params, np.linspace(0.0, 1.0, 3), data.y0)


def test_numpy_adjoint_skips_the_resnet_in_one_line() -> None:
    reason = registry.BACKENDS["numpy-adjoint"].skip(ResnetDigits(), "cpu")
    assert reason == SKIP_RESNET and "\n" not in reason


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    ("task_cls", "impl_name"), [(OdenetDigits, "numpy-adjoint"), (ResnetDigits, "rk4-unrolled")]
)
def test_short_training_decreases_loss_and_metrics(task_cls: type, impl_name: str) -> None:
    cls = registry.BACKENDS[impl_name]
    if not cls.available():
        pytest.skip(f"{impl_name} unavailable")
    task = task_cls(**SMALL)
    data, params = task.make_data(0), task.init_params(0)
    impl = cls(task, data)
    result = driver.adam(impl, params, iters=5, lr=1e-2)
    assert len(result.loss_history) == 5 and result.loss_history[-1] < result.loss_history[0]
    metrics = task.metrics(lambda t, y0: impl.predict(result.params, t, y0), data, result.params)
    keys = {"test_accuracy", "test_error", "train_accuracy", "test_cross_entropy", "n_params", "n_train"}
    assert keys < set(metrics)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["n_test"] == 32
    assert metrics["n_params"] == flatten(params).size
    assert metrics["test_error"] == pytest.approx(1.0 - metrics["test_accuracy"], abs=1e-15)
    assert metrics["mnist_test_error_003"] in (0.0042, 0.0048)  # 003 §4: 0.9958, 0.9952 accuracy
    assert task.trajectories(lambda t, y0: y0, data) == {}


def test_cli_runs_both_tasks(tmp_path: Path) -> None:
    """Both tasks end to end on the NumPy adjoint (which skips the ResNet) and RK4: the
    continuous, the discrete and the skipped path (`--impl all` is the same code per cell;
    the JAX and torch-adjoint cells are the slow ones to start, so they are left out)."""
    out = tmp_path / "run"
    proc = harness(
        "run",
        "--task",
        "odenet_digits,resnet_digits",
        "--impl",
        "numpy-adjoint,rk4-unrolled",
        "--iters",
        "2",
        "--repeats",
        "1",
        "--no-memory",
        "--quiet",
        "--set",
        "n_train=32",
        "--set",
        "n_test=16",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    status = {(r["task"], r["impl"]): r["status"] for r in records}
    assert status == {
        ("odenet_digits", "numpy-adjoint"): "ok",
        ("odenet_digits", "rk4-unrolled"): "ok",
        ("resnet_digits", "numpy-adjoint"): "skipped",
        ("resnet_digits", "rk4-unrolled"): "ok",
    }
    for r in records:
        if r["status"] == "ok":
            assert r["grad_rel_error"] < 1e-5 and r["metrics"]["n_train"] == 32
        else:
            assert r["reason"] == SKIP_RESNET
    resnet = next(r for r in records if r["task"] == "resnet_digits" and r["status"] == "ok")
    assert (resnet["nfe_forward"], resnet["nfe_backward"], resnet["solver_steps"]) == (6, 6, None)
    assert "test_accuracy" in proc.stdout and "does not build ResidualStack" in proc.stdout
