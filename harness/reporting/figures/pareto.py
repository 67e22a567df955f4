"""Figure: accuracy, time and memory together, with the time-error Pareto front
(`pareto.png`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import Record, summary_frame, unique
from harness.reporting.figures.style import (
    group_colours,
    legend_below,
    new_figure,
    palette,
    save_figure,
    style,
)

__all__ = ["CAPTION", "CAPTION_NO_MEMORY", "describe", "pareto_figure"]

CAPTION = (
    "Accuracy, time and memory together: gradient relative error against steady-state time, "
    "marker area growing with the logarithm of peak memory (framework-level), one colour per "
    "back-end (lighter shades: other settings of the same back-end). The grey staircase is "
    "the time-error Pareto front."
)
#: the caption when no memory was measured (`--no-memory`): every marker the same size
CAPTION_NO_MEMORY = (
    "Accuracy and time together: gradient relative error against steady-state time, one "
    "colour per back-end (lighter shades: other settings of the same back-end); no memory "
    "was measured, so every marker has the same size. The grey staircase is the time-error "
    "Pareto front."
)


def _memory_mb(frame: Any) -> Any:
    """Framework-level peak memory in MB, RSS where that is missing, 0 when neither is."""
    memory = frame["peak_framework_bytes"].where(
        frame["peak_framework_bytes"].notna(), frame["peak_rss_bytes"]
    )
    return memory.astype(float).fillna(0.0) * 1e-6


def describe(records: Sequence[Record]) -> str:
    """`CAPTION`, or `CAPTION_NO_MEMORY` when no record holds a memory reading."""
    frame = summary_frame(records)
    return CAPTION if not frame.empty and bool((_memory_mb(frame) > 0).any()) else CAPTION_NO_MEMORY


def _marker_areas(memory_mb: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Marker areas 40..600 points^2, logarithmic in memory between `lo` and `hi` MB; a
    missing or zero reading gets the smallest marker."""
    if hi <= lo:
        return np.full(np.shape(memory_mb), 200.0)
    with np.errstate(all="ignore"):
        frac = (np.log(memory_mb) - math.log(lo)) / (math.log(hi) - math.log(lo))
    frac = np.where(np.isfinite(frac), np.clip(frac, 0.0, 1.0), 0.0)
    return 40.0 + 560.0 * frac


def _pareto_front(ax: Any, xs: np.ndarray, ys: np.ndarray) -> None:
    """Grey staircase through the points that no other point beats in both time and error."""
    order = np.argsort(xs)
    front_x, front_y, best = [], [], math.inf
    for i in order:
        if ys[i] < best:
            best = float(ys[i])
            front_x.append(float(xs[i]))
            front_y.append(best)
    if len(front_x) >= 2:
        ax.step(front_x, front_y, where="post", color="0.55", lw=1.0, ls="-", zorder=1)


def _label_handles(frame: Any, colours: Mapping[Any, Any], **line: Any) -> tuple[list, list[str]]:
    """Legend handles, one per back-end (its colour), in order of appearance."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    seen = {impl: colours[impl] for impl in unique(frame["impl"])}
    make = (lambda c: Line2D([], [], color=c, ls="", **line)) if line else (lambda c: Patch(color=c))
    return [make(c) for c in seen.values()], list(seen)


def _size_handles(lo: float, hi: float) -> tuple[list, list[str]]:
    """Legend entries for three reference memory sizes."""
    from matplotlib.lines import Line2D

    values = sorted({lo, math.sqrt(lo * hi), hi}) if hi > lo > 0 else [hi]
    areas = _marker_areas(np.asarray(values), lo, hi)
    handles = [Line2D([], [], ls="", marker="o", ms=math.sqrt(a), mfc="0.8", mec="0.3") for a in areas]
    return handles, [f"{v:.3g} MB" for v in values]


def pareto_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Accuracy, time and memory together: gradient error against steady-state time
    (log-log), marker area ~ log of the framework-level peak memory (RSS where that is
    missing), one colour per back-end, one panel per task; the grey staircase is the
    time-error Pareto front (points no other is both faster and more accurate than)."""
    frame = summary_frame(records)
    if frame.empty:
        return None
    frame = frame[(frame["time_median_s"] > 0) & (frame["grad_rel_error"] > 0)].copy()
    if frame.empty:
        return None
    frame["memory_mb"] = _memory_mb(frame)
    positive = frame["memory_mb"][frame["memory_mb"] > 0]
    lo, hi = (float(positive.min()), float(positive.max())) if len(positive) else (1.0, 1.0)
    base = palette(r["impl"] for r in records)
    colours = group_colours(list(frame["key"]), base)
    tasks = unique(frame["task"])
    with style():
        fig, axes = new_figure(len(tasks), 2, 6.2, 4.2)
        for ax, task in zip(axes, tasks, strict=True):
            part = frame[frame["task"] == task]
            xs, ys = part["time_median_s"].to_numpy(float), part["grad_rel_error"].to_numpy(float)
            _pareto_front(ax, xs, ys)
            ax.scatter(
                xs,
                ys,
                s=_marker_areas(part["memory_mb"].to_numpy(float), lo, hi),
                c=[colours[k] for k in part["key"]],
                alpha=0.75,
                edgecolors="0.2",
                linewidths=0.8,
                zorder=2,
            )
            ax.set(xscale="log", yscale="log", title=task)
            ax.margins(0.25)
            ax.set_xlabel("value-and-grad time, s (median)")
            ax.set_ylabel("gradient relative error")
        handles, names = _label_handles(frame, base, marker="o", ms=8)
        if len(positive):
            size_handles, size_names = _size_handles(lo, hi)
            handles, names = handles + size_handles, names + size_names
        legend_below(fig, handles, names)
        fig.suptitle(
            "Accuracy, time and memory (marker area: peak memory, log scale)"
            if len(positive)
            else "Accuracy and time (no memory measured)"
        )
        return save_figure(fig, Path(out_dir) / "pareto.png")


def _draw(data: FigureInput) -> Path | None:
    return pareto_figure(data.records, data.out_dir)


register(FigureSpec("pareto", CAPTION, _draw, order=50, describe=describe))
