"""Device selection without a GPU, and GPU checks that run only where one is present."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import backend, problem, rel_error

from harness.core import registry
from harness.core.devices import check_device, gpu_provenance, parse_device
from harness.core.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def _gpu_visible() -> bool:
    try:
        check_device("cuda")
    except UsageError:
        return False
    return True


GPU = _gpu_visible()
requires_gpu = pytest.mark.skipif(not GPU, reason="no CUDA device visible to torch or JAX")


@pytest.mark.parametrize(
    ("spec", "parsed"), [("cpu", ("cpu", 0)), ("cuda", ("cuda", 0)), ("cuda:3", ("cuda", 3))]
)
def test_parse_device(spec: str, parsed: tuple[str, int]) -> None:
    assert parse_device(spec) == parsed


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:1", "tpu:0", ""])
def test_unknown_device_names_the_choices(spec: str) -> None:
    with pytest.raises(UsageError, match=r"choose from: cpu, cuda, cuda:N"):
        parse_device(spec)


@pytest.mark.skipif(GPU, reason="a GPU is present")
def test_missing_gpu_is_a_one_line_error() -> None:
    with pytest.raises(UsageError, match=r"no CUDA device 'cuda:0' on this machine .*use --device cpu"):
        check_device("cuda:0")


def test_numpy_adjoint_declares_itself_cpu_only() -> None:
    task = registry.TASKS["lotka_volterra"]()
    reason = registry.BACKENDS["numpy-adjoint"].skip(task, "cuda:0")
    assert reason == "numpy-adjoint runs on cpu only, not cuda:0"
    for name in ("torch-adjoint", "rk4-unrolled", "jax-checkpoint"):
        assert registry.BACKENDS[name].skip(task, "cuda") is None


def test_gpu_provenance_is_empty_without_nvidia_smi() -> None:
    if shutil.which("nvidia-smi"):
        assert "gpus" in gpu_provenance()
    else:
        assert gpu_provenance() == {}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line):
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_cuda_constraints_pin_the_tested_versions() -> None:
    """constraints-cuda.txt differs from constraints.txt only by the CUDA plugins."""
    cpu, cuda = _pins(ROOT / "constraints.txt"), _pins(ROOT / "constraints-cuda.txt")
    assert cuda["torch"] == cpu["torch"] and cuda["jax-cuda12-plugin"] == cpu["jax"]
    for name, version in cuda.items():
        if name in cpu:
            assert version == cpu[name], name


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("impl_name", ["torch-adjoint", "rk4-unrolled", "jax-checkpoint"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_gradient_matches_cpu(impl_name: str, dtype: str) -> None:
    """On CUDA the gradient matches the reference: float64 within 1e-5 (as on the CPU),
    float32 within 1e-3 (single precision at rtol = atol = 1e-7 is limited by rounding)."""
    cls = registry.BACKENDS[impl_name]
    if not cls.available():
        pytest.skip(cls.install)
    task, data, params, _, ref = problem("lotka_volterra")
    impl = cls(task, data, device="cuda", dtype=dtype)
    impl.reset_device_peak()
    _, grad = impl.value_and_grad(params)
    assert rel_error(grad, ref) < (1e-5 if dtype == "float64" else 1e-3)
    assert impl.device_peak_bytes() > 0
    cpu = backend(impl_name, "lotka_volterra")
    np.testing.assert_allclose(
        cpu.predict(params, data.t, data.y0), impl.predict(params, data.t, data.y0), rtol=1e-3, atol=1e-5
    )
