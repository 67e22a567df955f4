"""The results store: `results/<run-id>/records.jsonl` (one JSON object a line, appended as
each cell finishes), `summary.csv` (the flat table, rewritten atomically) and `env.json`.

Open formats only, never pickle; a finished record is never lost to a later crash.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError
from harness.store.atomic import write_bytes_atomic, write_text_atomic, write_with_atomic
from harness.store.lock import folder_lock
from harness.store.paths import read_regular
from harness.store.schema import FIELDS, Record
from harness.store.validate import load_env, load_trajectory, read_utf8_lines, record_problem, trajectory_path

__all__ = [
    "RECORD_FIELDS",
    "DuplicateCell",
    "ResultsStore",
    "load_env",
    "load_records",
    "load_trajectory",
    "new_run_id",
    "prepare_folder",
    "records_frame",
    "trajectory_path",
    "write_arrays",
    "write_json_atomic",
]

#: stable record fields (SPEC "Record fields"; `harness.store.schema.FIELDS`): more may be
#: added, never renamed
RECORD_FIELDS = tuple(FIELDS)


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


def _oserror(action: str, path: Path, exc: OSError) -> UsageError:
    """A filesystem error as one line naming the path."""
    return UsageError(f"cannot {action} '{path}': {exc.strerror or exc}")


class DuplicateCell(UsageError):
    """A record for a cell the folder already holds (and replacing it was not asked for)."""


class ResultsStore:
    """Append-only store of one run's records, one record per `cell_id`.

    **Arguments:** `directory` (created), `env` (written to `env.json` unless the folder
    already has one, as when a run is resumed).  Filesystem errors (a file where the
    folder belongs, a read-only parent) are one-line UsageErrors.

    One writer at a time: a session holds `lock()` for its whole run; an `append` outside
    one takes the lock for itself, waiting for the current holder.
    """

    #: what a results folder holds (what `clear` removes); nothing else is touched
    FILES = ("records.jsonl", "summary.csv", "env.json", "report.md", "report.html")
    FOLDERS = ("trajectories", "figures")

    def __init__(self, directory: Path, env: Mapping[str, Any] | None = None) -> None:
        self.dir = Path(directory)
        self.records_path = self.dir / "records.jsonl"
        prepare_folder(self.dir)
        if env is not None and not (self.dir / "env.json").exists():
            try:
                write_text_atomic(self.dir / "env.json", json.dumps(_clean(env), indent=2) + "\n")
            except OSError as exc:
                raise _oserror("write", self.dir / "env.json", exc) from None

    def lock(self, *, wait: bool = False) -> Any:
        """The folder's writer lock (a context manager; see `harness.store.lock`)."""
        return folder_lock(self.dir, wait=wait)

    def records(self) -> list[Record]:
        """The folder's records, validated (`load_records`); none when it has no file yet."""
        if not self.records_path.exists():
            return []
        return load_records(self.dir)

    def finished_ids(self) -> set[str]:
        """`cell_id`s already recorded here (what `--resume` skips)."""
        return {str(r.get("cell_id")) for r in self.records() if r.get("cell_id")}

    def failed_ids(self) -> set[str]:
        """`cell_id`s recorded here as `failed` (what `--retry-failed` runs again)."""
        return {str(r.get("cell_id")) for r in self.records() if r.get("cell_id") and r["status"] == "failed"}

    def clear(self) -> None:
        """Remove the folder's records, summary, env.json, trajectories, figures and
        reports (`--force`: start over, keeping nothing of the old run)."""
        import shutil

        try:
            for name in self.FILES:
                path = self.dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            for name in self.FOLDERS:
                path = self.dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            for tmp in self.dir.glob(".*.tmp"):  # left by a writer killed mid-write
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise _oserror("clear", self.dir, exc) from None

    def save_arrays(self, name: str, arrays: Mapping[str, Any]) -> str:
        """Write NumPy arrays to `trajectories/<name>.npz` atomically (no pickled objects);
        returns the path relative to the run folder."""
        folder = self.dir / "trajectories"
        path = folder / f"{name}.npz"
        try:
            folder.mkdir(exist_ok=True)
            write_arrays(path, arrays)
        except OSError as exc:
            raise _oserror("write", path, exc) from None
        return str(path.relative_to(self.dir))

    def append(self, record: Mapping[str, Any], *, replace: bool = False) -> None:
        """Add one record, under the folder's lock: the whole `records.jsonl` is rewritten
        to a temporary file, fsynced and renamed into place (`harness.store.atomic`), so a
        crash at any moment leaves the old or the new file, never a torn one; then the CSV,
        the same way.  A record for a `cell_id` already here replaces the old one with
        `replace` (`--retry-failed`), else it is a `DuplicateCell` error.  Old lines are
        kept byte for byte, even one this harness cannot read."""
        clean = _clean(record)
        line = json.dumps(clean, allow_nan=False).encode("utf-8")
        cell = clean.get("cell_id")
        with folder_lock(self.dir, wait=True):
            exists = self.records_path.exists() or self.records_path.is_symlink()
            old = read_regular(self.records_path, "results file") if exists else b""
            kept: list[bytes] = []
            parsed: list[dict[str, Any]] = []
            for raw in old.splitlines():
                if not raw.strip():
                    continue
                rec = _lenient(raw)
                if cell and rec is not None and rec.get("cell_id") == cell:
                    if not replace:
                        raise DuplicateCell(f"'{self.records_path}' already holds cell {cell}")
                    continue
                kept.append(raw)
                if rec is not None and record_problem(rec) is None:
                    parsed.append(rec)
            parsed.append(clean)
            try:
                write_bytes_atomic(self.records_path, b"".join(k + b"\n" for k in [*kept, line]))
                frame = records_frame(r for r in parsed if record_problem(r) is None)  # the readable ones
                write_text_atomic(self.dir / "summary.csv", frame.to_csv(index=False))
            except OSError as exc:
                raise _oserror("write", self.records_path, exc) from None


def prepare_folder(directory: Path) -> None:
    """Create a results folder (and its parents); a file where it or a parent belongs, a
    read-only parent or a directory where `records.jsonl` belongs: one-line UsageError."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"cannot use '{directory}' as a results folder: it is a file")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"cannot create results folder '{directory}': a file is in the way") from None
    except NotADirectoryError:
        raise UsageError(f"cannot create results folder '{directory}': a parent is a file") from None
    except OSError as exc:
        raise _oserror("create results folder", directory, exc) from None
    for name in ("records.jsonl", "env.json", "summary.csv"):
        if (directory / name).is_dir():
            raise UsageError(f"cannot use '{directory}' as a results folder: '{name}' is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write results folder '{directory}': permission denied")


def _lenient(raw: bytes) -> dict[str, Any] | None:
    """One line of records.jsonl as a dict, or None."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def load_records(directory: Path | str, *, check_files: bool = True) -> list[Record]:
    """All records of a results folder, validated: a missing or corrupt `records.jsonl`
    (not UTF-8, a line that is not JSON or not a record, a field of the wrong type), a
    corrupt `env.json` or, with `check_files`, a trajectory file that is not a readable
    `.npz` inside the folder is a one-line UsageError naming the file (and line)."""
    path = Path(directory)
    if not path.is_dir():
        raise UsageError(f"no results folder at '{path}'")
    records_path = path / "records.jsonl"
    if not records_path.exists():
        raise UsageError(f"'{path}' is not a results folder: it has no records.jsonl")
    load_env(path)
    records = []
    for number, line in enumerate(read_utf8_lines(records_path, "results file"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise UsageError(f"corrupt results file '{records_path}': line {number} is not JSON") from None
        if (why := record_problem(record)) is not None:
            raise UsageError(f"corrupt results file '{records_path}': line {number} {why}")
        if check_files and record.get("trajectory_file"):
            try:
                load_trajectory(path, record["trajectory_file"])
            except UsageError as exc:
                raise UsageError(f"{exc} (named by '{records_path}' line {number})") from None
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
            "sources",
            "cell",
            "state_names",
            "train_loss_history",
            "train_time_history",
            "claims",
            "execution",
            "timing_concurrent",
        )
        row = {k: v for k, v in rec.items() if k not in skip}
        row.update({f"param.{k}": v for k, v in (rec.get("params") or {}).items()})
        for kind, where in (rec.get("sources") or {}).items():  # the file and its hash
            row.update(
                {f"source.{kind}.{k}": where.get(k) for k in ("file", "sha256")}
                if isinstance(where, dict)
                else {}
            )
        row.update({f"claim.{v['claim']}": v["verdict"] for v in rec.get("claims") or []})
        row.update({f"metric.{k}": v for k, v in (rec.get("metrics") or {}).items()})
        how = rec.get("execution") or {}
        row.update({f"execution.{k}": v for k, v in how.items() if not isinstance(v, dict | list)})
        row["execution.cpu_affinity"] = " ".join(map(str, how.get("cpu_affinity") or [])) or None
        env = rec.get("env") or {}
        row["git_commit"], row["date"] = env.get("git_commit"), env.get("date")
        rows.append(row)
    return pd.DataFrame(rows)
