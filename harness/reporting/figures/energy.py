"""Figure: the energy of the truth and of each trained model (`hamiltonian-<task>.png`).

Drawn for any task whose trajectory files hold `H_true` and `H_pred` (the runner saves
them, along the times `t`, for a task with the `HasEnergy` capability); the task itself is
never imported and its name plays no part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import GroupKey, Record, trajectory_cells
from harness.reporting.figures.style import (
    group_colours,
    legend_below,
    new_figure,
    palette,
    save_figure,
    slug,
    style,
)

__all__ = ["CAPTION", "ENERGY_ARRAYS", "hamiltonian_figure", "has_energy"]

#: the arrays of a trajectory file the energy figure draws
ENERGY_ARRAYS = ("H_true", "H_pred")

CAPTION = (
    "Hamiltonian of the true trajectory (black) and of each trained neural ODE (left), and "
    "its drift |H(t) - H(t0)| from the initial energy on a log scale (right). The truth "
    "conserves H up to the solver's error; an MLP vector field does not."
)

Curve = tuple[GroupKey, str, dict[str, np.ndarray]]


def has_energy(arrays: Mapping[str, np.ndarray]) -> bool:
    """Whether a trajectory file's arrays hold the energy of the truth and of the model."""
    return all(k in arrays for k in ENERGY_ARRAYS)


def _first_member(h: np.ndarray) -> np.ndarray:
    """A 1-D energy along t (the first batch member if the file holds a batch)."""
    h = np.asarray(h, dtype=float)
    return h if h.ndim <= 1 else h.reshape(h.shape[0], -1)[:, 0]


def _energies(records: Sequence[Record], run_dir: Path, task: str) -> list[Curve]:
    """(group, label, {t, t_obs, H_true, H_pred}) per group of `task` whose trajectory
    file holds the energies."""
    out = []
    for key, label, _, arrays in trajectory_cells(records, run_dir, task):
        if not has_energy(arrays):
            continue
        curve = {"t": arrays["t"], "t_obs": arrays["t_obs"]}
        curve |= {k: _first_member(arrays[k]) for k in ENERGY_ARRAYS}
        if curve["H_true"].shape == curve["t"].shape == curve["H_pred"].shape:
            out.append((key, label, curve))
    return out


def _h0(curve: Mapping[str, np.ndarray]) -> float:
    """H of the truth at the first observation (the initial condition)."""
    index = int(np.argmin(np.abs(curve["t"] - curve["t_obs"][0])))
    return float(curve["H_true"][index])


def hamiltonian_figure(records: Sequence[Record], run_dir: Path, out_dir: Path, task: str) -> Path | None:
    """Hamiltonian of the truth and of each trained model over t (left; the frame is the
    truth's and the models' inside the training window), and the drift |H(t) - H(t0)|
    on a log scale (right); training window shaded.  Back-ends that train identically
    draw the same curve (dashes and dots alternate).  None when no trajectory file of
    `task` holds `H_true` and `H_pred`."""
    curves = _energies(records, Path(run_dir), task)
    if not curves:
        return None
    colours = group_colours([c[0] for c in curves], palette(r["impl"] for r in records))
    with style():
        fig, (ax_h, ax_d) = new_figure(2, 2, 6.4, 3.6, sharex=True)
        first = curves[0][2]
        h0 = _h0(first)
        for ax in (ax_h, ax_d):
            ax.axvspan(float(first["t_obs"].min()), float(first["t_obs"].max()), color="0.9", lw=0, zorder=0)
        ax_h.plot(first["t"], first["H_true"], color="k", lw=2.2, label="truth")
        ax_d.plot(first["t"], _drift(first["H_true"], h0), color="k", lw=2.2, label="truth")
        for i, (key, label, curve) in enumerate(curves):
            line = {"color": colours[key], "lw": 1.8, "ls": "--" if i % 2 == 0 else ":"}
            ax_h.plot(curve["t"], curve["H_pred"], label=label, **line)
            ax_d.plot(curve["t"], _drift(curve["H_pred"], h0), label=label, **line)
        ax_h.set_ylim(*_h_limits(curves, h0))
        ax_h.set(xlabel="t", ylabel="H(y(t))", title="Hamiltonian")
        ax_d.set_yscale("log")
        ax_d.set(xlabel="t", ylabel="|H(t) - H(t0)|", title="drift from the initial energy H(t0)")
        legend_below(fig, *ax_h.get_legend_handles_labels())
        fig.suptitle(f"{task}: energy of the truth and of the trained model (first batch member)")
        return save_figure(fig, Path(out_dir) / f"hamiltonian-{slug(task)}.png")


def _drift(h: np.ndarray, h0: float) -> np.ndarray:
    """|h - h0| floored at round-off, so an exactly conserved value stays on a log axis."""
    floor = 1e-16 * max(abs(h0), 1.0)
    with np.errstate(all="ignore"):
        return np.maximum(np.abs(h - h0), floor)


def _h_limits(curves: Sequence[Curve], h0: float) -> tuple[float, float]:
    """y-range of the H panel: the truth and every model inside the training window."""
    values = [h0]
    for _, _, c in curves:
        inside = (c["t"] >= c["t_obs"].min()) & (c["t"] <= c["t_obs"].max())
        values += [float(v) for v in c["H_true"] if math.isfinite(v)]
        values += [float(v) for v in c["H_pred"][inside] if math.isfinite(v)]
    lo, hi = min(values), max(values)
    pad = 0.3 * (hi - lo) if hi > lo else 0.05 * max(abs(h0), 1.0)
    return lo - pad, hi + pad


def _draw(data: FigureInput) -> Path | None:
    return hamiltonian_figure(data.records, data.run_dir, data.out_dir, data.task)


register(FigureSpec("hamiltonian", CAPTION, _draw, per_task=True, order=30))
