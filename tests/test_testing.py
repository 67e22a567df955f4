"""The public conformance checks (`harness.testing`) on tasks written in the test itself:
a planted wrong VJP is caught before any back-end is compared, a correct task passes, a new
model that subclasses `MLP` is built by all four back-ends with no back-end edited, and a
task whose option check raises a ValueError is one line of usage error."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from scipy.linalg import expm

from harness import testing
from harness.core import registry
from harness.core.check_settings import LEGACY_NAMES, CheckSettings
from harness.core.claims import Claim
from harness.core.errors import UsageError
from harness.core.models import MLP, Parametric, Params
from harness.core.protocols import Dataset, Predictor
from harness.core.registry import register_task
from harness.numerics.metrics import rmse
from harness.numerics.trajectory_task import TrajectoryTask
from harness.planning.matrix import plan
from tasks.linear import Linear

K_TRUE, C_TRUE = 1.0, 0.5


def _field(params: Params, y: Any, xp: Any) -> Any:
    """f(y) = -k y + c (y2, y1): a coupled decay."""
    return -params["k"] * y + params["c"] * xp.flip(y, axis=1)


def _vjp(params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
    return -params["k"] * a + params["c"] * a[:, ::-1], {"k": -np.sum(a * y), "c": np.sum(a * y[:, ::-1])}


def _wrong_vjp(params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
    a_y, a_p = _vjp(params, y, a)
    return a_y, {**a_p, "k": -a_p["k"]}  # the planted sign error


class _Decay(TrajectoryTask):
    """A test task (no source document: "test"): the coupled decay dy/dt = -k y + c (y2, y1)
    with k = 1, c = 0.5, observed at 6 times in [0, 1] from 3 initial states."""

    name = "_decay"
    source = "test"
    options = {"n_obs": 6}
    claims = (Claim("fit", "test", "fits", "none", "fit_rmse", "<=", 0.1, "a test threshold"),)
    vjp = staticmethod(_vjp)

    @property
    def model(self) -> Parametric:
        return Parametric(
            name="decay",
            field=_field,
            vjp=type(self).vjp,
            initial=lambda seed: {"k": np.asarray(0.7 + 0.1 * seed), "c": np.asarray(0.2)},
        )

    def make_data(self, seed: int) -> Dataset:
        y0 = np.random.default_rng(seed).normal(size=(3, 2))
        t = np.linspace(0.0, 1.0, self.n_obs)
        m = np.array([[-K_TRUE, C_TRUE], [C_TRUE, -K_TRUE]])
        y = np.stack([y0 @ expm(m * s) for s in t])
        return Dataset(t=t, y=y, y0=y0, y_true=y, truth={"k": K_TRUE, "c": C_TRUE})

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        return {"fit_rmse": rmse(predict(data.t, data.y0), data.y_true)}

    def trajectories(self, predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
        return {}


class _WrongVjp(_Decay):
    """The coupled decay of `_Decay` with a sign error in its hand-written a^T df/dk."""

    name = "_wrong_vjp"
    vjp = staticmethod(_wrong_vjp)


def test_a_correct_task_passes() -> None:
    testing.check_task(_Decay)


def test_a_planted_wrong_vjp_is_caught_by_the_vjp_check() -> None:
    with pytest.raises(AssertionError, match=r"\[vjp\].*vjp_numpy: a\^T df/dk") as info:
        testing.check_task(_WrongVjp)
    assert "finite differences" in str(info.value)
    # independently, the reference gradient (forward sensitivities on the wrong VJP) fails
    # against differences of the loss through a solve that never calls the VJP
    with pytest.raises(AssertionError, match=r"\[reference_gradient\]"):
        testing.task_checks(_WrongVjp)("reference_gradient")


def test_the_wrong_vjp_fools_a_backend_comparison_that_rests_on_it() -> None:
    """Why check_task comes first: numpy-adjoint, built on the same wrong VJP, agrees with
    the wrong reference; only the independent checks above see the error."""
    cls = registry.BACKENDS["numpy-adjoint"]
    assert testing.backend_check(cls, _WrongVjp(), "gradient") is None


class DoubledMLP(MLP):
    """f(y) = 2 MLP(y): a new model that subclasses `MLP`, with its VJP."""

    def rhs(self, params: Params, y: Any, xp: Any) -> Any:
        return 2.0 * super().rhs(params, y, xp)

    def vjp_numpy(self, params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        return super().vjp_numpy(params, y, 2.0 * a)


class _DoubledLinear(Linear):
    """000 §3.1's linear system (`tasks.linear.Linear`) learnt by `DoubledMLP`."""

    name = "_doubled_linear"
    checks = CheckSettings(options={"batch": 4, "hidden": 8})

    @property
    def model(self) -> DoubledMLP:
        return DoubledMLP(sizes=(2, self.hidden, 2), activation="tanh")


def test_a_new_mlp_subclass_passes_check_task() -> None:
    testing.check_task(_DoubledLinear)


@pytest.mark.parametrize("old", sorted(LEGACY_NAMES))
def test_the_old_check_variables_are_refused_in_one_line(old: str) -> None:
    """#27 folded four class variables into `checks`; a task that still sets one would be
    checked at settings it does not ask for, so registering it (and `check_task`) says what
    it is now."""
    legacy = type("_Legacy", (_DoubledLinear,), {"__doc__": "000 §3.1", "name": "_legacy", old: {}})
    with pytest.raises(
        UsageError, match=rf"{old} is now checks = CheckSettings\({LEGACY_NAMES[old]}=\.\.\.\)"
    ):
        register_task(legacy)
    with pytest.raises(AssertionError, match=f"{old} is now checks"):
        testing.check_task(legacy)


@pytest.mark.parametrize("impl_name", ["numpy-adjoint", "torch-adjoint", "rk4-unrolled", "jax-checkpoint"])
def test_every_backend_builds_a_new_mlp_subclass(impl_name: str) -> None:
    cls = registry.BACKENDS[impl_name]
    task = _DoubledLinear(batch=4, hidden=8)
    assert cls.skip(task, "cpu") is None
    for check in ("skip", "gradient"):
        assert testing.backend_check(cls, task, check) is None


def test_check_backend_reports_skips() -> None:
    cls = registry.BACKENDS["numpy-adjoint"]
    out = testing.check_backend(cls, [_Decay(), "resnet_digits"])
    assert out["_decay"] is None
    reason = out["resnet_digits"]
    assert reason is not None and "\n" not in reason


class _PickyOptions(_Decay):
    """`_Decay` whose option check raises a ValueError (not a UsageError)."""

    name = "_picky_options"

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        if self.n_obs < 2:
            raise ValueError(f"n_obs must be at least 2, not {self.n_obs}\n(a second line)")


def test_a_task_option_error_is_one_line_of_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, _PickyOptions.name, _PickyOptions)
    with pytest.raises(UsageError) as info:
        plan(
            "_picky_options",
            "numpy-adjoint",
            sets={"n_obs": "1"},
            seeds=[0],
            iters=None,
            device="cpu",
            dtype="float64",
        )
    message = str(info.value)
    assert "\n" not in message and "_picky_options" in message and "n_obs must be at least 2" in message


def test_the_cli_prints_a_task_option_error_in_one_line(tmp_path: Any) -> None:
    plugin = tmp_path / "picky_plugin.py"
    plugin.write_text(
        "from harness.core.registry import register_task\n"
        "from tasks.linear import Linear\n\n\n"
        "@register_task\n"
        "class Picky(Linear):\n"
        '    """A task whose option check raises a ValueError."""\n\n'
        '    name = "_picky_cli"\n\n'
        "    def __init__(self, **overrides):\n"
        "        super().__init__(**overrides)\n"
        "        if self.n_obs > 1000:\n"
        '            raise ValueError("n_obs must be at most 1000")\n'
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--plugin",
            str(plugin),
            "--task",
            "_picky_cli",
            "--impl",
            "numpy-adjoint",
            "--set",
            "n_obs=2000",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "_picky_cli" in lines[0] and "n_obs must be at most 1000" in lines[0]
