"""The answer section: per task, the winner, runner-up and ratio of four questions; ties
within the measured spread; back-ends with a cell not ok left out."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from harness.reporting.answer import answer_html, answer_lines, answers
from harness.reporting.tables import format_records


def _record(impl: str, step: float, seed: int = 0, **fields: Any) -> dict[str, Any]:
    """A trained record whose evaluations take `step` seconds each, within 2 %."""
    times = list(itertools.accumulate(step * (1 + 0.02 * (i % 2)) for i in range(50)))
    return {
        "task": "toy",
        "impl": impl,
        "seed": seed,
        "status": "ok",
        "train_target_loss": 1e-3,
        "train_time_history": times,
        "train_loss_history": [1.0 / (i + 1) for i in range(50)],
        "train_time_to_target_s": times[20],
        "train_iters_to_target": 21,
        "grad_rel_error": 1e-8,
        "peak_framework_bytes": 2e6,
        **fields,
    }


def test_winner_runner_up_and_ratio() -> None:
    records = [
        _record("fast", 0.001, grad_rel_error=1e-10, peak_framework_bytes=4e6),
        _record("slow", 0.003, grad_rel_error=1e-8, peak_framework_bytes=1e6),
    ]
    (toy,) = answers(records).values()
    by_question = {a.question.split(" (")[0]: a for a in toy}
    fastest = by_question["fastest to the target loss 0.001"]
    assert [e[0] for e in fastest.ranked] == ["fast", "slow"] and not fastest.tie
    assert fastest.ratio == pytest.approx(
        records[1]["train_time_to_target_s"] / records[0]["train_time_to_target_s"]
    )
    assert by_question["cheapest training step"].ranked[0][0] == "fast"
    assert (
        by_question["most accurate gradient"]
        .line()
        .startswith("most accurate gradient: fast 1e-10, then slow")
    )
    assert by_question["least memory"].ranked[0][0] == "slow"
    assert by_question["least memory"].ratio == pytest.approx(4.0)


def test_ties_within_the_spread_over_seeds() -> None:
    """Over seeds, overlapping [min, max] ranges of time to target are a tie."""
    records = [
        *(_record("a", 0.001, seed=s, train_time_to_target_s=t) for s, t in enumerate((1.0, 1.4, 1.2))),
        *(_record("b", 0.001, seed=s, train_time_to_target_s=t) for s, t in enumerate((1.3, 1.5, 1.6))),
        *(_record("c", 0.001, seed=s, train_time_to_target_s=t) for s, t in enumerate((3.0, 3.1, 3.2))),
    ]
    fastest = answers(records)["toy"][0]
    assert [e[0] for e in fastest.ranked] == ["a", "b", "c"] and fastest.tie
    assert "a tie between a 1.2 s and b 1.5 s" in fastest.line()
    alone = answers(records[:3] + records[6:])["toy"][0]
    assert not alone.tie and alone.ratio == pytest.approx(3.1 / 1.2)


def test_a_backend_with_a_failed_cell_is_left_out_and_named() -> None:
    records = [
        _record("fast", 0.001),
        _record("broken", 0.0001, status="failed", reason="train: diverged"),
        _record("slow", 0.002),
    ]
    assert all("broken" not in [e[0] for e in a.ranked] for a in answers(records)["toy"])
    lines = answer_lines(records)
    assert lines[0].startswith("Which back-end?") and lines[-1] == "  left out (a cell not ok): toy / broken"
    page = "".join(answer_html(records))
    assert "fast" in page and "broken" not in page
    # each bar inside a fixed track, so lengths compare (a capped bar made 1.5 s and 15 s look alike)
    assert page.count('<span class="bar-track"><span class="bar" style="width:') == 4 * 2


def test_the_table_opens_with_verdicts_then_the_answer() -> None:
    records = [
        _record("fast", 0.001, claims=[{"claim": "fit", "verdict": "PASS", "source": "000"}]),
        _record("slow", 0.002, claims=[{"claim": "fit", "verdict": "PASS", "source": "000"}]),
    ]
    text = format_records(records)
    assert (
        text.index("Does it reproduce the source?")
        < text.index("Which back-end?")
        < text.index("grad rel err")
    )


def test_with_a_sweep_the_gradient_is_compared_at_one_time_budget() -> None:
    """Work-precision data (several tolerances per back-end): each back-end's best error
    among its settings within the slowest back-end's fastest call (here 5 ms)."""
    sweep = [
        ("a", 1e-3, 0.001, 1e-4),
        ("a", 1e-6, 0.002, 1e-8),
        ("a", 1e-9, 0.050, 1e-12),  # more accurate, but over the budget
        ("b", 1e-3, 0.005, 1e-6),
        ("b", 1e-6, 0.010, 1e-10),
    ]
    records = [
        _record(impl, 0.001, resolved_params={"rtol": tol}, time_median_s=t, grad_rel_error=e)
        for impl, tol, t, e in sweep
    ]
    gradient = next(a for a in answers(records)["toy"] if a.question.startswith("most accurate"))
    assert gradient.question == "most accurate gradient within 5 ms a call (work-precision sweep)"
    assert [(name, value) for name, value, _, _ in gradient.ranked] == [("a", 1e-8), ("b", 1e-6)]
    assert gradient.ratio == pytest.approx(100.0)
