"""Figure: training loss against wall-clock time per back-end, the benchmark a user choosing
a back-end wants ("which one gets my model trained first?").

One figure per task, log-log, one line per back-end (from each record's
`train_loss_history` and `train_time_history`); the task's target loss is a horizontal
line, the time budget a vertical one, and the point where a back-end first reached the
target is marked.  The clock includes a JAX back-end's compilation of its training step
(`harness.numerics.training.TrainingMonitor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.reporting.figures import Record, _figure, _legend_below, _style, ok_records, palette, save_figure

__all__ = ["time_to_target_figure"]


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
    with _style():
        fig, (ax,) = _figure(1, 1, 7.5, 4.4)
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
        _legend_below(fig, handles, labels)
        return save_figure(fig, Path(out_dir) / f"time-to-target-{task}.png")
