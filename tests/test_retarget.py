"""`report DIR --target LOSS`: time and evaluations to any loss from the stored histories."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from harness import cli
from harness.reporting.retarget import at_target, step_time_s, to_target
from harness.store.results import load_records

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


def _trained() -> list[dict]:
    return [r for r in load_records(REFERENCE) if r.get("status") == "ok" and r.get("train_loss_history")]


def test_the_tasks_own_target_gives_back_what_the_run_recorded() -> None:
    """On every trained cell of the reference run that had a target (47 of them), the
    recomputed evaluations and seconds to the target are the run's own, exactly."""
    checked = 0
    for record in _trained():
        target = record.get("train_target_loss")
        if target is None:
            continue
        (again,) = at_target([record], target)
        assert again["train_iters_to_target"] == record["train_iters_to_target"], record["cell_id"]
        assert again["train_time_to_target_s"] == record["train_time_to_target_s"], record["cell_id"]
        checked += 1
    assert checked >= 40


def test_another_loss_is_the_first_evaluation_at_or_below_it() -> None:
    """For a loss other than the target: the evaluation found reaches it and none before
    does; a looser loss is reached no later, one below the final loss never."""
    for record in _trained()[:30]:
        losses = record["train_loss_history"]
        final = min(x for x in losses if math.isfinite(x))
        tight, loose = final * 10, final * 1e3
        iters, seconds = to_target(record, tight)
        assert iters is not None and seconds == record["train_time_history"][iters - 1]
        assert losses[iters - 1] <= tight and all(not (x <= tight) for x in losses[: iters - 1])
        assert to_target(record, loose)[0] <= iters  # type: ignore[operator]
        assert to_target(record, final / 2) == (None, None)


def test_continuum_learning_counts_only_the_full_window() -> None:
    """Losses over a shorter window (continuum learning) never reach a target; a run that
    stopped before the full window reached none."""
    record = {"train_loss_history": [0.1, 0.01, 0.5, 0.05], "train_time_history": [1.0, 2.0, 3.0, 4.0]}
    assert to_target({**record, "train_target_from": 2}, 0.2) == (4, 4.0)
    assert to_target(record, 0.2) == (1, 1.0)
    assert to_target({**record, "train_target_from": None}, 0.2) == (None, None)
    assert step_time_s(record) == 1.0 and step_time_s({"train_time_history": [1.0, 2.0]}) is None


def test_report_target_prints_and_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    records = [r for r in load_records(REFERENCE) if r["task"] == "double_pendulum"]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli.main(["report", str(folder), "--target", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "time to loss 1e-06: " in out and (folder / "figures" / "target-1e-06").is_dir()
    assert not (folder / "report.html").exists(), "the folder's report is left as it is"
    assert cli.main(["report", str(folder), "--target", "-1"]) == 2
    assert "--target must be a positive training loss" in capsys.readouterr().err
    shutil.rmtree(folder)
