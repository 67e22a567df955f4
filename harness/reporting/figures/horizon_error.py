"""Figure: gradient error against the integration horizon t1 (`horizon_error.png`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.exponents import memory_series
from harness.reporting.figures.records import Record, geomean, group_labels, unique
from harness.reporting.figures.style import (
    group_colours,
    legend_below,
    new_figure,
    palette,
    save_figure,
    style,
)

__all__ = ["CAPTION", "horizon_error_figure"]

CAPTION = (
    "Gradient relative error against the integration horizon t1 (log-log), at each back-end's "
    "fixed solver setting: where a method's gradient degrades with the horizon (000 §2: u "
    "solved backwards may leave the forward solution)."
)


def horizon_error_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Gradient error against t1, one panel per task, one line per back-end (and option
    set); only where a back-end ran at two horizons or more."""
    series = memory_series(records)  # grouped by everything but the horizon
    if not series:
        return None
    colours = group_colours(list(series), palette(r["impl"] for r in records))
    tasks = unique(k[0] for k in series)
    with style():
        fig, axes = new_figure(len(tasks), 2, 6.4, 4.4)
        entries = {}
        for ax, task in zip(axes, tasks, strict=True):
            keys = [k for k in series if k[0] == task]
            labels = group_labels(keys)
            for key in keys:
                points = [
                    (t1, geomean(r.get("grad_rel_error") for r in members)) for t1, members in series[key]
                ]
                points = [(x, y) for x, y in points if y is not None and y > 0]
                if points:
                    xs, ys = zip(*points, strict=True)
                    (line,) = ax.plot(xs, ys, "o-", color=colours[key], lw=1.6, ms=5, label=labels[key])
                    entries.setdefault(labels[key], line)
            ax.set(xscale="log", yscale="log", title=task)
            ax.set_xlabel("integration horizon t1")
            ax.set_ylabel("gradient relative error")
        legend_below(fig, list(entries.values()), list(entries))
        fig.suptitle("Gradient error against the horizon")
        return save_figure(fig, Path(out_dir) / "horizon_error.png")


def _draw(data: FigureInput) -> Path | None:
    return horizon_error_figure(data.records, data.out_dir)


register(FigureSpec("horizon_error", CAPTION, _draw, order=45))
