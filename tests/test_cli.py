"""The command line end to end, and its answers to bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from harness import cli
from harness.core import registry
from harness.core.models import AbstractVectorField
from harness.core.protocols import AbstractBackend
from harness.store.results import load_records

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--task", "nope"], "unknown task 'nope'; choose from: double_pendulum"),
        (["run", "--task", "lotka_volterra", "--impl", "nope"], "unknown back-end 'nope'; choose from:"),
        (["run", "--task", "lotka_volterra", "--set", "rtol"], "bad --set value 'rtol': expected key=value"),
        (
            ["run", "--task", "lotka_volterra", "--set", "rtol=fast"],
            "bad rtol=fast: must be a finite number > 0",
        ),
        (
            ["run", "--task", "lotka_volterra", "--set", "colour=red"],
            "unknown --set key 'colour'; valid keys",
        ),
        (["run", "--task", "lotka_volterra", "--device", "tpu"], "unknown device 'tpu'; choose from: cpu"),
        (["run", "--task", "lotka_volterra", "--repeats", "0"], "bad --repeats=0"),
        (["run", "--task", "lotka_volterra", "--train-budget", "0"], "bad --train-budget=0"),
        (["run", "--task", "lotka_volterra", "--train-budget", "nan"], "bad --train-budget=nan"),
        (["run", "--task", "lotka_volterra", "--set", "target=nan"], "bad target=nan"),
        (["run", "--task", "lotka_volterra", "--set", "budget=-1"], "bad budget=-1"),
        (["reproduce", "--task", "nope"], "unknown task 'nope'; choose from: double_pendulum"),
        (["report", "/no/such/folder"], "no results folder at '/no/such/folder'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    proc = harness(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupt_results_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_text('{"task": "x", "impl": "y", "status": "ok"}\nnot json\n')
    proc = harness("report", str(tmp_path))
    assert proc.returncode == 2
    assert f"corrupt results file '{tmp_path / 'records.jsonl'}': line 2" in proc.stderr


def test_list_names_every_task_and_backend() -> None:
    proc = harness("list")
    assert proc.returncode == 0
    for name in [*registry.TASKS, *registry.BACKENDS]:
        assert name in proc.stdout
    # each task's training protocol with its default budgets (#25)
    assert "| adam (500) -> lbfgs (2000) " in _row(proc.stdout, "double_pendulum")
    assert "| minibatch-sgd (12 epochs) -> lbfgs (0) " in _row(proc.stdout, "odenet_mnist")


def _row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"| {name} "))


#: the example plugin (examples/spiral_plugin), named relative to the working directory
SPIRAL_FILE = Path("examples") / "spiral_plugin" / "spiral_plugin" / "task.py"


@pytest.mark.slow  # one of the longest end-to-end runs: left out by -m 'not slow'
def test_a_plugin_task_end_to_end_on_every_backend(tmp_path: Path) -> None:
    """The command line's one end-to-end run: the example plugin's task (`--plugin FILE`) on
    every back-end with the isolated memory probe, then the report in all formats.

    Checks, at once: the worker and memory-probe processes load the plugin the parent was
    given (a probe that does not find the task leaves its numbers None); every back-end is
    ok and its record complete (gradient error, first-call and steady-state times, NFE,
    solver steps and checkpoints, memory, training, metrics, provenance); `report` reads the
    folder in every format.
    (Was three runs: a built-in task on every back-end, the plugin on every back-end
    without the probe, the plugin on one back-end with it.)
    """
    out = tmp_path / "run"
    proc = harness(
        "run", "--plugin", str(SPIRAL_FILE), "--task", "spiral", "--impl", "all",
        "--set", "n_obs=11", "--set", "t1=1", "--set", "hidden=4", "--set", "iters=3", "--set", "extrap=0.5",
        "--repeats", "2", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr  # 1: a claim not reached in 3 iterations
    records = load_records(out)
    assert {r["impl"] for r in records} == set(registry.BACKENDS)
    for rec in records:
        if rec["status"] == "skipped":
            assert rec["reason"].startswith("unavailable") or "does not" in rec["reason"]
            continue
        assert rec["status"] == "ok" and rec["task"] == "spiral", rec["reason"]
        # measured 5e-12 (rk4-unrolled) to 6.0e-6 (torch-direct) at the task's rtol = atol = 1e-7
        assert rec["grad_rel_error"] < 1e-4
        assert rec["time_median_s"] > 0 and rec["time_first_s"] > 0
        assert rec["nfe_forward"] > 0 and rec["nfe_backward"] > 0
        assert rec["peak_rss_bytes"] is not None and rec["peak_framework_bytes"] is not None
        assert rec["peak_rss_first_call_bytes"] is not None
        assert len(rec["train_loss_history"]) == 3 and rec["train_loss_final"] < rec["loss_init"]
        assert {"fit_rmse", "fit_rmse_relative", "extrap_forward_rmse"} <= set(rec["metrics"])
        assert rec["env"]["threads"]["OMP_NUM_THREADS"] == "1" and rec["env"]["versions"]["numpy"]
        # the checkpoints the backward pass keeps: equinox's default at max_steps 4096 for
        # jax-checkpoint; none for the continuous adjoint or the direct one
        assert rec["solver_checkpoints"] == (90 if rec["impl"] == "jax-checkpoint" else None), rec["impl"]
        if rec["impl"].startswith("jax"):
            assert rec["solver_steps"] > 0
    assert (out / "summary.csv").is_file() and (out / "env.json").is_file()
    for fmt in ("table", "csv", "json"):
        rep = harness("report", str(out), "--format", fmt)
        assert rep.returncode == 0 and "spiral" in rep.stdout
    lines = harness("report", str(out), "--format", "json").stdout.splitlines()
    assert len(lines) == len(records) and all(json.loads(line)["run_id"] for line in lines)


class _MissingLibrary(AbstractBackend):
    """A back-end whose framework is not installed."""

    name = "test-missing-library"
    framework = "nothing"
    requires: ClassVar[tuple[str, ...]] = ("a_module_that_is_not_installed",)
    install = "pip install a-module-that-is-not-installed"
    builds = (AbstractVectorField,)


def test_missing_library_is_skipped_and_others_still_run(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(registry.BACKENDS, _MissingLibrary.name, _MissingLibrary)
    out = tmp_path / "run"
    code = cli.main(
        [
            "run",
            "--task",
            "linear_adjoint",
            "--impl",
            "test-missing-library,numpy-adjoint",
            "--iters",
            "0",
            "--repeats",
            "1",
            "--no-memory",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    records = {r["impl"]: r for r in load_records(out)}
    assert records["test-missing-library"]["status"] == "skipped"
    assert records["test-missing-library"]["reason"] == (
        "unavailable (a_module_that_is_not_installed missing): pip install a-module-that-is-not-installed"
    )
    assert records["numpy-adjoint"]["status"] == "ok"
    assert "unavailable" in capsys.readouterr().out


def test_reproduce_judges_the_claims_and_sets_the_exit_status(tmp_path: Path) -> None:
    """`reproduce` prints the verdicts first; exit 0 when every claim holds, 1 when one
    FAILs.  A cell cut to two evaluations whose claims fail is NOT CONVERGED, never FAIL
    (exit 0); with a convergence criterion that two evaluations meet (`gtol=10`) the same
    model FAILs (exit 1), and `--confirm` trains it again with 10x the budgets and says
    that the FAIL held."""
    common = ["--task", "linear_adjoint", "--impl", "numpy-adjoint", "--repeats", "1", "--no-memory"]
    good = harness("reproduce", *common, "--out", str(tmp_path / "good"), "--quiet")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("Does it reproduce the source?")
    assert "| recovers-W " in good.stdout and "PASS" in good.stdout
    record = load_records(tmp_path / "good")[0]
    assert record["train_stopped"] == "target" and record["train_iters_to_target"] < 200
    assert [v["verdict"] for v in record["claims"]] == ["PASS", "PASS"]
    short = harness("reproduce", *common, "--iters", "2", "--out", str(tmp_path / "short"), "--quiet")
    assert short.returncode == 0, short.stdout + short.stderr
    assert "verdicts: 2 NOT CONVERGED" in short.stdout and "not converged after 2 evaluations" in short.stdout
    loose = ["--iters", "2", "--set", "gtol=10", "--confirm", "--out", str(tmp_path / "loose"), "--quiet"]
    failed = harness("reproduce", *common, *loose)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "verdicts: 2 FAIL" in failed.stdout
    confirmed = failed.stdout.split("Do the failures hold with 10x the training?")[1]
    assert confirmed.count("| held ") == 2 and "| 2 / " in confirmed and "| 20 / " in confirmed
    assert load_records(tmp_path / "loose" / "confirm")[0]["train_evals"] == 20
    # `run` judges the same claims, but its exit status stays that of the run
    ran = harness(
        "run", *common, "--iters", "2", "--set", "gtol=10", "--out", str(tmp_path / "run"), "--quiet"
    )
    assert ran.returncode == 0 and "FAIL" in ran.stdout
