"""Figure: training loss against iteration per back-end (`loss.png`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import (
    GroupKey,
    Record,
    effective_settings,
    finite,
    group_labels,
    ok_records,
    unique,
)
from harness.reporting.figures.style import group_colours, new_figure, palette, save_figure, style

__all__ = ["CAPTION", "loss_figure", "mean_band"]

CAPTION = (
    "Training loss per iteration (log scale), one line per back-end, the same initial "
    "weights and optimiser for all; with several seeds, the mean and a 95 % t-interval band. "
    "Lines that coincide mean the back-ends train identically."
)

_DASHES: list[tuple[float, ...]] = [(), (6, 2), (2, 2), (8, 2, 2, 2), (4, 1, 1, 1, 1, 1), (1, 1)]


def mean_band(curves: Sequence[Sequence[float]], level: float = 0.95) -> tuple[np.ndarray, ...]:
    """Mean of equal-length curves (truncated to the shortest) and its Student-t confidence
    band at `level`; the band is the mean itself for a single curve."""
    from scipy import stats

    n = min(len(c) for c in curves)
    data = np.asarray([c[:n] for c in curves], dtype=float)
    mean = data.mean(axis=0)
    if len(data) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + level / 2, len(data) - 1) * data.std(axis=0, ddof=1) / math.sqrt(len(data))
    return mean, mean - half, mean + half


def _loss_groups(records: Sequence[Record]) -> dict[GroupKey, list[list[float]]]:
    """Loss histories per group (one per seed); groups here keep the training parameters."""
    groups: dict[GroupKey, list[list[float]]] = {}
    for rec in ok_records(records):
        history = [float(x) for x in rec.get("train_loss_history") or [] if finite(x) is not None]
        if len(history) >= 2:
            params = json.dumps(effective_settings(rec), sort_keys=True, default=str)
            groups.setdefault((str(rec["task"]), str(rec["impl"]), params), []).append(history)
    return groups


def loss_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Training loss against iteration (log y), one panel per task, one line per back-end;
    several seeds: mean and 95 % t-interval band.  Back-ends that train identically
    coincide; dash patterns and widths keep them all visible."""
    groups = _loss_groups(records)
    if not groups:
        return None
    from matplotlib.ticker import MaxNLocator

    labels, base = group_labels(groups), palette(r["impl"] for r in records)
    colours = group_colours(list(groups), base)
    tasks = unique(k[0] for k in groups)
    with style():
        fig, axes = new_figure(len(tasks), 2, 6.2, 3.6)
        for ax, task in zip(axes, tasks, strict=True):
            keys = [k for k in groups if k[0] == task]
            for i, key in enumerate(keys):
                mean, lo, hi = mean_band(groups[key])
                x = np.arange(len(mean))
                seeds = len(groups[key])
                label = labels[key] + (f" (mean of {seeds} seeds, 95% CI)" if seeds > 1 else "")
                line = ax.plot(x, mean, color=colours[key], lw=2.6 - 1.6 * i / max(len(keys), 1), label=label)
                dashes = _DASHES[i % len(_DASHES)]
                if dashes:
                    line[0].set_dashes(dashes)
                if seeds > 1:
                    floor = np.min(mean[mean > 0]) * 1e-3 if np.any(mean > 0) else 1e-300
                    ax.fill_between(x, np.maximum(lo, floor), hi, color=colours[key], alpha=0.2, lw=0)
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(task)
            ax.set_xlabel("iteration")
            ax.set_ylabel("training loss")
            ax.legend(frameon=True, framealpha=0.85)
        fig.suptitle("Training loss per back-end (same initial weights, same optimiser)")
        return save_figure(fig, Path(out_dir) / "loss.png")


def _draw(data: FigureInput) -> Path | None:
    return loss_figure(data.records, data.out_dir)


register(FigureSpec("loss", CAPTION, _draw, order=10))
