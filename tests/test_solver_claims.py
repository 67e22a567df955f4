"""The `solver-claims` study (#29): the published solver claims are data with sources and
tests; their judging on synthetic measurements (every verdict, exactly); a tiny real run
through the command line (verdicts, JSON with provenance, the figure); the speed part on a
tiny horizon; bad options one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.core.claims import Claim
from harness.studies import STUDIES
from harness.studies.solver_claims import RESULTS_FILE
from harness.studies.solver_claims import claims as solver_claims
from harness.studies.solver_claims.claims import CLAIMS, PARTS, SolverClaim, claim_metrics, judge_claims


def _measurements() -> dict[str, Any]:
    """Synthetic rows of every part, with figures whose metrics are known exactly."""
    batch = [
        {"batch": 1, "torchdiffeq_joint_steps": 100, "torchode_per_sample_steps_max": 100},
        {"batch": 64, "torchdiffeq_joint_steps": 350, "torchode_per_sample_steps_max": 100},  # 3.5
        {"batch": 1024, "torchdiffeq_joint_steps": 200, "torchode_per_sample_steps_max": 100},
    ]
    controller = [
        {"mu": 5.0, "pid_saving": -0.02},
        {"mu": 10.0, "pid_saving": 0.005},  # the non-stiff max
        {"mu": 25.0, "pid_saving": 0.5},  # neither stiff nor not: ignored
        {"mu": 50.0, "pid_saving": 0.03},
        {"mu": 100.0, "pid_saving": 0.05},  # stiff median 0.04
    ]
    nets = []
    for seed, (plain, semi, rms, forward) in enumerate(
        [(100, 50, 80, 200), (100, 80, 100, 100), (100, 60, 60, 50)]
    ):
        for norm, backward in (("default", plain), ("seminorm", semi), ("rms", rms)):
            nets.append(
                {"width": 64, "seed": seed, "norm": norm, "nfe_forward": forward, "nfe_backward": backward}
            )
    speed = [{"ratio_median": 2.0}, {"ratio_median": 12.0}, {"ratio_median": 1.5}]
    return {"batch": batch, "controller": controller, "seminorm": nets, "speed": speed}


def test_claims_are_data_with_sources_and_tests() -> None:
    ids = [c.claim.id for c in CLAIMS]
    assert len(ids) == len(set(ids)) == 7
    metrics = claim_metrics(_measurements())
    for item in CLAIMS:
        claim = item.claim
        assert isinstance(claim, Claim) and item.part in PARTS
        assert claim.source.strip() and claim.claim.strip() and claim.document.strip() and claim.why.strip()
        assert claim.metric in metrics and claim.test.startswith(claim.metric)
    sources = " ".join(c.claim.source for c in CLAIMS)
    for source in ("torchode", "Kidger, Chen and Lyons", "torchdiffeq/issues/97", "diffrax"):
        assert source in sources
    with pytest.raises(ValueError, match="part must be one of"):
        SolverClaim(CLAIMS[0].claim, "nope")


def test_metrics_from_synthetic_measurements() -> None:
    metrics = claim_metrics(_measurements())
    assert metrics["joint_over_per_sample_steps_max"] == pytest.approx(3.5)
    assert metrics["pid_saving_stiff_median"] == pytest.approx(0.04)
    assert metrics["pid_saving_nonstiff_max"] == pytest.approx(0.005)
    # seminorm against the default: 50 %, 20 %, 40 % -> median 40 %; against full RMS: 37.5, 20, 0
    assert metrics["seminorm_backward_reduction_median"] == pytest.approx(0.4)
    assert metrics["seminorm_vs_full_rms_reduction_median"] == pytest.approx(0.2)
    assert metrics["backward_over_forward_nfe_median"] == pytest.approx(1.0)  # 0.5, 1, 2
    assert metrics["torchdiffeq_over_diffrax_min"] == 1.5 and metrics["torchdiffeq_over_diffrax_max"] == 12.0


def test_judging_pass_fail_and_no_result() -> None:
    verdicts = {v["claim"]: v for v in judge_claims(claim_metrics(_measurements()), gpu=False)}
    assert {k: v["verdict"] for k, v in verdicts.items()} == {
        "joint-control-up-to-4x-steps": "PASS",  # 3.5 >= 3
        "pid-saves-steps-when-stiff": "PASS",  # 0.04 >= 0.02
        "pid-no-saving-when-not-stiff": "PASS",  # 0.005 <= 0.01
        "seminorm-40pct-fewer-backward": "PASS",  # 0.4 >= 0.3
        "backward-half-of-forward": "FAIL",  # 1.0 > 0.6
        "torchdiffeq-1.3x-slower-at-least": "PASS",  # 1.5 >= 1.17
        "torchdiffeq-20x-slower-at-most": "PASS",  # 12 <= 22
    }
    measurements = _measurements()
    measurements["speed"] = [{"ratio_median": 1.1}, {"ratio_median": 30.0}]
    del measurements["controller"]
    verdicts = {v["claim"]: v for v in judge_claims(claim_metrics(measurements), gpu=False)}
    assert verdicts["torchdiffeq-1.3x-slower-at-least"]["verdict"] == "FAIL"
    assert verdicts["torchdiffeq-20x-slower-at-most"]["verdict"] == "FAIL"
    missing = verdicts["pid-saves-steps-when-stiff"]
    assert missing["verdict"] == "NO RESULT" and "'controller' was not run" in missing["note"]
    assert missing["measured"] is None


def test_a_gpu_claim_is_judged_only_where_a_gpu_is(monkeypatch) -> None:
    gpu_claim = SolverClaim(CLAIMS[0].claim, "batch", needs_gpu=True)
    monkeypatch.setattr(solver_claims, "CLAIMS", (gpu_claim,))
    metrics = claim_metrics(_measurements())
    [without] = judge_claims(metrics, gpu=False)
    [with_gpu] = judge_claims(metrics, gpu=True)
    assert without["verdict"] == "NO RESULT" and "needs a GPU" in without["note"] and without["needs_gpu"]
    assert with_gpu["verdict"] == "PASS" and with_gpu["measured"] == pytest.approx(3.5)


TINY = ["--parts", "batch,controller,seminorm", "--batches", "1,4", "--mus", "5,50",
        "--controller-batch", "2", "--widths", "8", "--net-seeds", "1", "--quiet"]  # fmt: skip


def test_a_tiny_run_through_the_cli(tmp_path: Path, capsys) -> None:
    assert "solver-claims" in STUDIES
    out = tmp_path / "claims"
    assert cli.main(["study", "solver-claims", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "solver claims:" in printed and "joint-control-up-to-4x-steps" in printed
    result = json.loads((out / RESULTS_FILE).read_text())
    verdicts = {v["claim"]: v["verdict"] for v in result["claims"]}
    for item in CLAIMS:  # measured parts judged, the speed part not run
        expected = {"NO RESULT"} if item.part == "speed" else {"PASS", "FAIL"}
        assert verdicts[item.claim.id] in expected, (item.claim.id, verdicts)
    batch = {r["batch"]: r for r in result["measurements"]["batch"]}
    # at batch 1 joint and per-sample control are the same solve in torchode
    assert batch[1]["torchode_joint_steps"] == batch[1]["torchode_per_sample_steps_max"]
    assert batch[4]["torchdiffeq_joint_steps"] > batch[1]["torchdiffeq_joint_steps"]
    nets = result["measurements"]["seminorm"]
    assert {r["norm"] for r in nets} == {"default", "seminorm", "rms"}
    assert len({r["nfe_forward"] for r in nets}) == 1  # the norm changes only the backward pass
    assert result["provenance"]["versions"]["torch"] and "threads" in result["provenance"]
    assert result["settings"]["batches"] == [1, 4] and set(result["seconds"]) == {
        "batch",
        "controller",
        "seminorm",
    }
    figure = out / "figures" / "solver_claims_steps.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the folder holds results now: another run there needs --force
    assert cli.main(["study", "solver-claims", *TINY, "--out", str(out)]) == 2
    assert "give another --out or --force" in capsys.readouterr().err


def test_the_speed_part_times_both_libraries() -> None:
    from harness.studies.solver_claims.speed import speed_ratios

    [row] = speed_ratios(2, t1=1.0, configs=[(False, True)])
    assert row["grad"] and not row["multiple"] and row["repeats"] == 2
    assert row["diffrax_compile_s"] > 0 and row["torchdiffeq_s_median"] > 0 and row["diffrax_s_median"] > 0
    assert row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"]
    assert row["torchdiffeq_steps"] >= 1 and row["diffrax_steps"] >= 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parts", "batch,nope"], "bad --parts=batch,nope: expected one or more of batch, controller"),
        (["--batches", "0"], "bad --batches=0"),
        (["--mus", "-1"], "bad --mus=-1"),
        (["--widths", "2.5"], "bad --widths=2.5"),
        (["--net-seeds", "0"], "bad --net-seeds=0"),
        (["--controller-batch", "x"], "bad --controller-batch=x"),
        (["--impl", "torch-adjoint"], "does not take --impl torch-adjoint"),
        (["--task", "lotka_volterra"], "--task does not apply"),
    ],
)
def test_bad_options_are_one_line(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    code = cli.main(["study", "solver-claims", *argv, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x" / RESULTS_FILE).exists()
