"""Figure: training loss against wall-clock time per back-end, the benchmark a user choosing
a back-end wants ("which one gets my model trained first?").

One figure per task (`time-to-target-<task>.png`), log-log, one line per back-end (from
each record's `train_loss_history` and `train_time_history`); the task's target loss is a
horizontal line, the time budget a vertical one, and the point where a back-end first
reached the target is marked.  The clock includes a JAX back-end's compilation of its
training step (`harness.numerics.training.TrainingMonitor`).
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
    "of training (a JAX back-end's compilation of its step included). The dashed line is the "
    "task's target loss, where training stops; a dot marks when a back-end reached it; the "
    "dotted line is the time budget, after which a back-end's claims are NOT REACHED."
)


def _curve(record: Record) -> tuple[np.ndarray, np.ndarray] | None:
    times = np.asarray(record.get("train_time_history") or [], dtype=float)
    losses = np.asarray(record.get("train_loss_history") or [], dtype=float)
    n = min(len(times), len(losses))
    keep = np.isfinite(times[:n]) & np.isfinite(losses[:n]) & (times[:n] > 0) & (losses[:n] > 0)
    if keep.sum() < 2:
        return None
    return times[:n][keep], losses[:n][keep]


def time_to_target_figure(records: Sequence[Record], out_dir: Path, task: str) -> Path | None:
    """`time-to-target-<task>.png`, or None when no record of `task` has a timed history."""
    rows = [r for r in ok_records(records) if r["task"] == task and _curve(r) is not None]
    if not rows:
        return None
    colours = palette(r["impl"] for r in records)
    with style():
        fig, (ax,) = new_figure(1, 1, 7.5, 4.4)
        handles, labels = [], []
        for rec in sorted(rows, key=lambda r: str(r["impl"])):
            curve = _curve(rec)
            assert curve is not None
            colour = colours[rec["impl"]]
            (line,) = ax.plot(*curve, color=colour, lw=1.8)
            reached = rec.get("train_time_to_target_s")
            label = f"{rec['impl']}: " + (
                f"target at {reached:.3g} s, {rec.get('train_iters_to_target')} it"
                if reached is not None
                else f"not reached ({rec.get('train_stopped', 'iters')})"
            )
            if reached is not None:
                ax.plot([reached], [rec.get("train_target_loss")], marker="o", color=colour, ms=7)
            handles.append(line)
            labels.append(label)
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
        ax.set_xlabel("wall-clock time since training started, s (compilation included)")
        ax.set_ylabel("training loss")
        fig.suptitle(f"{task}: training loss against wall-clock time (time to target)")
        legend_below(fig, handles, labels)
        return save_figure(fig, Path(out_dir) / f"time-to-target-{task}.png")


def _draw(data: FigureInput) -> Path | None:
    return time_to_target_figure(data.records, data.out_dir, data.task)


register(FigureSpec("time-to-target", CAPTION, _draw, per_task=True, order=20))
