"""Claims as data: every task declares its source's claims, and `judge` gives each verdict."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from harness.core import registry
from harness.core.claims import (
    FAILING,
    Claim,
    CrossClaim,
    cross_verdict_rows,
    fit_claim,
    judge,
    judge_cross,
    judge_record,
    verdict_rows,
)

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "records.jsonl"

FIT = Claim(
    "fit",
    "000 §3.2, Fig. 3",
    "follows the truth",
    "Fig. 3",
    "fit_rmse_relative",
    "<=",
    0.05,
    "5% is invisible",
)
RATIO = Claim(
    "backward",
    "000 §3.1",
    "fails backward",
    "Fig. 2",
    "back",
    ">=",
    2.0,
    "twice the forward error",
    ratio_to="fwd",
)
KNOWN = Claim(
    "backward", "000 §3.2", "fails backward", "Fig. 4", "back", ">=", 0.2, "a fifth", finding="it follows"
)


def _record(metrics: dict, **fields: object) -> dict:
    """A converged record unless `fields` say otherwise."""
    return {
        "task": "t",
        "impl": "i",
        "status": "ok",
        "metrics": metrics,
        "train_stopped": "converged",
        "train_converged": True,
        "train_converged_by": "gradient norm 1e-9 <= 1e-06 x its initial 0.1",
        **fields,
    }


def test_every_task_declares_claims_with_unique_ids() -> None:
    registry.discover()
    for name, cls in registry.TASKS.items():
        if cls.source.startswith("user data"):  # `timeseries`: no document claims anything
            assert not cls.claims and not cls.noise_free_truth, name
            continue
        assert cls.claims, f"task {name} declares no claim of its source"
        ids = [c.id for c in cls.claims]
        assert len(ids) == len(set(ids)), f"task {name} repeats a claim id: {ids}"
        for claim in cls.claims:
            assert claim.source.split()[0].rstrip(",;") in cls.source, (name, claim.source, cls.source)


@pytest.mark.skipif(not REFERENCE.is_file(), reason="no committed reference run")
def test_every_claim_is_judged_on_the_reference_run() -> None:
    """Each claim's metric is one its task really measures: no claim of a measured record of
    the reference run is NO RESULT (a typo in a metric name would make it so), and every
    task has such a record (a cell that failed, e.g. diverged, is NO RESULT by right)."""
    registry.discover()
    records = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line.strip()]
    measured = [rec for rec in records if rec["status"] == "ok"]
    built_in = {name for name, task in registry.TASKS.items() if task.__module__.startswith("tasks.")}
    assert built_in <= {rec["task"] for rec in measured}
    for rec in measured:
        for verdict in judge_record(registry.TASKS[rec["task"]].claims, rec):
            assert verdict["verdict"] != "NO RESULT", (rec["task"], rec["impl"], verdict)


def test_pass_and_fail() -> None:
    assert judge(FIT, _record({"fit_rmse_relative": 0.02})).verdict == "PASS"
    failed = judge(FIT, _record({"fit_rmse_relative": 0.4}))
    assert (failed.verdict, failed.measured) == ("FAIL", 0.4)
    assert "FAIL" in FAILING


def test_an_unconverged_failure_is_not_converged_and_says_how_far_training_got() -> None:
    """A model cut to a few evaluations that fails its claim is NOT CONVERGED, never FAIL
    (nor KNOWN FAIL), whatever stopped it; the note gives evaluations, wall time, the stop
    and the criterion's figures."""
    unconverged = {
        "train_converged": False,
        "train_converged_by": "gradient norm 0.02 > 1e-06 x its initial 0.1",
        "train_evals": 3,
        "train_wall_s": 1.4,
    }
    for stopped in ("iters", "budget", "target"):
        verdict = judge(FIT, _record({"fit_rmse_relative": 0.4}, train_stopped=stopped, **unconverged))
        assert verdict.verdict == "NOT CONVERGED", stopped
        assert "3 evaluations" in verdict.note and "1 s" in verdict.note and "0.02 > 1e-06" in verdict.note
    assert judge(KNOWN, _record({"back": 0.06}, **unconverged)).verdict == "NOT CONVERGED"
    assert "NOT CONVERGED" not in FAILING
    # a record from before convergence checks is not evidence against a claim either
    old = _record({"fit_rmse_relative": 0.4})
    del old["train_converged"]
    assert judge(FIT, old).verdict == "NOT CONVERGED" and "predates" in judge(FIT, old).note


def test_a_claim_that_holds_passes_whatever_stopped_training() -> None:
    """A budget-stopped (or otherwise unconverged) model that meets its claim is PASS."""
    for stopped in ("budget", "iters", "target"):
        record = _record({"fit_rmse_relative": 0.01}, train_stopped=stopped, train_converged=False)
        assert judge(FIT, record).verdict == "PASS"
    assert (
        judge(KNOWN, _record({"back": 7.9}, train_stopped="budget", train_converged=False)).verdict == "PASS"
    )


def test_ratio_claims() -> None:
    assert judge(RATIO, _record({"back": 1.5, "fwd": 0.3})).verdict == "PASS"
    verdict = judge(RATIO, _record({"back": 0.4, "fwd": 0.3}))
    assert verdict.verdict == "FAIL"
    assert math.isclose(verdict.measured, 0.4 / 0.3)
    assert RATIO.test == "back / fwd >= 2"


def test_a_claim_with_a_finding_is_a_known_failure() -> None:
    verdict = judge(KNOWN, _record({"back": 0.06}))
    assert (verdict.verdict, verdict.note) == ("KNOWN FAIL", "it follows")
    assert "KNOWN FAIL" not in FAILING
    assert judge(KNOWN, _record({"back": 0.6})).verdict == "PASS"


def test_contains_claims_on_text_metrics() -> None:
    claim = Claim("term", "004", "finds the term", "cat^0.9", "found_terms", "contains", "cat^0.95", "truth")
    assert judge(claim, _record({"found_terms": ["cat^0.95"]})).verdict == "PASS"
    assert judge(claim, _record({"found_terms": ["cat^2"]})).verdict == "FAIL"


def test_failed_skipped_and_missing_metrics() -> None:
    crashed = {"status": "failed", "reason": "train: crashed", "metrics": None}
    assert judge(FIT, crashed).verdict == "NO RESULT"
    assert judge(FIT, {"status": "skipped", "reason": "no GPU"}).verdict == "SKIPPED"
    assert judge(FIT, _record({"other": 1.0})).verdict == "NO RESULT"
    assert judge(FIT, _record({"fit_rmse_relative": None})).verdict == "NO RESULT"


def test_a_claim_states_its_reason_and_a_valid_comparison() -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        Claim("x", "000", "c", "d", "m", "=~", 1.0, "why")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reason"):
        Claim("x", "000", "c", "d", "m", "<=", 1.0, " ")


ACCURATE = CrossClaim(
    "as-accurate", "003 §4", "about as accurate", "0.9958 vs 0.9952", "acc", "resnet", ">=", -0.03, "2 SE"
)


def _pair(ode: float, res: float, **fields: object) -> list[dict]:
    return [
        {**_record({"acc": ode}), "task": "ode", "impl": "i", "seed": 0, **fields},
        {**_record({"acc": res}), "task": "resnet", "impl": "i", "seed": 0},
    ]


def test_a_claim_over_two_tasks_is_judged_on_the_pair_of_records() -> None:
    """ODENet against ResNet: the difference of the two accuracies of the same back-end and
    seed; FAIL only with both models converged; no pair, no result."""
    rows = cross_verdict_rows(_pair(0.95, 0.96), lambda task: (ACCURATE,) if task == "ode" else ())
    assert [(r["task"], r["verdict"], r["measured"]) for r in rows] == [("ode vs resnet", "PASS", "-0.01")]
    assert ACCURATE.test == "acc - resnet.acc >= -0.03"
    ode, res = _pair(0.90, 0.96)
    assert judge_cross(ACCURATE, ode, res).verdict == "FAIL"
    unconverged = {**ode, "train_converged": False, "train_evals": 4}
    verdict = judge_cross(ACCURATE, unconverged, res)
    assert verdict.verdict == "NOT CONVERGED" and verdict.note.startswith("ode: not converged after 4")
    assert judge_cross(ACCURATE, ode, None).verdict == "NO RESULT"
    skipped = judge_cross(ACCURATE, ode, {"status": "skipped", "reason": "no ResNet"})
    assert (skipped.verdict, skipped.note) == ("SKIPPED", "no ResNet"), "the skipped record's reason alone"
    # another seed's ResNet is not this one's pair
    other_seed = {**res, "seed": 1}
    assert (
        cross_verdict_rows([ode, other_seed], lambda task: (ACCURATE,) if task == "ode" else ())[0]["verdict"]
        == "NO RESULT"
    )


def test_a_claim_over_two_tasks_pairs_records_of_the_same_options() -> None:
    """The HNN against the neural ODE (000 §4.1): `double_pendulum` runs on [0, 0.25] by
    default, the HNN on [0, 3]; a pair on different windows is no result, with the options
    that make one, and a record on the same window is found among several."""
    same = dataclasses.replace(ACCURATE, same=("t1", "n_obs"))
    ode, res = _pair(0.95, 0.96, resolved_params={"t1": 3.0, "n_obs": 61})
    short = {**res, "resolved_params": {"t1": 0.25, "n_obs": 26}}
    rows = cross_verdict_rows([ode, short], lambda task: (same,) if task == "ode" else ())
    assert rows[0]["verdict"] == "NO RESULT"
    assert rows[0]["note"] == "no resnet record on the same t1, n_obs: run it with --set t1=3 --set n_obs=61"
    matched = {**res, "resolved_params": {"t1": 3.0, "n_obs": 61, "hidden": 8}}
    for order in ([ode, short, matched], [ode, matched, short]):
        rows = cross_verdict_rows(order, lambda task: (same,) if task == "ode" else ())
        assert [(r["verdict"], r["measured"]) for r in rows] == [("PASS", "-0.01")]


def test_cross_claims_name_registered_tasks_and_their_metrics() -> None:
    registry.discover()
    declared = [(name, c) for name, cls in registry.TASKS.items() for c in cls.cross_claims]
    assert {c.other_task for _, c in declared} >= {"resnet_digits", "resnet_mnist", "double_pendulum"}
    for name, claim in declared:
        assert claim.other_task in registry.TASKS and claim.other_task != name
        assert claim.source.split()[0] in registry.TASKS[name].source
        other = registry.TASKS[claim.other_task]
        assert set(claim.same) <= set(registry.TASKS[name].options) & set(other.options)


def test_a_claim_an_untrained_model_meets_passes_only_when_converged() -> None:
    """ "Fails backward" holds trivially for an untrained model (26.9 on torch-adjoint's
    lotka_volterra, stopped by its safety net): PASS only on a converged one."""
    back = fit_claim("fails-backward", "000 §3.2", "fails backward", "Fig. 4", 0.2, "a fifth")
    assert back.needs_training and not fit_claim("fit", "s", "c", "d", 0.05, "w").needs_training
    metrics = {"extrap_backward_rmse_relative": 26.9}
    assert judge(back, _record(metrics)).verdict == "PASS"
    verdict = judge(back, _record(metrics, train_converged=False, train_stopped="budget"))
    assert verdict.verdict == "NOT CONVERGED"


def test_a_cell_that_did_not_train_has_no_verdicts() -> None:
    """A study without training (work-precision, memory-scaling) printed NO RESULT "metric
    not measured" for every claim of every ok cell (#26); it has no model to judge."""
    untrained = {"task": "ode", "impl": "i", "seed": 0, "status": "ok", "train_iters": 0}
    assert judge_record([FIT, KNOWN], untrained) == []
    assert verdict_rows([untrained], lambda task: (FIT,)) == []
    assert cross_verdict_rows([untrained, {**untrained, "task": "resnet"}], lambda task: (ACCURATE,)) == []
    # a failed cell is still a NO RESULT, a trained one is judged
    assert judge_record([FIT], {**untrained, "status": "failed", "reason": "x"})[0]["verdict"] == "NO RESULT"
    assert judge_record([FIT], _record({"fit_rmse_relative": 0.01}))[0]["verdict"] == "PASS"
