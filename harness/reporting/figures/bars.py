"""Figure: time, memory and gradient error per back-end as bars (`bars.png`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import GroupKey, Record, summary_frame, unique
from harness.reporting.figures.style import group_colours, palette, save_figure, style

__all__ = ["BAR_PANELS", "CAPTION", "bars_figure", "describe"]

CAPTION = (
    "Per task and back-end: steady-state value-and-grad time (median, error bar: "
    "interquartile range), peak RSS of a steady-state call and of the first call (isolated "
    "process, over the baseline), framework-level peak memory, and the gradient's relative "
    "error against the reference; log scales; '0' marks a zero reading."
)

#: what each panel shows, for the caption of the panels drawn
_PANEL_WORDS = {
    "time_median_s": "steady-state value-and-grad time (median, error bar: interquartile range)",
    "peak_rss_bytes": "peak RSS of a steady-state call (isolated process, over the baseline)",
    "peak_rss_first_call_bytes": "peak RSS of the first call",
    "peak_framework_bytes": "framework-level peak memory",
    "grad_rel_error": "the gradient's relative error against the reference",
}

#: (column, axis label, scale to the axis unit) of the bar panels
BAR_PANELS = (
    ("time_median_s", "value-and-grad time, ms\n(median; error bar: IQR)", 1e3),
    ("peak_rss_bytes", "peak RSS, MB\n(steady state)", 1e-6),
    ("peak_rss_first_call_bytes", "peak RSS, MB\n(first call)", 1e-6),
    ("peak_framework_bytes", "framework-level peak, MB", 1e-6),
    ("grad_rel_error", "gradient relative error", 1.0),
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _log_floor(values: Iterable[Any]) -> float:
    """Bottom of a log axis: a third of the smallest positive value."""
    positive = [float(v) for v in values if not _missing(v) and v > 0]
    return min(positive) / 3 if positive else 1.0


def _bar_panel(
    ax: Any,
    rows: Any,
    column: str,
    scale: float,
    limits: tuple[float, float],
    colours: Mapping[GroupKey, Any],
) -> None:
    """Horizontal bars of one column, one per group (top to bottom), log scale within
    `limits`, each with its value; the time gets its IQR as error bar, a zero reading is
    written as "0"."""
    floor = limits[0]
    values = [float(v) * scale if not _missing(v) else None for v in rows[column]]
    for y, (value, (_, row)) in enumerate(zip(values, rows.iterrows(), strict=True)):
        colour = colours[row["key"]]
        if value is None:
            ax.text(floor, y, " n/a", va="center", fontsize=7.5, color="0.4")
        elif value <= 0:
            ax.text(floor, y, " 0", va="center", fontsize=7.5, color=colour)
        else:
            err, end = None, value
            if column == "time_median_s" and not _missing(row["time_iqr_s"]):
                half = 0.5 * float(row["time_iqr_s"]) * scale
                err, end = [[min(half, value - floor)], [half]], value + half
            ax.barh(
                y, value - floor, left=floor, height=0.75, color=colour, xerr=err, capsize=2, ecolor="0.2"
            )
            ax.annotate(
                f"{value:.0f}" if value >= 100 else f"{value:.2g}",
                (end, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.set_xlim(*limits)
    ax.set_ylim(len(values) - 0.5, -0.5)


def _bar_limits(frame: Any, column: str, scale: float) -> tuple[float, float]:
    """x-range of a bar column: a third of the smallest value to 20 times the largest
    (room for the value written after each bar)."""
    values = [float(v) * scale for v in frame[column] if not _missing(v)]
    if column == "time_median_s":
        pairs = zip(frame[column], frame["time_iqr_s"], strict=True)
        values += [(v + q) * scale for v, q in pairs if not (_missing(v) or _missing(q))]
    floor = _log_floor(values)
    top = max([v for v in values if v > 0], default=floor * 10)
    return floor, top * 20


def _panels(frame: Any) -> list[tuple[str, str, float]]:
    """The panels with data: a column no record measured (memory after `--no-memory`) has none."""
    return [p for p in BAR_PANELS if frame[p[0]].notna().any()]


def describe(records: Sequence[Record]) -> str:
    """The caption of the panels drawn from `records` (`CAPTION` when all are)."""
    frame = summary_frame(records)
    panels = [] if frame.empty else [column for column, _, _ in _panels(frame)]
    if len(panels) == len(BAR_PANELS):
        return CAPTION
    memory = "" if any("bytes" in c for c in panels) else " No memory was measured (--no-memory)."
    shown = ", ".join(_PANEL_WORDS[c] for c in panels)
    return f"Per task and back-end: {shown}; log scales; '0' marks a zero reading.{memory}"


def bars_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """One row of panels per task, one bar per back-end: steady-state value-and-grad time
    (median, IQR error bar), peak RSS (steady state and first call, isolated process),
    framework-level peak memory, gradient relative error; log scales; a zero memory
    reading is written as "0" (steady-state RSS is often 0: the allocator reuses memory
    from the first call)."""
    frame = summary_frame(records)
    if frame.empty:
        return None
    panels = _panels(frame)
    if not panels:
        return None
    colours = group_colours(list(frame["key"]), palette(r["impl"] for r in records))
    tasks = unique(frame["task"])
    frame = frame.sort_values(["impl"], kind="stable")
    sizes = [int((frame["task"] == t).sum()) for t in tasks]
    longest = max(len(str(label)) for label in frame["label"])
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=(0.08 * longest + 2.6 * len(panels), 0.9 + sum(0.75 + 0.24 * n for n in sizes)))
        fig.set_layout_engine("constrained")
        grid = fig.subplots(
            len(tasks),
            len(panels),
            squeeze=False,
            sharey="row",
            sharex="col",
            gridspec_kw={"height_ratios": sizes},
        )
        limits = [_bar_limits(frame, column, scale) for column, _, scale in panels]
        for r, task in enumerate(tasks):
            rows = frame[frame["task"] == task].reset_index(drop=True)
            for c, (column, title, scale) in enumerate(panels):
                ax = grid[r, c]
                _bar_panel(ax, rows, column, scale, limits[c], colours)
                ax.set_yticks(range(len(rows)), list(rows["label"]))
                ax.tick_params(axis="y", labelsize=8)
                ax.set_title(title if r == 0 else "", fontsize=9)
                ax.grid(axis="y", visible=False)
            grid[r, 0].set_ylabel(task, fontsize=10, fontweight="bold")
        fig.suptitle("Time, memory and gradient error per back-end (log scales)")
        return save_figure(fig, Path(out_dir) / "bars.png")


def _draw(data: FigureInput) -> Path | None:
    return bars_figure(data.records, data.out_dir)


register(FigureSpec("bars", CAPTION, _draw, order=20, describe=describe))
