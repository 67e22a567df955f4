"""Figure: gradient error against time as the solver setting changes (`work_precision.png`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import (
    SOLVER_KEYS,
    Record,
    effective_settings,
    geomean,
    group_labels,
    mean,
    solver_setting,
    sweep_series,
    unique,
)
from harness.reporting.figures.style import (
    group_colours,
    legend_below,
    new_figure,
    palette,
    save_figure,
    style,
)

__all__ = ["CAPTION", "work_precision_figure"]

CAPTION = (
    "Work-precision: gradient relative error against steady-state time (log-log) as the "
    "solver setting changes (rtol = atol for adaptive back-ends, step dt for RK4; each "
    "point labelled with it). Down and to the left is better."
)


def _setting(params: dict[str, Any]) -> float | None:
    setting = solver_setting(params)
    return setting[1] if setting else None


def work_precision_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Gradient relative error against steady-state time (log-log), one panel per task,
    one line per back-end through its solver settings (rtol, or dt for RK4), each point
    labelled with its setting; only (task, back-end) pairs with two settings or more."""
    series = sweep_series(records, SOLVER_KEYS, _setting)
    if not series:
        return None
    colours = group_colours(list(series), palette(r["impl"] for r in records))
    tasks = unique(k[0] for k in series)
    with style():
        fig, axes = new_figure(len(tasks), 2, 6.4, 4.4)
        entries: dict[str, Any] = {}
        for ax, task in zip(axes, tasks, strict=True):
            keys = [k for k in series if k[0] == task]
            labels = group_labels(keys)
            for key in keys:
                line = _work_precision_line(ax, series[key], labels[key], colours[key])
                if line is not None:
                    entries.setdefault(labels[key], line)
            ax.set(xscale="log", yscale="log", title=task)
            ax.margins(x=0.15, y=0.1)
            ax.set_xlabel("value-and-grad time, s (median)")
            ax.set_ylabel("gradient relative error")
        legend_below(fig, list(entries.values()), list(entries))
        fig.suptitle("Work-precision (point labels: rtol = atol, or RK4 dt)")
        return save_figure(fig, Path(out_dir) / "work_precision.png")


def _setting_name(record: Record, value: float) -> str:
    key = solver_setting(effective_settings(record))
    text = f"{value:.0e}" if float(f"{value:.0e}") == value else f"{value:.2g}"
    text = text.replace("e-0", "e-").replace("e+0", "e")
    return f"dt={text}" if key and key[0] == "dt" else text


def _work_precision_line(
    ax: Any, points: Sequence[tuple[float, list[Record]]], label: str, colour: Any
) -> Any:
    """One back-end's line through its solver settings, each point named by its setting
    (settings that give the same error and about the same time share one name)."""
    xs, ys, names = [], [], []
    for value, members in points:
        x = mean(r.get("time_median_s") for r in members)
        y = geomean(r.get("grad_rel_error") for r in members)
        if x is None or y is None or x <= 0:
            continue
        xs.append(x)
        ys.append(y)
        names.append(_setting_name(members[0], value))
    if not xs:
        return None
    (line,) = ax.plot(xs, ys, "o-", color=colour, lw=1.6, ms=5, label=label)
    for x, y, name in _merge_close(xs, ys, names):
        ax.annotate(name, (x, y), xytext=(5, 3), textcoords="offset points", fontsize=7, color=colour)
    return line


def _merge_close(
    xs: Sequence[float], ys: Sequence[float], names: Sequence[str]
) -> list[tuple[float, float, str]]:
    """Points closer than ~5 % in both log coordinates share one annotation."""
    merged: list[tuple[float, float, list[str]]] = []
    for x, y, name in zip(xs, ys, names, strict=True):
        for mx, my, mnames in merged:
            if abs(math.log10(x / mx)) < 0.1 and abs(math.log10(y / my)) < 0.1:
                mnames.append(name)
                break
        else:
            merged.append((x, y, [name]))
    return [(x, y, ", ".join([n[0], *(m.removeprefix("dt=") for m in n[1:])])) for x, y, n in merged]


def _draw(data: FigureInput) -> Path | None:
    return work_precision_figure(data.records, data.out_dir)


register(FigureSpec("work_precision", CAPTION, _draw, order=30))
