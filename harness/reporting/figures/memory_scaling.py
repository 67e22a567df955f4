"""Figure: peak memory against the integration horizon t1 (`memory_scaling.png`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.exponents import (
    MEMORY_KINDS,
    fit_exponent,
    memory_points,
    memory_series,
    sweep_points,
)
from harness.reporting.figures.records import Record, fmt, group_labels, unique
from harness.reporting.figures.style import group_colours, new_figure, palette, save_figure, style

__all__ = ["CAPTION", "memory_scaling_figure", "memory_sweeps_figure"]

CAPTION = (
    "Peak memory against the integration horizon t1 (log-log): framework-level (left) and "
    "RSS (right). k is the least-squares slope of log memory against log t1 (memory ~ t1^k): "
    "about 0 for constant-memory methods, about 1 for methods that store every step."
)


def _horizon_ticks(ax: Any, horizons: Sequence[float]) -> None:
    """Ticks at the horizons that were run, written plainly (5, 10, 20 rather than 2x10^1)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xticks(list(horizons), [fmt(float(h)) for h in horizons])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def memory_scaling_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Peak memory against the integration horizon t1 (log-log): framework-level (left)
    and RSS (right), one row per task, one line per back-end, fitted exponent k in the
    legend; only where a back-end ran at two horizons or more."""
    series = memory_series(records)
    if not series:
        return None
    labels, base = group_labels(series), palette(r["impl"] for r in records)
    colours = group_colours(list(series), base)
    tasks = unique(k[0] for k in series)
    with style():
        fig, axes = new_figure(2 * len(tasks), 2, 7.4, 3.6)
        for row, task in enumerate(tasks):
            for col, (field, title) in enumerate(MEMORY_KINDS.values()):
                ax = axes[2 * row + col]
                for key in [k for k in series if k[0] == task]:
                    x, y = memory_points(series[key], field)
                    if len(x) == 0:
                        continue
                    k = fit_exponent(x, y)
                    suffix = f", k = {round(k, 2) + 0.0:.2f}" if k is not None else " (one point)"
                    ax.plot(x, y / 1e6, "o-", color=colours[key], lw=1.6, ms=5, label=labels[key] + suffix)
                ax.set(xscale="log", yscale="log", title=f"{task}: {title}")
                _horizon_ticks(ax, sorted({x for key in series if key[0] == task for x, _ in series[key]}))
                ax.set_xlabel("integration horizon t1")
                ax.set_ylabel("peak memory, MB")
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="memory ~ t1^k")
        fig.suptitle("Memory scaling with the integration horizon")
        return save_figure(fig, Path(out_dir) / "memory_scaling.png")


#: one row of `memory_sweeps_figure`: (what grows, x label, x of a record, the records)
Sweep = tuple[str, str, Callable[[Record], Any], Sequence[Record]]


def memory_sweeps_figure(sweeps: Sequence[Sweep], out_dir: Path) -> Path | None:
    """`harness study memory-scaling`: one row per sweep (e.g. solver steps at fixed
    observations; observations at fixed spacing), framework-level peak (left) and RSS
    (right) against the sweep's x, log-log, one line per back-end with its exponent k.
    Tasks share the panels (the study runs one task by default)."""
    rows = [(grows, xlabel, x_of, memory_series(recs)) for grows, xlabel, x_of, recs in sweeps]
    rows = [row for row in rows if row[3]]
    if not rows:
        return None
    base = palette(r["impl"] for *_, records in sweeps for r in records)
    with style():
        fig, axes = new_figure(2 * len(rows), 2, 7.4, 3.6)
        for i, (grows, xlabel, x_of, series) in enumerate(rows):
            labels = group_labels(series)
            colours = group_colours(list(series), base)
            for col, (field, title) in enumerate(MEMORY_KINDS.values()):
                ax = axes[2 * i + col]
                for key, points in series.items():
                    x, y = sweep_points(points, field, x_of)
                    if len(x) == 0:
                        continue
                    k = fit_exponent(x, y)
                    suffix = f", k = {round(k, 2) + 0.0:.2f}" if k is not None else " (one point)"
                    ax.plot(x, y / 1e6, "o-", color=colours[key], lw=1.6, ms=5, label=labels[key] + suffix)
                ax.set(xscale="log", yscale="log", title=f"{grows} grow: {title}", xlabel=xlabel)
                ax.set_ylabel("peak memory, MB")
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="memory ~ x^k")
        fig.suptitle("Memory scaling: solver steps at fixed observations, and observations")
        return save_figure(fig, Path(out_dir) / "memory_sweeps.png")


def _draw(data: FigureInput) -> Path | None:
    return memory_scaling_figure(data.records, data.out_dir)


register(FigureSpec("memory_scaling", CAPTION, _draw, order=40))
