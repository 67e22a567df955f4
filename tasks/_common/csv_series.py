"""A time series from a CSV file: a header row, time in the first column, one state per
other column.  Every malformed file is one `UsageError` naming the file and the line."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from harness.core.errors import UsageError

__all__ = ["Series", "read_series"]

#: the most bytes a series file may have (a file of states for a neural ODE, not a database)
MAX_BYTES = 50 * 2**20


@dataclasses.dataclass(frozen=True)
class Series:
    """`t` (R,), increasing; `y` (R, N); the column names of time and states."""

    t: np.ndarray
    y: np.ndarray
    time_name: str
    state_names: tuple[str, ...]


def _number(path: Path, line: int, column: str, text: str) -> float:
    """A cell as a finite float, or a UsageError naming the file, line and column."""
    where = f"{path}, line {line}, column '{column}'"
    if not text.strip():
        raise UsageError(f"{where}: empty cell (every cell must hold a number)")
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: '{text.strip()[:40]}' is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: {text.strip()} is not finite (NaN and inf are not data)")
    return value


def _text(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    if path.stat().st_size > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES >> 20} MB")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}, line {line}: not UTF-8 text") from None


def read_series(path: str | Path) -> Series:
    """The series in the CSV file `path` (see the module docstring): at least 3 rows and
    one state column, times strictly increasing, every cell a finite number."""
    path = Path(path).expanduser()
    rows = [(i, row) for i, row in enumerate(csv.reader(_text(path).splitlines()), start=1) if row]
    if not rows:
        raise UsageError(f"{path}: empty file (a header row and at least 3 rows of numbers expected)")
    header_line, header = rows[0]
    header = [name.strip() for name in header]
    if _looks_numeric(header):
        raise UsageError(f"{path}, line {header_line}: no header row (the first row names the columns)")
    if len(header) < 2:
        raise UsageError(
            f"{path}, line {header_line}: no state column (time first, then one column per state)"
        )
    if missing := [i + 1 for i, name in enumerate(header) if not name]:
        raise UsageError(f"{path}, line {header_line}: column {missing[0]} has no name")
    if len(set(header)) < len(header):
        raise UsageError(f"{path}, line {header_line}: a column name appears twice")
    data = rows[1:]
    if len(data) < 3:
        raise UsageError(f"{path}: {len(data)} rows of numbers, at least 3 needed")
    values = []
    for line, row in data:
        if len(row) != len(header):
            raise UsageError(f"{path}, line {line}: {len(row)} cells, the header has {len(header)}")
        values.append([_number(path, line, name, cell) for name, cell in zip(header, row, strict=True)])
    array = np.asarray(values, dtype=float)
    t = array[:, 0]
    for (line, _), before, now in zip(data[1:], t[:-1], t[1:], strict=True):
        if now <= before:
            kind = "repeated" if now == before else "earlier than the row before"
            raise UsageError(f"{path}, line {line}: time {now:g} is {kind} (times must increase)")
    return Series(t=t, y=array[:, 1:], time_name=header[0], state_names=tuple(header[1:]))


def _looks_numeric(cells: list[str]) -> bool:
    """Whether every cell parses as a number (a data row where the header should be)."""
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True
