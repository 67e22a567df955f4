"""Figures of a results folder (SPEC "Reports"): PNG files drawn with matplotlib's Agg
renderer in seaborn's style.

Every figure function takes the records of a folder (and the folder itself where it reads
trajectory files), writes one PNG atomically and returns its path, or returns None when
the records hold no data for that figure.  Only `ok` records are drawn.  pyplot is never
used (no global figure state, no interactive back-end); matplotlib and seaborn are
imported inside the functions, so the harness works without the `report` extra.

Records are grouped by (task, back-end, the parameters that matter for the figure); when a
back-end has several such groups (a parameter grid), its label names the parameters that
differ, e.g. ``jax-checkpoint (t1=20)``.  Seeds are the repeats of a group.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DPI",
    "bars_figure",
    "hamiltonian_figure",
    "has_hamiltonian",
    "loss_figure",
    "memory_exponents",
    "memory_scaling_figure",
    "pareto_figure",
    "trajectory_figure",
    "work_precision_figure",
]

#: resolution of the PNG files
DPI = 110
#: parameters of the solver: the points of a work-precision line
SOLVER_KEYS = ("rtol", "atol", "dt")
#: parameters of the training run: they change neither the gradient nor its cost
TRAIN_KEYS = ("iters", "lr")
#: the integration horizon: the points of a memory-scaling line; the number of
#: observations grows with it at fixed spacing (`harness study memory-scaling`)
HORIZON_KEY = "t1"
HORIZON_COUPLED = ("n_obs",)
#: at most this many back-ends (columns) and state components (rows) in a trajectory figure
MAX_COLUMNS = 6
MAX_COMPONENTS = 6

Record = Mapping[str, Any]
GroupKey = tuple[str, str, str]  # (task, impl, JSON of the grouping parameters)


# --------------------------------------------------------------------------- records


def ok_records(records: Iterable[Record]) -> list[Record]:
    """The records whose cell ran (`status == "ok"`)."""
    return [r for r in records if r.get("status") == "ok"]


def _unique(values: Iterable[Any]) -> list[Any]:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


@functools.cache
def _task_class(name: str) -> Any:
    """The registered task class of `name`, or None (unknown task, import error)."""
    try:
        from harness.core import registry

        registry.discover()
        return registry.TASKS.get(name)
    except Exception:
        return None


def effective_params(record: Record) -> dict[str, Any]:
    """The record's parameters with the task's option defaults filled in, so that a
    default run and a run with `--set t1=...` are comparable."""
    cls = _task_class(str(record.get("task")))
    defaults = dict(getattr(cls, "options", None) or {})
    return {**defaults, **(record.get("params") or {})}


def _finite(value: Any) -> float | None:
    """`value` as a float, or None where it is missing or not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def group_records(records: Iterable[Record], ignore: Iterable[str] = ()) -> dict[GroupKey, list[Record]]:
    """Records grouped by (task, impl, parameters other than `ignore` and the training
    ones); the seeds and the ignored parameters vary inside a group."""
    drop = {*ignore, *TRAIN_KEYS}
    groups: dict[GroupKey, list[Record]] = {}
    for rec in records:
        params = {k: v for k, v in effective_params(rec).items() if k not in drop}
        key = (str(rec["task"]), str(rec["impl"]), json.dumps(params, sort_keys=True, default=str))
        groups.setdefault(key, []).append(rec)
    return groups


def group_labels(keys: Iterable[GroupKey]) -> dict[GroupKey, str]:
    """`impl`, or `impl (k=v, ...)` naming the parameters in which groups of the same
    (task, impl) differ."""
    keys = list(keys)
    by_impl: dict[tuple[str, str], list[GroupKey]] = {}
    for key in keys:
        by_impl.setdefault(key[:2], []).append(key)
    labels = {}
    for (_, impl), members in by_impl.items():
        params = {key: json.loads(key[2]) for key in members}
        names = sorted({k for p in params.values() for k in p})
        varying = [k for k in names if len({json.dumps(p.get(k)) for p in params.values()}) > 1]
        # rtol = atol in every group (`--set tol=x`): name it once, as tol
        same_tol = {"rtol", "atol"} <= set(varying) and all(p["rtol"] == p["atol"] for p in params.values())
        for key in members:
            extra = ", ".join(
                f"{'tol' if same_tol and k == 'rtol' else k}={_fmt(params[key].get(k))}"
                for k in varying
                if not (same_tol and k == "atol")
            )
            labels[key] = f"{impl} ({extra})" if extra else impl
    return labels


def _solver_setting(params: Mapping[str, Any]) -> tuple[str, float] | None:
    """The swept solver setting of a cell: ('rtol', x) for adaptive back-ends, ('dt', x) for
    fixed-step ones."""
    for key in ("rtol", "dt"):
        value = _finite(params.get(key))
        if value is not None:
            return key, value
    return None


# --------------------------------------------------------------------------- drawing


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """seaborn's whitegrid style, locally (rcParams are restored afterwards)."""
    import matplotlib as mpl
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    rc.update({"axes.titlesize": 11, "legend.fontsize": 8.5, "legend.title_fontsize": 9})
    with mpl.rc_context(rc):
        yield


def palette(impls: Iterable[str]) -> dict[str, Any]:
    """One colour per back-end, the same in every figure of a report (sorted names)."""
    import seaborn as sns

    names = sorted(set(impls))
    colours = sns.color_palette("colorblind" if len(names) <= 10 else "husl", max(len(names), 1))
    return dict(zip(names, colours, strict=False))


def _shade(colour: Any, index: int, count: int) -> tuple[float, float, float]:
    """`colour` lightened for the `index`-th of `count` groups of one back-end."""
    rgb = np.asarray(colour[:3], dtype=float)
    mix = 0.0 if count <= 1 else 0.6 * index / (count - 1)
    return tuple(float(c) for c in rgb * (1 - mix) + mix)  # type: ignore[return-value]


def _group_colours(keys: Sequence[GroupKey], base: Mapping[str, Any]) -> dict[GroupKey, Any]:
    """Back-end colour per group, lighter for each further group of the same (task,
    back-end)."""
    colours = {}
    for task, impl in _unique(k[:2] for k in keys):
        members = [k for k in keys if k[:2] == (task, impl)]
        for i, key in enumerate(members):
            colours[key] = _shade(base.get(impl, (0.3, 0.3, 0.3)), i, len(members))
    return colours


def _figure(n_panels: int, ncols: int, width: float, height: float, **kwargs: Any) -> tuple[Any, list[Any]]:
    """A constrained-layout Figure with `n_panels` axes on a grid (surplus axes removed)."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False, **kwargs).ravel())
    for ax in axes[n_panels:]:
        fig.delaxes(ax)
    return fig, axes[:n_panels]


def save_figure(fig: Any, path: Path) -> Path:
    """Write `fig` as PNG to `path` atomically (a temporary file, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _legend_below(fig: Any, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """One legend under the panels, with as many columns as the figure's width holds."""
    if not handles:
        return
    width_pt = fig.get_figwidth() * 72
    entry_pt = 30 + 5.2 * max(len(str(label)) for label in labels)
    ncols = max(1, min(len(handles), int(width_pt // entry_pt)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# --------------------------------------------------------------------------- trajectories


def load_trajectory(record: Record, run_dir: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a record's trajectory file, or None when it has none or it is missing."""
    name = record.get("trajectory_file")
    if not name:
        return None
    path = Path(run_dir) / str(name)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: np.asarray(npz[k], dtype=float) for k in npz.files}
    needed = {"t_obs", "y_obs", "t", "y_true", "y_pred"}
    return arrays if needed <= set(arrays) else None


Cell = tuple[GroupKey, str, Record, dict[str, np.ndarray]]


def _trajectory_cells(records: Iterable[Record], run_dir: Path, task: str) -> list[Cell]:
    """(group, label, record, arrays) of one trajectory per group of `task` (the lowest
    seed); labels name only the parameters that differ among the groups drawn."""
    groups = group_records(r for r in ok_records(records) if r["task"] == task)
    found: dict[GroupKey, tuple[Record, dict[str, np.ndarray]]] = {}
    for key, members in groups.items():
        for rec in sorted(members, key=lambda r: r.get("seed") or 0):
            arrays = load_trajectory(rec, run_dir)
            if arrays is not None:
                found[key] = (rec, arrays)
                break
    keys = list(found)[:MAX_COLUMNS]
    labels = group_labels(keys)
    return [(key, labels[key], *found[key]) for key in keys]


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
    cells = _trajectory_cells(records, Path(run_dir), task)
    if not cells:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n_state = min(min(c[3]["y_true"].shape[2] for c in cells), MAX_COMPONENTS)
    ncols = len(cells)
    colours = _group_colours([c[0] for c in cells], palette(r["impl"] for r in records))
    with _style():
        fig, axes = _figure(
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
                ax.set_ylabel(f"y[{i}]" if j == 0 else "")
                ax.set_xlabel("t" if i == n_state - 1 else "")
            axes[i * ncols].set_ylim(*_component_limits([c[3] for c in cells], i))
        handles = [
            Line2D([], [], color="0.15", lw=1.3, marker=".", ms=2.5),
            Line2D([], [], color="0.15", marker="o", ls="", mfc="white"),
            Line2D([], [], color="0.4", lw=1.8, ls="--"),
            Patch(color="0.9"),
        ]
        names = ["truth (at the stored times)", "observations", "trained model", "training window"]
        _legend_below(fig, handles, names)
        fig.suptitle(f"{task}: fit in the training window, extrapolation outside (first batch member)")
        return save_figure(fig, Path(out_dir) / f"trajectory-{_slug(task)}.png")


# --------------------------------------------------------------------------- loss curves


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
        history = [float(x) for x in rec.get("train_loss_history") or [] if _finite(x) is not None]
        if len(history) >= 2:
            params = json.dumps(effective_params(rec), sort_keys=True, default=str)
            groups.setdefault((str(rec["task"]), str(rec["impl"]), params), []).append(history)
    return groups


_DASHES: list[tuple[float, ...]] = [(), (6, 2), (2, 2), (8, 2, 2, 2), (4, 1, 1, 1, 1, 1), (1, 1)]


def loss_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Training loss against iteration (log y), one panel per task, one line per back-end;
    several seeds: mean and 95 % t-interval band.  Back-ends that train identically
    coincide; dash patterns and widths keep them all visible."""
    groups = _loss_groups(records)
    if not groups:
        return None
    from matplotlib.ticker import MaxNLocator

    labels, base = group_labels(groups), palette(r["impl"] for r in records)
    colours = _group_colours(list(groups), base)
    tasks = _unique(k[0] for k in groups)
    with _style():
        fig, axes = _figure(len(tasks), 2, 6.2, 3.6)
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


# --------------------------------------------------------------------------- Hamiltonian


def _task_instance(record: Record) -> Any:
    """The task of a record built with its task options, or None."""
    cls = _task_class(str(record["task"]))
    if cls is None:
        return None
    options = {k: v for k, v in (record.get("params") or {}).items() if k in getattr(cls, "options", {})}
    return cls(**options)


def has_hamiltonian(task: str) -> bool:
    """Whether the Hamiltonian figure applies: a pendulum task whose class has `hamiltonian`."""
    return "pendulum" in task and hasattr(_task_class(task), "hamiltonian")


def _hamiltonians(records: Sequence[Record], run_dir: Path, task: str) -> list[tuple[GroupKey, str, dict]]:
    """(group, label, {t, t_obs, H_true, H_pred}) per group of `task` with a trajectory."""
    out = []
    for key, label, rec, arrays in _trajectory_cells(records, run_dir, task):
        instance = _task_instance(rec)
        if instance is None or not hasattr(instance, "hamiltonian"):
            continue
        with np.errstate(all="ignore"):
            h_true = np.asarray(instance.hamiltonian(arrays["y_true"][:, 0, :], np), dtype=float)
            h_pred = np.asarray(instance.hamiltonian(arrays["y_pred"][:, 0, :], np), dtype=float)
        out.append(
            (key, label, {"t": arrays["t"], "t_obs": arrays["t_obs"], "H_true": h_true, "H_pred": h_pred})
        )
    return out


def _h0(curve: Mapping[str, np.ndarray]) -> float:
    """H of the truth at the first observation (the initial condition)."""
    index = int(np.argmin(np.abs(curve["t"] - curve["t_obs"][0])))
    return float(curve["H_true"][index])


def hamiltonian_figure(records: Sequence[Record], run_dir: Path, out_dir: Path, task: str) -> Path | None:
    """Hamiltonian of the truth and of each trained model over t (left; the frame is the
    truth's and the models' inside the training window), and the drift |H(t) - H(t0)|
    on a log scale (right); training window shaded.  Back-ends that train identically
    draw the same curve (dashes and dots alternate)."""
    if not has_hamiltonian(task):
        return None
    curves = _hamiltonians(records, Path(run_dir), task)
    if not curves:
        return None
    colours = _group_colours([c[0] for c in curves], palette(r["impl"] for r in records))
    with _style():
        fig, (ax_h, ax_d) = _figure(2, 2, 6.4, 3.6, sharex=True)
        first = curves[0][2]
        h0 = _h0(first)
        for ax in (ax_h, ax_d):
            ax.axvspan(float(first["t_obs"].min()), float(first["t_obs"].max()), color="0.9", lw=0, zorder=0)
        ax_h.plot(first["t"], first["H_true"], color="k", lw=2.2, label="truth")
        ax_d.plot(first["t"], _drift(first["H_true"], h0), color="k", lw=2.2, label="truth")
        for i, (key, label, curve) in enumerate(curves):
            style = {"color": colours[key], "lw": 1.8, "ls": "--" if i % 2 == 0 else ":"}
            ax_h.plot(curve["t"], curve["H_pred"], label=label, **style)
            ax_d.plot(curve["t"], _drift(curve["H_pred"], h0), label=label, **style)
        ax_h.set_ylim(*_h_limits(curves, h0))
        ax_h.set(xlabel="t", ylabel="H(y(t))", title="Hamiltonian")
        ax_d.set_yscale("log")
        ax_d.set(xlabel="t", ylabel="|H(t) - H(t0)|", title="drift from the initial energy H(t0)")
        _legend_below(fig, *ax_h.get_legend_handles_labels())
        fig.suptitle(f"{task}: energy of the truth and of the trained model (first batch member)")
        return save_figure(fig, Path(out_dir) / f"hamiltonian-{_slug(task)}.png")


def _drift(h: np.ndarray, h0: float) -> np.ndarray:
    """|h - h0| floored at round-off, so an exactly conserved value stays on a log axis."""
    floor = 1e-16 * max(abs(h0), 1.0)
    with np.errstate(all="ignore"):
        return np.maximum(np.abs(h - h0), floor)


def _h_limits(
    curves: Sequence[tuple[GroupKey, str, Mapping[str, np.ndarray]]], h0: float
) -> tuple[float, float]:
    """y-range of the H panel: the truth and every model inside the training window."""
    values = [h0]
    for _, _, c in curves:
        inside = (c["t"] >= c["t_obs"].min()) & (c["t"] <= c["t_obs"].max())
        values += [float(v) for v in c["H_true"] if math.isfinite(v)]
        values += [float(v) for v in c["H_pred"][inside] if math.isfinite(v)]
    lo, hi = min(values), max(values)
    pad = 0.3 * (hi - lo) if hi > lo else 0.05 * max(abs(h0), 1.0)
    return lo - pad, hi + pad


# --------------------------------------------------------------------------- bars


def _mean(values: Iterable[Any]) -> float | None:
    clean = [v for v in (_finite(x) for x in values) if v is not None]
    return float(np.mean(clean)) if clean else None


def _geomean(values: Iterable[Any]) -> float | None:
    clean = [v for v in (_finite(x) for x in values) if v is not None and v > 0]
    return float(np.exp(np.mean(np.log(clean)))) if clean else None


def summary_frame(records: Sequence[Record]) -> Any:
    """One row per group of `ok` records (means over seeds; geometric mean for the
    gradient error): task, impl, label, time, IQR, memory, gradient error."""
    import pandas as pd

    groups = group_records(ok_records(records))
    labels = group_labels(groups)
    rows = []
    for key, members in groups.items():
        rows.append(
            {
                "task": key[0],
                "impl": key[1],
                "key": key,
                "label": labels[key],
                "seeds": len(members),
                "time_median_s": _mean(r.get("time_median_s") for r in members),
                "time_iqr_s": _mean(r.get("time_iqr_s") for r in members),
                "peak_rss_bytes": _mean(r.get("peak_rss_bytes") for r in members),
                "peak_rss_first_call_bytes": _mean(r.get("peak_rss_first_call_bytes") for r in members),
                "peak_framework_bytes": _mean(r.get("peak_framework_bytes") for r in members),
                "grad_rel_error": _geomean(r.get("grad_rel_error") for r in members),
            }
        )
    return pd.DataFrame(rows)


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


def _label_handles(frame: Any, colours: Mapping[Any, Any], **style: Any) -> tuple[list, list[str]]:
    """Legend handles, one per back-end (its colour), in order of appearance."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    seen = {impl: colours[impl] for impl in _unique(frame["impl"])}
    make = (lambda c: Line2D([], [], color=c, ls="", **style)) if style else (lambda c: Patch(color=c))
    return [make(c) for c in seen.values()], list(seen)


def bars_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """One row of panels per task, one bar per back-end: steady-state value-and-grad time
    (median, IQR error bar), peak RSS (steady state and first call, isolated process),
    framework-level peak memory, gradient relative error; log scales; a zero memory
    reading is written as "0" (steady-state RSS is often 0: the allocator reuses memory
    from the first call)."""
    frame = summary_frame(records)
    if frame.empty:
        return None
    panels = [p for p in BAR_PANELS if frame[p[0]].notna().any()]
    if not panels:
        return None
    colours = _group_colours(list(frame["key"]), palette(r["impl"] for r in records))
    tasks = _unique(frame["task"])
    frame = frame.sort_values(["impl"], kind="stable")
    sizes = [int((frame["task"] == t).sum()) for t in tasks]
    longest = max(len(str(label)) for label in frame["label"])
    from matplotlib.figure import Figure

    with _style():
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


# --------------------------------------------------------------------------- work-precision


def _sweep_series(
    records: Sequence[Record], ignore: Iterable[str], x_of: Callable[[dict[str, Any]], float | None]
) -> dict[GroupKey, list[tuple[float, list[Record]]]]:
    """Groups (parameters other than `ignore`) with their records at each distinct
    x = x_of(params), sorted by x; only groups with at least two distinct x."""
    series = {}
    for key, members in group_records(ok_records(records), ignore).items():
        points: dict[float, list[Record]] = {}
        for rec in members:
            x = x_of(effective_params(rec))
            if x is not None:
                points.setdefault(x, []).append(rec)
        if len(points) >= 2:
            series[key] = sorted(points.items())
    return series


def work_precision_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Gradient relative error against steady-state time (log-log), one panel per task,
    one line per back-end through its solver settings (rtol, or dt for RK4), each point
    labelled with its setting; only (task, back-end) pairs with two settings or more."""
    setting = lambda p: s[1] if (s := _solver_setting(p)) else None
    series = _sweep_series(records, SOLVER_KEYS, setting)
    if not series:
        return None
    colours = _group_colours(list(series), palette(r["impl"] for r in records))
    tasks = _unique(k[0] for k in series)
    with _style():
        fig, axes = _figure(len(tasks), 2, 6.4, 4.4)
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
        _legend_below(fig, list(entries.values()), list(entries))
        fig.suptitle("Work-precision (point labels: rtol = atol, or RK4 dt)")
        return save_figure(fig, Path(out_dir) / "work_precision.png")


def _setting_name(record: Record, value: float) -> str:
    key = _solver_setting(effective_params(record))
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
        x = _mean(r.get("time_median_s") for r in members)
        y = _geomean(r.get("grad_rel_error") for r in members)
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


# --------------------------------------------------------------------------- memory scaling

#: (record field, panel title) of the memory-scaling panels
MEMORY_KINDS = {
    "framework": ("peak_framework_bytes", "framework-level peak"),
    "rss": ("peak_rss_bytes", "peak RSS (isolated process, steady state)"),
}


def _memory_points(points: Sequence[tuple[float, list[Record]]], field: str) -> tuple[np.ndarray, np.ndarray]:
    """(horizons, mean memory) with positive memory (a log axis cannot show zero)."""
    xs, ys = [], []
    for x, members in points:
        y = _mean(r.get(field) for r in members)
        if y is not None and y > 0 and x > 0:
            xs.append(x)
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def fit_exponent(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope k of log y against log x (memory ~ x^k); None for < 2 distinct x."""
    if len(np.unique(x)) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _memory_series(records: Sequence[Record]) -> dict[GroupKey, list[tuple[float, list[Record]]]]:
    return _sweep_series(records, (HORIZON_KEY, *HORIZON_COUPLED), lambda p: _finite(p.get(HORIZON_KEY)))


def memory_exponents(records: Sequence[Record]) -> dict[tuple[str, str, str], float]:
    """Fitted exponent k of peak memory ~ t1^k per (task, back-end label, kind), kind
    "framework" or "rss"; only where a group has at least two distinct horizons t1 with
    positive memory.  The label is the back-end name unless a grid splits it."""
    series = _memory_series(records)
    labels = group_labels(series)
    out = {}
    for key, points in series.items():
        for kind, (field, _) in MEMORY_KINDS.items():
            k = fit_exponent(*_memory_points(points, field))
            if k is not None:
                out[(key[0], labels[key], kind)] = k
    return out


def _horizon_ticks(ax: Any, horizons: Sequence[float]) -> None:
    """Ticks at the horizons that were run, written plainly (5, 10, 20 rather than 2x10^1)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xticks(list(horizons), [_fmt(float(h)) for h in horizons])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def memory_scaling_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Peak memory against the integration horizon t1 (log-log): framework-level (left)
    and RSS (right), one row per task, one line per back-end, fitted exponent k in the
    legend; only where a back-end ran at two horizons or more."""
    series = _memory_series(records)
    if not series:
        return None
    labels, base = group_labels(series), palette(r["impl"] for r in records)
    colours = _group_colours(list(series), base)
    tasks = _unique(k[0] for k in series)
    with _style():
        fig, axes = _figure(2 * len(tasks), 2, 7.4, 3.6)
        for row, task in enumerate(tasks):
            for col, (field, title) in enumerate(MEMORY_KINDS.values()):
                ax = axes[2 * row + col]
                for key in [k for k in series if k[0] == task]:
                    x, y = _memory_points(series[key], field)
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


# --------------------------------------------------------------------------- Pareto view


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
    memory = frame["peak_framework_bytes"].where(
        frame["peak_framework_bytes"].notna(), frame["peak_rss_bytes"]
    )
    frame["memory_mb"] = memory.astype(float).fillna(0.0) * 1e-6
    positive = frame["memory_mb"][frame["memory_mb"] > 0]
    lo, hi = (float(positive.min()), float(positive.max())) if len(positive) else (1.0, 1.0)
    base = palette(r["impl"] for r in records)
    colours = _group_colours(list(frame["key"]), base)
    tasks = _unique(frame["task"])
    with _style():
        fig, axes = _figure(len(tasks), 2, 6.2, 4.2)
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
        size_handles, size_names = _size_handles(lo, hi)
        _legend_below(fig, handles + size_handles, names + size_names)
        fig.suptitle("Accuracy, time and memory (marker area: peak memory, log scale)")
        return save_figure(fig, Path(out_dir) / "pareto.png")
