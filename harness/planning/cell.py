"""One cell of the matrix: a (task, back-end, device, dtype, seed) with its options.

A cell is a plain JSON-able dict, so that a child process can rebuild exactly the same
problem (same data, same initial weights) from it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypedDict

__all__ = ["Cell", "cell_id"]


class Cell(TypedDict):
    task: str
    impl: str
    task_options: dict[str, Any]
    solver: dict[str, Any]
    impl_options: dict[str, Any]
    train: dict[str, Any]
    device: str
    dtype: str
    seed: int


def cell_id(cell: Cell) -> str:
    """A file-name-safe id of a cell: task, back-end, seed and a hash of its options."""
    keys = ("task_options", "solver", "impl_options", "train", "device", "dtype")
    options = json.dumps([cell[k] for k in keys], sort_keys=True)  # type: ignore[literal-required]
    digest = hashlib.sha1(options.encode()).hexdigest()[:8]
    return f"{cell['task']}__{cell['impl']}__seed{cell['seed']}__{digest}"
