"""The `gradient-methods` study (#14): the cells it plans, the claim metrics it computes
from records (on synthetic records, so every branch is checked exactly), and one small
sweep end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.studies import STUDIES
from harness.studies.gradient_methods import CLAIMS, claim_metrics, judge_claims


def _args(*argv: str) -> Any:
    return cli._parser().parse_args(["study", "gradient-methods", *argv])


def test_default_plan_every_method_over_tolerances_and_horizons() -> None:
    cells = STUDIES["gradient-methods"].cells(_args())
    variants = {(c["impl"], tuple(sorted(c["impl_options"].items()))) for c in cells}
    assert len(variants) == 9  # numpy-adjoint x 4, torch-adjoint x 2, torch-direct, jax x 2
    sweep = [c for c in cells if not c["task_options"]]
    horizon = [c for c in cells if c["task_options"]]
    assert {c["task"] for c in sweep} == {"lotka_volterra", "double_pendulum"}
    assert sorted({c["solver"]["rtol"] for c in sweep}) == [1e-8, 1e-6, 1e-4]
    assert len(sweep) == 9 * 2 * 3 and len(horizon) == 9 * 4
    assert {c["task_options"]["n_obs"] for c in horizon} == {11}
    assert {c["solver"]["rtol"] for c in horizon} == {1e-6}


def _rec(impl: str, tol: float, err: float, nfe_b: int = 100, *, t1: float | None = None,
         **extra: Any) -> Any:  # fmt: skip
    """A synthetic ok record."""
    options = {k: extra.pop(k) for k in ("mode", "seminorm") if k in extra}
    params = {"t1": t1, "n_obs": 11} if t1 is not None else {}
    return {
        "task": "lv", "impl": impl, "status": "ok", "grad_rel_error": err, "nfe_backward": nfe_b,
        "params": params, "resolved_params": {"rtol": tol, "atol": tol, **params, **options}, **extra,
    }  # fmt: skip


def test_claim_metrics_from_records() -> None:
    records = [
        # optimise-then-discretise with their twins; 1e-8 is below the claim's tolerance floor
        _rec("jax-backsolve", 1e-4, 4e-5, discrete_twin="jax-checkpoint", grad_rel_error_discrete=2e-5),
        _rec("jax-backsolve", 1e-6, 4e-7, discrete_twin="jax-checkpoint", grad_rel_error_discrete=3e-7),
        _rec("jax-backsolve", 1e-8, 4e-9, discrete_twin="jax-checkpoint", grad_rel_error_discrete=1e-12),
        _rec("jax-checkpoint", 1e-4, 2e-5),
        _rec("jax-checkpoint", 1e-6, 1e-7),
        # seminorm: 200 -> 120 and 100 -> 80 backward evaluations (40%, 20%); backsolve ignored
        _rec("torch-adjoint", 1e-4, 1e-5, 200, seminorm=False),
        _rec("torch-adjoint", 1e-4, 1e-5, 120, seminorm=True),
        _rec("numpy-adjoint", 1e-4, 1e-5, 100, mode="interpolate", seminorm=False),
        _rec("numpy-adjoint", 1e-4, 1e-5, 80, mode="interpolate", seminorm=True),
        _rec("numpy-adjoint", 1e-4, 1e-5, 100, mode="backsolve", seminorm=False),
        _rec("numpy-adjoint", 1e-4, 1e-5, 10, mode="backsolve", seminorm=True),
        # horizon sweep: at the longest horizon backsolve is 50x worse
        _rec("numpy-adjoint", 1e-6, 1e-6, t1=10, mode="interpolate", seminorm=False),
        _rec("numpy-adjoint", 1e-6, 1e-4, t1=10, mode="backsolve", seminorm=False),
        _rec("numpy-adjoint", 1e-6, 2e-6, t1=40, mode="interpolate", seminorm=False),
        _rec("numpy-adjoint", 1e-6, 1e-4, t1=40, mode="backsolve", seminorm=False),
        {"task": "lv", "impl": "jax-backsolve", "status": "failed", "grad_rel_error": 1.0},
    ]
    metrics = claim_metrics(records)
    assert metrics["otd_discrete_error_min"] == pytest.approx(3e-7)
    assert metrics["otd_over_dto_error_median"] == pytest.approx(3.0)  # 4e-5/2e-5 and 4e-7/1e-7
    assert metrics["seminorm_backward_reduction_median"] == pytest.approx(0.3)
    assert metrics["backsolve_over_interpolate_error_longest"] == pytest.approx(50.0)
    verdicts = {row["claim"]: row["verdict"] for row in judge_claims(metrics)}
    assert verdicts == {
        "otd-approximate": "PASS",
        "dto-at-least-as-accurate": "PASS",
        "backsolve-incorrect": "PASS",
        "seminorm-fewer-backward-steps": "PASS",
    }


def test_claims_not_measured_are_no_result_and_a_miss_is_fail() -> None:
    verdicts = {row["claim"]: row["verdict"] for row in judge_claims(claim_metrics([]))}
    assert set(verdicts.values()) == {"NO RESULT"} and len(verdicts) == len(CLAIMS)
    metrics = {"otd_discrete_error_min": 1e-13, "seminorm_backward_reduction_median": 0.05}
    verdicts = {row["claim"]: row["verdict"] for row in judge_claims(metrics)}
    assert verdicts["otd-approximate"] == "FAIL" and verdicts["seminorm-fewer-backward-steps"] == "FAIL"


@pytest.mark.slow  # one of the longest end-to-end runs: left out by -m 'not slow'
def test_a_small_sweep_end_to_end(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torchdiffeq")
    out = tmp_path / "gm"
    code = cli.main(
        ["study", "gradient-methods", "--task", "linear_adjoint", "--tols", "1e-4,1e-6", "--horizons", "1,2",
         "--horizon-task", "linear_adjoint",
         "--impl", "numpy-adjoint[mode=interpolate,backsolve],torch-adjoint",
         "--repeats", "1", "--quiet", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "claims:" in printed and "otd-approximate" in printed
    saved = json.loads((out / "gradient_methods.json").read_text())
    assert {row["claim"] for row in saved["claims"]} == {c.id for c in CLAIMS}
    # torch-adjoint's twin (torch-direct) ran in each of its cells: the 004 metric is measured
    assert saved["metrics"]["otd_discrete_error_min"] is not None
    assert saved["metrics"]["backsolve_over_interpolate_error_longest"] is not None
    assert (out / "figures" / "work_precision.png").exists()
    # the verdicts are in the folder's report too
    for report in ("report.md", "report.html"):
        text = (out / report).read_text()
        assert "Claims about the methods" in text and "backsolve-incorrect" in text
