"""Figure: training loss against wall-clock time per back-end, the benchmark a user choosing
a back-end wants ("which one gets my model trained first?").

One figure per task (`time-to-target-<task>.png`), log-log, one line per back-end (from
each record's `train_loss_history` and `train_time_history`); the task's target loss is a
horizontal line, the time budget a vertical one, and the point where a back-end first
reached the target is marked.  The clock starts after the back-end's first call, so its
JIT compilation is not in it (that is the record's `time_first_s`), except where a task
rebuilds the back-end for training (continuum learning, mini-batches) and compiles again
on it (`harness.numerics.training.TrainingMonitor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import Record, ok_records
from harness.reporting.figures.style import legend_below, new_figure, palette, save_figure, style

__all__ = ["CAPTION", "time_to_target_figure"]

CAPTION = (
    "Training loss against wall-clock time (log-log), one line per back-end, from the start "
    "of training, after the back-end's first call (its JIT compilation is not on this clock "
    "unless a task rebuilds the back-end for training). The dashed line is the "
    "task's target loss, where the Adam phase stops (a polish may follow); a dot marks when a "
    "back-end reached it; the dotted line is the wall-clock safety net (budgets count "
    "gradient evaluations). Over several seeds, each seed is a line of the back-end's colour."
)


def _curve(record: Record) -> tuple[np.ndarray, np.ndarray] | None:
    times = np.asarray(record.get("train_time_history") or [], dtype=float)
    losses = np.asarray(record.get("train_loss_history") or [], dtype=float)
    n = min(len(times), len(losses))
    keep = np.isfinite(times[:n]) & np.isfinite(losses[:n]) & (times[:n] > 0) & (losses[:n] > 0)
    if keep.sum() < 2:
        return None
    return times[:n][keep], losses[:n][keep]


def _spread(values: Sequence[float], fmt: str) -> str:
    """ "x" for one value, "median x [min, max]" for several."""
    if len(values) == 1:
        return format(values[0], fmt)
    mid, lo, hi = (format(v, fmt) for v in (float(np.median(values)), min(values), max(values)))
    return f"median {mid} [{lo}, {hi}]"


def _to_target(runs: Sequence[Record]) -> str:
    """The legend's time and evaluations to target of one back-end, over its seeds."""
    hit = [r for r in runs if r.get("train_time_to_target_s") is not None]
    if not hit:
        return f"not reached ({', '.join(sorted({str(r.get('train_stopped', 'iters')) for r in runs}))})"
    times = [float(r["train_time_to_target_s"]) for r in hit]
    evals = [float(r.get("train_iters_to_target") or 0) for r in hit]
    seeds = f" ({len(hit)} of {len(runs)} seeds)" if len(runs) > 1 else ""
    return f"target at {_spread(times, '.3g')} s, {_spread(evals, '.0f')} evals{seeds}"


def time_to_target_figure(records: Sequence[Record], out_dir: Path, task: str) -> Path | None:
    """`time-to-target-<task>.png`, or None when no record of `task` has a timed history."""
    rows = [r for r in ok_records(records) if r["task"] == task and _curve(r) is not None]
    if not rows:
        return None
    colours = palette(r["impl"] for r in records)
    with style():
        fig, (ax,) = new_figure(1, 1, 7.5, 4.4)
        handles, labels = [], []
        by_impl: dict[str, list[Record]] = {}
        for rec in sorted(rows, key=lambda r: (str(r["impl"]), int(r.get("seed") or 0))):
            by_impl.setdefault(str(rec["impl"]), []).append(rec)
        for impl, runs in by_impl.items():
            colour = colours[impl]
            line = None
            for rec in runs:
                curve = _curve(rec)
                assert curve is not None
                (line,) = ax.plot(*curve, color=colour, lw=1.8 if len(runs) == 1 else 1.0)
                reached = rec.get("train_time_to_target_s")
                if reached is not None:
                    ax.plot([reached], [rec.get("train_target_loss")], marker="o", color=colour, ms=7)
            handles.append(line)
            labels.append(f"{impl}: {_to_target(runs)}")
        target = next((r.get("train_target_loss") for r in rows if r.get("train_target_loss")), None)
        budget = next((r.get("train_budget_s") for r in rows if r.get("train_budget_s")), None)
        if target:
            handles.append(ax.axhline(target, color="0.3", ls="--", lw=1))
            labels.append(f"target loss {target:.3g}")
        if budget:
            handles.append(ax.axvline(budget, color="0.3", ls=":", lw=1.2))
            labels.append(f"budget {budget:.3g} s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("wall-clock time since training started, s (after the first call)")
        ax.set_ylabel("training loss")
        fig.suptitle(f"{task}: training loss against wall-clock time (time to target)")
        legend_below(fig, handles, labels)
        return save_figure(fig, Path(out_dir) / f"time-to-target-{task}.png")


def _draw(data: FigureInput) -> Path | None:
    return time_to_target_figure(data.records, data.out_dir, data.task)


register(FigureSpec("time-to-target", CAPTION, _draw, per_task=True, order=20))
