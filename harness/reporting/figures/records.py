"""The records a figure draws: selection, grouping and labels, read from what a results
folder records (no task is imported).

Records are grouped by (task, back-end, the parameters that matter for the figure); when a
back-end has several such groups (a parameter grid), its label names the parameters that
differ, e.g. ``jax-checkpoint (t1=20)``.  Seeds are the repeats of a group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.reporting.settings import effective_settings

__all__ = [
    "HORIZON_COUPLED",
    "HORIZON_KEY",
    "SOLVER_KEYS",
    "TRAIN_KEYS",
    "Cell",
    "GroupKey",
    "Record",
    "effective_settings",
    "finite",
    "fmt",
    "geomean",
    "group_labels",
    "group_records",
    "load_trajectory",
    "mean",
    "ok_records",
    "solver_setting",
    "summary_frame",
    "sweep_series",
    "trajectory_cells",
    "unique",
]

#: parameters of the solver: the points of a work-precision line
SOLVER_KEYS = ("rtol", "atol", "dt")
#: parameters of the training run: they change neither the gradient nor its cost
TRAIN_KEYS = ("iters", "lr")
#: the integration horizon: the points of a memory-scaling line; the number of
#: observations grows with it at fixed spacing (`harness study memory-scaling`)
HORIZON_KEY = "t1"
HORIZON_COUPLED = ("n_obs",)
#: at most this many back-ends (columns) in a trajectory figure
MAX_COLUMNS = 6
#: arrays every trajectory file holds
TRAJECTORY_ARRAYS = frozenset({"t_obs", "y_obs", "t", "y_true", "y_pred"})

Record = Mapping[str, Any]
GroupKey = tuple[str, str, str]  # (task, impl, JSON of the grouping parameters)
Cell = tuple[GroupKey, str, Record, dict[str, np.ndarray]]


def ok_records(records: Iterable[Record]) -> list[Record]:
    """The records whose cell ran (`status == "ok"`)."""
    return [r for r in records if r.get("status") == "ok"]


def unique(values: Iterable[Any]) -> list[Any]:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def finite(value: Any) -> float | None:
    """`value` as a float, or None where it is missing or not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def mean(values: Iterable[Any]) -> float | None:
    """Mean of the finite values, None without one."""
    clean = [v for v in (finite(x) for x in values) if v is not None]
    return float(np.mean(clean)) if clean else None


def geomean(values: Iterable[Any]) -> float | None:
    """Geometric mean of the finite positive values, None without one."""
    clean = [v for v in (finite(x) for x in values) if v is not None and v > 0]
    return float(np.exp(np.mean(np.log(clean)))) if clean else None


def fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def group_records(records: Iterable[Record], ignore: Iterable[str] = ()) -> dict[GroupKey, list[Record]]:
    """Records grouped by (task, impl, parameters other than `ignore` and the training
    ones); the seeds and the ignored parameters vary inside a group."""
    drop = {*ignore, *TRAIN_KEYS}
    groups: dict[GroupKey, list[Record]] = {}
    for rec in records:
        params = {k: v for k, v in effective_settings(rec).items() if k not in drop}
        key = (str(rec["task"]), str(rec["impl"]), json.dumps(params, sort_keys=True, default=str))
        groups.setdefault(key, []).append(rec)
    return groups


def group_labels(keys: Iterable[GroupKey]) -> dict[GroupKey, str]:
    """`impl`, or `impl (k=v, ...)` naming the parameters in which groups of the same
    (task, impl) differ."""
    keys = list(keys)
    by_impl: dict[tuple[str, str], list[GroupKey]] = {}
    for key in keys:
        by_impl.setdefault((key[0], key[1]), []).append(key)
    labels = {}
    for (_, impl), members in by_impl.items():
        params = {key: json.loads(key[2]) for key in members}
        names = sorted({k for p in params.values() for k in p})
        varying = [k for k in names if len({json.dumps(p.get(k)) for p in params.values()}) > 1]
        # rtol = atol in every group (`--set tol=x`): name it once, as tol
        same_tol = {"rtol", "atol"} <= set(varying) and all(p["rtol"] == p["atol"] for p in params.values())
        for key in members:
            extra = ", ".join(
                f"{'tol' if same_tol and k == 'rtol' else k}={fmt(params[key].get(k))}"
                for k in varying
                if not (same_tol and k == "atol")
            )
            labels[key] = f"{impl} ({extra})" if extra else impl
    return labels


def solver_setting(params: Mapping[str, Any]) -> tuple[str, float] | None:
    """The swept solver setting of a cell: ('rtol', x) for adaptive back-ends, ('dt', x) for
    fixed-step ones."""
    for key in ("rtol", "dt"):
        value = finite(params.get(key))
        if value is not None:
            return key, value
    return None


def sweep_series(
    records: Sequence[Record], ignore: Iterable[str], x_of: Callable[[dict[str, Any]], float | None]
) -> dict[GroupKey, list[tuple[float, list[Record]]]]:
    """Groups (parameters other than `ignore`) with their records at each distinct
    x = x_of(params), sorted by x; only groups with at least two distinct x."""
    series = {}
    for key, members in group_records(ok_records(records), ignore).items():
        points: dict[float, list[Record]] = {}
        for rec in members:
            x = x_of(effective_settings(rec))
            if x is not None:
                points.setdefault(x, []).append(rec)
        if len(points) >= 2:
            series[key] = sorted(points.items())
    return series


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
                "time_median_s": mean(r.get("time_median_s") for r in members),
                "time_iqr_s": mean(r.get("time_iqr_s") for r in members),
                "peak_rss_bytes": mean(r.get("peak_rss_bytes") for r in members),
                "peak_rss_first_call_bytes": mean(r.get("peak_rss_first_call_bytes") for r in members),
                "peak_framework_bytes": mean(r.get("peak_framework_bytes") for r in members),
                "grad_rel_error": geomean(r.get("grad_rel_error") for r in members),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- trajectories


def load_trajectory(record: Record, run_dir: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a record's trajectory file (`t_obs`, `y_obs`, `t`, `y_true`, `y_pred`,
    and `H_true`, `H_pred` for a task that provides its energy), or None when it has none
    or it is missing."""
    name = record.get("trajectory_file")
    if not name:
        return None
    path = Path(run_dir) / str(name)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: np.asarray(npz[k], dtype=float) for k in npz.files}
    return arrays if TRAJECTORY_ARRAYS <= set(arrays) else None


def trajectory_cells(records: Iterable[Record], run_dir: Path, task: str) -> list[Cell]:
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
