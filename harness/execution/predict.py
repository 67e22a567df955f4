"""Predictions of a trained cell from its results folder: the back-end and task rebuilt from
the record's `cell` (its JSON description), the trained weights from its trajectory
archive (keys `weight.<name>`, plain NumPy arrays: never pickle).

    >>> from harness.execution.predict import predict
    >>> states = predict("results/reference", "double_pendulum__numpy-adjoint__seed0__...")

`python -m harness predict DIR CELL_ID` prints the same as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.core.errors import UsageError
from harness.core.models import Params
from harness.planning.cell import Cell
from harness.store.schema import Record

__all__ = ["WEIGHT_PREFIX", "predict", "trained_weights"]

#: the keys of the trained weights in a cell's trajectory archive
WEIGHT_PREFIX = "weight."


def _record(directory: Path, cell_id: str) -> Record:
    from harness.store.results import load_records

    found = [r for r in load_records(directory) if r.get("cell_id") == cell_id]
    if not found:
        raise UsageError(f"{directory} holds no cell '{cell_id}' (its summary.csv lists the cell_id of each)")
    record = found[-1]
    if record.get("status") != "ok" or not record.get("trajectory_file"):
        raise UsageError(
            f"cell '{cell_id}' has no trained model ({record.get('status')}: {record.get('reason')})"
        )
    if not isinstance(record.get("cell"), dict):
        raise UsageError(
            f"cell '{cell_id}' predates saved cells and weights: run it again to predict from it"
        )
    return record


def trained_weights(directory: Path | str, cell_id: str) -> Params:
    """The trained weights of `cell_id` in the results folder `directory`."""
    from harness.store.validate import load_trajectory

    directory = Path(directory)
    record = _record(directory, cell_id)
    arrays = load_trajectory(directory, str(record.get("trajectory_file"))) or {}  # `_record` checked it
    weights = {k[len(WEIGHT_PREFIX) :]: v for k, v in arrays.items() if k.startswith(WEIGHT_PREFIX)}
    if not weights:
        raise UsageError(f"cell '{cell_id}' saved no weights: run it again to predict from it")
    return weights


def predict(
    directory: Path | str, cell_id: str, times: Any = None, y0: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """`(times, states)` of the trained model of `cell_id`: states of shape (T, B, N) at
    `times` (default: the cell's observation times) from `y0` (default: the data's initial
    states), solved by the cell's own back-end with its solver options."""
    from harness.execution.build import build_cell

    directory = Path(directory)
    record = _record(directory, cell_id)
    weights = trained_weights(directory, cell_id)
    impl, initial = build_cell(cast(Cell, record.get("cell")))  # `_record` checked it is an object
    if set(weights) != set(initial):
        raise UsageError(
            f"cell '{cell_id}': saved weights {sorted(weights)} are not the model's {sorted(initial)}"
        )
    t = np.asarray(impl.data.t if times is None else times, dtype=float)
    start = impl.data.y0 if y0 is None else np.atleast_2d(np.asarray(y0, dtype=float))
    return t, np.asarray(impl.predict(weights, t, start))
