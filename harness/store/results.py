"""The results store: `results/<run-id>/records.jsonl` (one JSON object a line, appended as
each cell finishes), `summary.csv` (the flat table, rewritten atomically) and `env.json`.

Open formats only, never pickle; a finished record is never lost to a later crash.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError
from harness.store.atomic import write_text_atomic, write_with_atomic

__all__ = [
    "RECORD_FIELDS",
    "ResultsStore",
    "load_records",
    "new_run_id",
    "records_frame",
    "write_arrays",
    "write_json_atomic",
]

#: stable record fields (SPEC "Record fields"); more may be added, never renamed
RECORD_FIELDS = (
    "run_id",
    "cell_id",
    "task",
    "impl",
    "params",
    "resolved_params",
    "device",
    "dtype",
    "seed",
    "status",
    "reason",
    "loss_init",
    "grad_rel_error",
    "grad_reference",
    "time_first_s",
    "time_median_s",
    "time_iqr_s",
    "repeats",
    "nfe_forward",
    "nfe_backward",
    "solver_steps",
    "peak_rss_bytes",
    "peak_rss_first_call_bytes",
    "peak_framework_bytes",
    "peak_framework_method",
    "peak_device_bytes",
    "train_iters",
    "train_loss_final",
    "train_time_s",
    "train_loss_history",
    "train_target_loss",
    "train_budget_s",
    "train_stopped",
    "train_iters_run",
    "train_iters_to_target",
    "train_time_to_target_s",
    "train_wall_s",
    "train_time_history",
    "metrics",
    "claims",
    "env",
)


def new_run_id(label: str = "") -> str:
    """`YYYYmmdd-HHMMSS-xxxx[-label]`: sortable by time, unique even for runs started in
    the same second (they would otherwise share a default results folder)."""
    stamp = f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    return f"{stamp}-{label}" if label else stamp


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and inf become None (JSON has neither), NumPy scalars become Python."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_arrays(path: Path, arrays: Mapping[str, Any]) -> None:
    """NumPy arrays (as float) in one `.npz` file, atomically; no pickled objects."""
    import numpy as np

    plain = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    savez: Any = np.savez  # its **kwds are the arrays (pyright reads them as its own keywords)
    write_with_atomic(path, lambda fh: savez(fh, **plain))


def write_json_atomic(path: Path, obj: Any) -> None:
    """One JSON document, written to a temporary file and renamed into place."""
    write_text_atomic(Path(path), json.dumps(_clean(obj), allow_nan=False) + "\n")


class ResultsStore:
    """Append-only store of one run's records.

    **Arguments:** `directory` (created), `env` (written to `env.json` unless the folder
    already has one, as when a run is resumed).
    """

    def __init__(self, directory: Path, env: Mapping[str, Any] | None = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.records_path = self.dir / "records.jsonl"
        if env is not None and not (self.dir / "env.json").is_file():
            write_text_atomic(self.dir / "env.json", json.dumps(_clean(env), indent=2) + "\n")

    def finished_ids(self) -> set[str]:
        """`cell_id`s already recorded here (what `--resume` skips)."""
        if not self.records_path.is_file():
            return set()
        return {r["cell_id"] for r in load_records(self.dir) if r.get("cell_id")}

    def save_arrays(self, name: str, arrays: Mapping[str, Any]) -> str:
        """Write NumPy arrays to `trajectories/<name>.npz` atomically (no pickled objects);
        returns the path relative to the run folder."""
        folder = self.dir / "trajectories"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.npz"
        write_arrays(path, arrays)
        return str(path.relative_to(self.dir))

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one record: the whole `records.jsonl` is rewritten to a temporary file and
        renamed into place, so a crash at any moment leaves the old or the new file, never
        a torn one; then the CSV, the same way."""
        old = self.records_path.read_text() if self.records_path.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_text_atomic(self.records_path, old + json.dumps(_clean(record), allow_nan=False) + "\n")
        frame = records_frame(load_records(self.dir))
        write_text_atomic(self.dir / "summary.csv", frame.to_csv(index=False))


def load_records(directory: Path | str) -> list[dict[str, Any]]:
    """All records of a results folder; a missing or corrupt file is a one-line UsageError."""
    path = Path(directory)
    if not path.is_dir():
        raise UsageError(f"no results folder at '{path}'")
    records_path = path / "records.jsonl"
    if not records_path.is_file():
        raise UsageError(f"'{path}' is not a results folder: it has no records.jsonl")
    records = []
    for number, line in enumerate(records_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise UsageError(f"corrupt results file '{records_path}': line {number} is not JSON") from None
        if not isinstance(record, dict) or not {"task", "impl", "status"} <= set(record):
            raise UsageError(f"'{records_path}' line {number} is not a harness record")
        records.append(record)
    return records


def records_frame(records: Iterable[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame of records: nested `params`, `metrics` flattened into columns,
    `env` reduced to its git commit and date, each claim's verdict a `claim.<id>` column,
    the loss and time histories left out."""
    import pandas as pd

    rows = []
    for rec in records:
        skip = (
            "params",
            "resolved_params",
            "metrics",
            "env",
            "train_loss_history",
            "train_time_history",
            "claims",
        )
        row = {k: v for k, v in rec.items() if k not in skip}
        row.update({f"param.{k}": v for k, v in (rec.get("params") or {}).items()})
        row.update({f"claim.{v['claim']}": v["verdict"] for v in rec.get("claims") or []})
        row.update({f"metric.{k}": v for k, v in (rec.get("metrics") or {}).items()})
        env = rec.get("env") or {}
        row["git_commit"], row["date"] = env.get("git_commit"), env.get("date")
        rows.append(row)
    return pd.DataFrame(rows)
