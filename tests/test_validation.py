"""Every value is range-checked up front (issue 12, item 1): a bad task, solver, training,
back-end or process-level value, or a bad study grid, is one line on stderr naming the
option, the value and the valid range, exit status 2, and no cell runs (nothing is written)."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.core import registry
from harness.core.errors import UsageError
from harness.core.protocols import AbstractBackend, AbstractTask
from harness.core.ranges import (
    PROCESS_RANGES,
    Range,
    flag,
    integer,
    non_negative,
    one_of,
    positive,
    probability,
    text,
)
from harness.core.training_protocol import TRAIN_BASE
from harness.planning.config import SOLVER_RANGES, STOP_KEY, TRAIN_RANGES
from harness.planning.matrix import plan

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "examples" / "spiral_plugin" / "spiral_plugin" / "task.py"

registry.discover()


def _run_main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # the argument parser's own errors
        return int(exc.code or 0)


def _assert_refused(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *, chdir: bool = True
) -> str:
    """`argv` exits 2 with one line on stderr naming `needle`; nothing is written."""
    out = tmp_path / "out"
    code = _run_main([*argv, "--out", str(out)] if argv[0] in ("run", "reproduce", "study") else argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists(), "a results folder was written"
    if chdir:
        assert not (tmp_path / "results").exists()
    return lines[0]


RUN = ["run", "--impl", "numpy-adjoint", "--no-memory", "--quiet"]


def _task(name: str) -> list[str]:
    return [*RUN, "--task", name]


# (arguments, what the one line must contain)
CASES: list[tuple[list[str], str]] = [
    # task options: negative, zero, NaN, inf, huge, non-integer, strings
    ([*_task("linear"), "--set", "t1=-1"], "bad t1=-1: must be a finite number > 0"),
    ([*_task("linear"), "--set", "t1=0"], "bad t1=0"),
    ([*_task("linear"), "--set", "t1=nan"], "bad t1=nan"),
    ([*_task("linear"), "--set", "t1=inf"], "bad t1=inf"),
    ([*_task("linear"), "--set", "t1=1e999"], "bad t1=1e999"),
    ([*_task("linear"), "--set", "t1=long"], "bad t1=long"),
    ([*_task("linear"), "--set", "n_obs=1"], "bad n_obs=1: must be an integer >= 2"),
    ([*_task("linear"), "--set", "n_obs=2.5"], "bad n_obs=2.5"),
    ([*_task("linear"), "--set", "n_obs=1e30"], "bad n_obs=1e30"),
    ([*_task("linear"), "--set", "n_obs=many"], "bad n_obs=many"),
    ([*_task("linear"), "--set", "batch=0"], "bad batch=0: must be an integer >= 1"),
    ([*_task("linear"), "--set", "hidden=-3"], "bad hidden=-3"),
    ([*_task("linear"), "--set", "extrap=-0.5"], "bad extrap=-0.5: must be a finite number >= 0"),
    ([*_task("linear"), "--set", "sigma0=nan"], "bad sigma0=nan"),
    ([*_task("lotka_volterra_noisy"), "--set", "noise=-0.1"], "bad noise=-0.1"),
    ([*_task("lotka_volterra_noisy"), "--set", "noise=inf"], "bad noise=inf"),
    (
        [*_task("odenet_digits"), "--set", "test_fraction=1"],
        "bad test_fraction=1: must be a finite number in (0, 1)",
    ),
    ([*_task("odenet_digits"), "--set", "pool=-1"], "bad pool=-1"),
    ([*_task("hybrid_lotka_volterra"), "--set", "frac_physics=1.5"], "bad frac_physics=1.5"),
    ([*_task("hybrid_lotka_volterra"), "--set", "regression=lasso"], "bad regression=lasso: must be one of"),
    (
        [*_task("hybrid_lotka_volterra"), "--set", "learn_y0=maybe"],
        "bad learn_y0=maybe: must be true or false",
    ),
    ([*_task("hnn_double_pendulum"), "--set", "kernel=box"], "bad kernel=box"),
    ([*_task("double_pendulum"), "--set", "m1=0"], "bad m1=0"),
    ([*_task("lotka_volterra_params"), "--set", "n_times=0"], "bad n_times=0"),
    # task grids: a bad value in a later grid point refuses the whole run
    ([*RUN, "--task", "linear[t1=1,-1]"], "bad t1=-1"),
    ([*RUN, "--task", "linear[n_obs=11,nan]"], "bad n_obs=nan"),
    # solver options
    ([*_task("linear"), "--set", "rtol=nan"], "bad rtol=nan: must be a finite number > 0"),
    ([*_task("linear"), "--set", "rtol=0"], "bad rtol=0"),
    ([*_task("linear"), "--set", "atol=-1e-6"], "bad atol=-1e-6"),
    ([*_task("linear"), "--set", "tol=inf"], "bad tol=inf"),
    ([*_task("linear"), "--set", "rtol=fast"], "bad rtol=fast"),
    (["run", "--impl", "rk4-unrolled", "--no-memory", "--task", "linear", "--set", "dt=0"], "bad dt=0"),
    (["run", "--impl", "rk4-unrolled[dt=0.1,nan]", "--no-memory", "--task", "linear"], "bad dt=nan"),
    (["run", "--impl", "numpy-adjoint[rtol=1e-6,-1]", "--no-memory", "--task", "linear"], "bad rtol=-1"),
    # training options
    ([*_task("linear"), "--set", "iters=-1"], "bad iters=-1: must be an integer >= 0"),
    ([*_task("linear"), "--set", "iters=2.5"], "bad iters=2.5"),
    ([*_task("linear"), "--set", "lr=0"], "bad lr=0: must be a finite number > 0"),
    ([*_task("linear"), "--set", "lr=nan"], "bad lr=nan"),
    ([*_task("linear"), "--set", "target=nan"], "bad target=nan"),
    ([*_task("linear"), "--set", "target=-1"], "bad target=-1"),
    ([*_task("linear"), "--set", "budget=-1"], "bad budget=-1"),
    ([*_task("linear"), "--set", "budget=inf"], "bad budget=inf"),
    ([*_task("linear"), "--set", "curriculum=-2"], "bad curriculum=-2"),
    # back-end options
    (
        ["run", "--impl", "jax-checkpoint", "--no-memory", "--task", "linear", "--set", "max_steps=0"],
        "bad max_steps=0",
    ),
    (
        ["run", "--impl", "jax-checkpoint", "--no-memory", "--task", "linear", "--set", "max_steps=1.5"],
        "bad max_steps",
    ),
    ([*_task("linear"), "--set", "carry_step=maybe"], "bad carry_step=maybe: must be true or false"),
    (
        ["run", "--impl", "torch-adjoint", "--no-memory", "--task", "linear", "--set", "seminorm=2"],
        "bad seminorm=2",
    ),
    # process-level numbers
    ([*_task("linear"), "--seed", "-1"], "bad --seed=-1: must be an integer >= 0"),
    ([*_task("linear"), "--seed", "1.5"], "--seed"),
    ([*_task("linear"), "--seeds", "0,-1"], "bad --seeds=-1"),
    ([*_task("linear"), "--seeds", "0,x"], "bad --seeds=x"),
    ([*_task("linear"), "--seeds", "1e30"], "bad --seeds=1e30"),
    ([*_task("linear"), "--seeds", ","], "bad --seeds=,"),
    ([*_task("linear"), "--threads", "0"], "bad --threads=0: must be an integer in [1, 4096]"),
    ([*_task("linear"), "--timeout", "0"], "bad --timeout=0: must be a finite number > 0"),
    ([*_task("linear"), "--timeout", "nan"], "bad --timeout=nan"),
    ([*_task("linear"), "--timeout", "inf"], "bad --timeout=inf"),
    ([*_task("linear"), "--timeout", "-5"], "bad --timeout=-5"),
    ([*_task("linear"), "--repeats", "0"], "bad --repeats=0: must be an integer >= 1"),
    ([*_task("linear"), "--iters", "-1"], "bad --iters=-1: must be an integer >= 0"),
    ([*_task("linear"), "--train-budget", "0"], "bad --train-budget=0"),
    ([*_task("linear"), "--train-budget", "nan"], "bad --train-budget=nan"),
    ([*_task("linear"), "--train-budget", "inf"], "bad --train-budget=inf"),
    (["reproduce", "--task", "linear", "--impl", "numpy-adjoint", "--seed", "-3"], "bad --seed=-3"),
    # study grids and the studies' process-level numbers
    (
        ["study", "work-precision", "--task", "linear", "--impl", "numpy-adjoint", "--tols", "1e-6,nan"],
        "bad --tols=nan",
    ),
    (
        ["study", "work-precision", "--task", "linear", "--impl", "numpy-adjoint", "--tols", "0"],
        "bad --tols=0",
    ),
    (
        ["study", "work-precision", "--task", "linear", "--impl", "rk4-unrolled", "--substeps", "2.5"],
        "bad --substeps=2.5",
    ),
    (
        ["study", "work-precision", "--task", "linear", "--impl", "rk4-unrolled", "--substeps", "0"],
        "bad --substeps=0",
    ),
    (
        ["study", "memory-scaling", "--task", "linear", "--impl", "numpy-adjoint", "--horizons", "inf"],
        "bad --horizons=inf",
    ),
    (
        ["study", "memory-scaling", "--task", "linear", "--impl", "numpy-adjoint", "--horizons", "-1"],
        "bad --horizons=-1",
    ),
    (["study", "batch-scaling", "--impl", "numpy-adjoint", "--batches", "1,0"], "bad --batches=0"),
    (["study", "batch-scaling", "--impl", "numpy-adjoint", "--batches", "1.5"], "bad --batches=1.5"),
    (["study", "batch-scaling", "--impl", "numpy-adjoint", "--batches", "lots"], "bad --batches=lots"),
    (
        ["study", "determinism", "--task", "linear", "--impl", "numpy-adjoint", "--iters", "-1"],
        "bad --iters=-1",
    ),
    (
        ["study", "determinism", "--task", "linear", "--impl", "numpy-adjoint", "--seed", "-1"],
        "bad --seed=-1",
    ),
    (
        ["study", "determinism", "--task", "linear", "--impl", "numpy-adjoint", "--timeout", "nan"],
        "bad --timeout=nan",
    ),
    (
        ["study", "determinism", "--task", "linear", "--impl", "numpy-adjoint", "--repeats", "0"],
        "bad --repeats=0",
    ),
]


@pytest.mark.parametrize(("argv", "needle"), CASES, ids=[" ".join(a[-2:]) for a, _ in CASES])
def test_a_bad_value_is_one_line_exit_2_and_nothing_runs(
    argv: list[str],
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the default results folder would land here
    _assert_refused(argv, needle, tmp_path, capsys)


def test_the_line_names_the_option_the_value_and_the_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _assert_refused([*_task("linear"), "--set", "t1=-1"], "t1", tmp_path, capsys)
    assert line == "error: bad t1=-1: must be a finite number > 0"


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--threads", "0"], "bad --threads=0"),
        (["--threads=-2"], "bad --threads=-2"),
        (["--threads", "many"], "bad --threads=many"),
        (["--set", "rtol=nan"], "bad rtol=nan"),
    ],
)
def test_python_m_harness_refuses_in_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    """Through `python -m harness`: `--threads` is read before the parser (and NumPy)."""
    out = tmp_path / "out"
    proc = _subprocess("run", "--task", "linear", "--impl", "numpy-adjoint", "--out", str(out), *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------- declarations


def _registered_tasks() -> list[type[AbstractTask]]:
    return [cls for cls in registry.TASKS.values() if cls.__module__.startswith("tasks.")]


def _spiral() -> type[AbstractTask]:
    """The example plugin's task, loaded into a copy of the registry (nothing leaks)."""
    saved = dict(registry.TASKS)
    try:
        spec = importlib.util.spec_from_file_location("_spiral_ranges_check", SPIRAL)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.Spiral
    finally:
        registry.TASKS.clear()
        registry.TASKS.update(saved)


def _kind_of(default: Any) -> type:
    return bool if isinstance(default, bool) else type(default)


def _check_declared(owner: str, options: dict[str, Any], ranges: dict[str, Range]) -> None:
    missing = sorted(set(options) - set(ranges))
    assert not missing, f"{owner}: options without a declared range (option_ranges): {missing}"
    extra = sorted(set(ranges) - set(options))
    assert not extra, f"{owner}: ranges of no option: {extra}"
    for key, default in options.items():
        valid = ranges[key]
        assert valid.kind is _kind_of(default), f"{owner}.{key}: range of {valid.kind}, default {default!r}"
        assert valid.accepts(default), f"{owner}.{key}: default {default!r} outside {valid.describe()}"


def test_every_option_of_every_registered_task_has_a_range() -> None:
    tasks = _registered_tasks()
    assert len(tasks) >= 12
    for cls in tasks:
        _check_declared(f"task {cls.name}", cls.options, cls.option_ranges)
        for key, default in cls.solver_defaults.items():
            assert key in SOLVER_RANGES and SOLVER_RANGES[key].accepts(default), (cls.name, key)
        for key, default in cls.protocol.settings().items():
            assert TRAIN_RANGES[key].accepts(default), (cls.name, key, default)
        check = {**cls.options, **cls.checks.options}
        for key, value in cls.checks.options.items():
            assert cls.option_ranges[key].accepts(value), (cls.name, key, value)
        assert check


def test_the_example_plugin_declares_its_ranges() -> None:
    cls = _spiral()
    _check_declared(f"task {cls.name}", cls.options, cls.option_ranges)


def test_every_option_of_every_backend_has_a_range() -> None:
    impls: list[type[AbstractBackend]] = [
        cls for cls in registry.BACKENDS.values() if cls.__module__.startswith("backends.")
    ]
    assert len(impls) >= 4
    for cls in impls:
        _check_declared(f"back-end {cls.name}", cls.options, cls.option_ranges)
        assert set(cls.solver_options) <= set(SOLVER_RANGES), cls.name


def test_solver_training_and_process_ranges_are_declared_once() -> None:
    assert set(TRAIN_RANGES) == {*TRAIN_BASE, STOP_KEY}
    for key, value in TRAIN_BASE.items():
        assert TRAIN_RANGES[key].accepts(value), key
    assert {"rtol", "atol", "dt", "tol"} <= set(SOLVER_RANGES)
    assert {"--seed", "--seeds", "--threads", "--timeout", "--repeats", "--iters", "--train-budget"} <= set(
        PROCESS_RANGES
    )


def test_a_task_without_a_declared_range_fails_the_declaration_check() -> None:
    class _Forgetful(AbstractTask):
        name = "_forgetful"
        options = {"t1": 1.0, "n_obs": 5}
        option_ranges = {"t1": positive()}

    with pytest.raises(AssertionError, match="without a declared range"):
        _check_declared("task _forgetful", _Forgetful.options, _Forgetful.option_ranges)


def test_plan_checks_every_cell_before_returning(tmp_path: Path) -> None:
    """A grid whose last point is bad yields no cells at all."""
    with pytest.raises(UsageError, match=r"bad hidden=0: must be an integer >= 1"):
        plan(
            "linear[hidden=8,16,0]",
            "numpy-adjoint,rk4-unrolled",
            sets={},
            seeds=[0, 1],
            iters=1,
            device="cpu",
            dtype="float64",
        )
    with pytest.raises(UsageError, match="bad seed=-1"):
        plan("linear", "numpy-adjoint", sets={}, seeds=[0, -1], iters=1, device="cpu", dtype="float64")


def test_good_values_pass_and_are_typed() -> None:
    cells = plan(
        "linear[n_obs=1e1,5]",
        "numpy-adjoint",
        sets={"t1": "2", "carry_step": "no", "rtol": "1e-6"},
        seeds=[0],
        iters=1,
        device="cpu",
        dtype="float64",
    )
    assert sorted(c["task_options"]["n_obs"] for c in cells) == [5, 10]
    assert all(type(c["task_options"]["n_obs"]) is int and c["task_options"]["t1"] == 2.0 for c in cells)
    assert all(c["impl_options"]["carry_step"] is False and c["solver"]["rtol"] == 1e-6 for c in cells)


# ----------------------------------------------------------------- the range type


@pytest.mark.parametrize(
    ("valid", "value", "message"),
    [
        (positive(), math.nan, "bad x=nan: must be a finite number > 0"),
        (positive(), math.inf, "bad x=inf: must be a finite number > 0"),
        (positive(), -math.inf, "bad x=-inf"),
        (non_negative(), -1e-300, "must be a finite number >= 0"),
        (probability(), 1.5, "must be a finite number in [0, 1]"),
        (probability(open_ends=True), 0.0, "must be a finite number in (0, 1)"),
        (integer(2), 1, "must be an integer >= 2"),
        (integer(2), 2.5, "must be an integer >= 2"),
        (integer(2), True, "must be an integer >= 2"),
        (integer(0), 2**70, "(at most 2**63 - 1)"),
        (integer(1, 8), 9, "must be an integer in [1, 8]"),
        (flag(), 1, "must be true or false"),
        (one_of("a", "b"), "c", "must be one of a, b"),
        (text(), 3, "must be text"),
        (positive(), "3", "must be a finite number > 0"),
    ],
)
def test_range_check_refuses_in_one_line(valid: Range, value: Any, message: str) -> None:
    with pytest.raises(UsageError) as info:
        valid.check("x", value)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("valid", "raw", "expected"),
    [
        (positive(), "1e-6", 1e-6),
        (positive(), 3, 3.0),
        (integer(2), "1e3", 1000),
        (integer(0), " 7 ", 7),
        (flag(), "Yes", True),
        (flag(), "0", False),
        (one_of("a", "b"), "b", "b"),
        (text(), "", ""),
    ],
)
def test_range_parse_accepts_good_values(valid: Range, raw: Any, expected: Any) -> None:
    value = valid.parse("x", raw)
    assert value == expected and type(value) is type(expected)
