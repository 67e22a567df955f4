"""Figure: the trained model of a task against the truth (`trajectory-<task>.png`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import Record, trajectory_cells
from harness.reporting.figures.style import (
    group_colours,
    legend_below,
    new_figure,
    palette,
    save_figure,
    slug,
    style,
)

__all__ = ["CAPTION", "CAPTION_OBSERVED", "describe", "trajectory_figure"]

#: at most this many state components (rows) in a trajectory figure
MAX_COMPONENTS = 6

CAPTION = (
    "Trajectory of the trained model (dashed, one column per back-end, one row per state "
    "component) against the truth (black) for the first batch member; circles are the "
    "observations, the shaded band the training window. Outside it the model extrapolates "
    "backward and forward in time. The y-range is the truth's: a model that leaves the "
    "frame has diverged."
)
#: the caption for real data, which has no noise-free truth
CAPTION_OBSERVED = (
    "Trajectory of the trained model (dashed, one column per back-end, one row per state "
    "component) against the observed data (black; there is no noise-free truth), the shaded "
    "band the training window. After it the model extrapolates forward and is compared with "
    "the data it did not see. The y-range is the data's: a model that leaves the frame has "
    "diverged."
)


def observed_only(records: Sequence[Record]) -> bool:
    """Whether the records' tasks have no noise-free truth (real data: `truth` is
    "observations")."""
    return any(r.get("truth") == "observations" for r in records)


def describe(records: Sequence[Record]) -> str:
    """`CAPTION`, or `CAPTION_OBSERVED` for real data."""
    return CAPTION_OBSERVED if observed_only(records) else CAPTION


def _component_names(records: Sequence[Record], n: int) -> list[str]:
    """The state components' names (the record's `state_names`), else y[0], y[1], ..."""
    names = next((r["state_names"] for r in records if r.get("state_names")), None)
    return [names[i] if names and i < len(names) else f"y[{i}]" for i in range(n)]


def _component_limits(arrays: Sequence[Mapping[str, np.ndarray]], i: int) -> tuple[float, float]:
    """y-range of component `i` of the truth and the observations, with a margin: a
    diverging prediction leaves the frame instead of flattening everything else."""
    values = np.concatenate([np.ravel(a[k][:, 0, i]) for a in arrays for k in ("y_true", "y_obs")])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    pad = 0.2 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.5
    return lo - pad, hi + pad


def _trajectory_panel(ax: Any, arrays: Mapping[str, np.ndarray], i: int, colour: Any) -> None:
    """Component `i` of the first batch member: truth, observations, trained model."""
    t, t_obs = arrays["t"], arrays["t_obs"]
    ax.axvspan(float(t_obs.min()), float(t_obs.max()), color="0.9", lw=0, zorder=0)
    ax.plot(t, arrays["y_true"][:, 0, i], color="0.15", lw=1.3, marker=".", ms=2.5)
    ax.plot(t_obs, arrays["y_obs"][:, 0, i], "o", color="0.15", ms=3.5, mfc="white", mew=0.8)
    ax.plot(t, arrays["y_pred"][:, 0, i], color=colour, lw=1.8, ls="--")


def trajectory_figure(records: Sequence[Record], run_dir: Path, out_dir: Path, task: str) -> Path | None:
    """The trained model of `task` against the truth, first batch member: one column per
    back-end, one row per state component; training window shaded, observations as
    circles, the model dashed in its back-end's colour; outside the window it
    extrapolates backward and forward.  The y-range is the truth's: a model that leaves
    the frame has diverged."""
    cells = trajectory_cells(records, Path(run_dir), task)
    if not cells:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n_state = min(min(c[3]["y_true"].shape[2] for c in cells), MAX_COMPONENTS)
    names = _component_names([c[2] for c in cells], n_state)
    observed = observed_only([c[2] for c in cells])
    ncols = len(cells)
    colours = group_colours([c[0] for c in cells], palette(r["impl"] for r in records))
    with style():
        fig, axes = new_figure(
            n_state * ncols,
            ncols,
            max(3.4, 13.0 / ncols),
            2.3 if n_state <= 2 else 1.9,
            sharex=True,
            sharey="row",
        )
        for i in range(n_state):
            for j, (key, label, _, arrays) in enumerate(cells):
                ax = axes[i * ncols + j]
                _trajectory_panel(ax, arrays, i, colours[key])
                if i == 0:
                    ax.set_title(label)
                ax.set_ylabel(names[i] if j == 0 else "")
                ax.set_xlabel("t" if i == n_state - 1 else "")
            axes[i * ncols].set_ylim(*_component_limits([c[3] for c in cells], i))
        handles = [
            Line2D([], [], color="0.15", lw=1.3, marker=".", ms=2.5),
            Line2D([], [], color="0.15", marker="o", ls="", mfc="white"),
            Line2D([], [], color="0.4", lw=1.8, ls="--"),
            Patch(color="0.9"),
        ]
        truth = "observed data (no noise-free truth)" if observed else "truth (at the stored times)"
        legend_below(fig, handles, [truth, "observations", "trained model", "training window"])
        fig.suptitle(f"{task}: fit in the training window, extrapolation outside (first batch member)")
        return save_figure(fig, Path(out_dir) / f"trajectory-{slug(task)}.png")


def _draw(data: FigureInput) -> Path | None:
    return trajectory_figure(data.records, data.run_dir, data.out_dir, data.task)


register(FigureSpec("trajectory", CAPTION, _draw, per_task=True, order=10, describe=describe))
