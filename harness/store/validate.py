"""Validation of what a results folder holds: each record's fields and types, `env.json`,
the trajectory files (readable `.npz` archives inside the folder).  Every malformed input
is a one-line UsageError naming the file (and line), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from harness.core.errors import UsageError, one_line
from harness.store.archive import check_archive
from harness.store.paths import read_regular
from harness.store.schema import FIELDS, kind_problem

__all__ = ["load_env", "load_trajectory", "read_utf8_lines", "record_problem", "trajectory_path"]


#: fields checked below with messages of their own (what their items must hold)
_CHECKED_APART = ("claims", "train_phases", "state_names")


def record_problem(record: Any) -> str | None:
    """What makes `record` not a harness record (a short phrase), or None: each field of
    the schema (`harness.store.schema.FIELDS`) of its kind, or None."""
    if not isinstance(record, dict):
        return f"is JSON but not an object ({type(record).__name__})"
    missing = [k for k in ("task", "impl", "status") if k not in record]
    if missing:
        return f"is not a harness record: it has no {', '.join(missing)}"
    for key in ("task", "impl", "status"):
        if not isinstance(record[key], str):
            return f"has a {key} that is not a string"
    for key in FIELDS:
        if key not in _CHECKED_APART and (problem := kind_problem(key, record.get(key))) is not None:
            return problem
    names = record.get("state_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return "has state_names that are not a list of strings"
    phases = record.get("train_phases")
    if phases is not None and not (
        isinstance(phases, list)
        and all(isinstance(p, dict) and isinstance(p.get("phase"), str) for p in phases)
    ):
        return "has train_phases that are not a list of objects with a phase"
    if isinstance(env := record.get("env"), dict) and not isinstance(env.get("versions") or {}, dict):
        return "has env.versions that is not an object"
    claims = record.get("claims")
    if claims is not None:
        if not isinstance(claims, list):
            return "has claims that are not a list"
        for claim in claims:
            if not (
                isinstance(claim, dict)
                and isinstance(claim.get("claim"), str)
                and isinstance(claim.get("verdict"), str)
            ):
                return "has a claim that is not an object with a claim and a verdict"
    if (name := record.get("trajectory_file")) is not None and (why := _outside(name)) is not None:
        return f"has trajectory_file '{name}' that {why}"
    return None


def _outside(name: str) -> str | None:
    """Why a trajectory path would leave its results folder, or None."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute():
        return "is not a path inside the results folder"
    if ".." in pure.parts:
        return "points outside the results folder"
    return None


def read_utf8_lines(path: Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file; anything else is one line naming the file (and line)."""
    if path.is_dir():
        raise UsageError(f"'{path}' is a directory, not a {what}")
    data = read_regular(path, what)  # a regular file of bounded size, or one line
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise UsageError(f"corrupt {what} '{path}': line {number} is not UTF-8 text") from None
    return lines


def load_env(directory: Path | str) -> dict[str, Any] | None:
    """A results folder's `env.json` (None without one); a file that is not UTF-8, not JSON
    or not a JSON object is a one-line UsageError naming it."""
    path = Path(directory) / "env.json"
    if not path.exists():
        return None
    text = "\n".join(read_utf8_lines(path, "env.json"))
    try:
        env = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UsageError(f"corrupt env.json '{path}': it is not JSON") from None
    if not isinstance(env, dict):
        raise UsageError(f"corrupt env.json '{path}': it is JSON but not an object")
    return env


def trajectory_path(directory: Path | str, name: str) -> Path:
    """Where a record's `trajectory_file` lies, inside `directory`; a path that would
    leave it (absolute, `..`, a link out) is a UsageError."""
    directory = Path(directory)
    if (why := _outside(name)) is not None:
        raise UsageError(f"trajectory file '{name}' {why} '{directory}'")
    path = directory / name
    if path.exists() and not path.resolve().is_relative_to(directory.resolve()):
        raise UsageError(f"trajectory file '{name}' points outside the results folder '{directory}'")
    return path


def load_trajectory(directory: Path | str, name: str) -> dict[str, Any] | None:
    """The arrays of trajectory file `name` of a results folder (None when it is gone); a
    file that is not a readable `.npz` of numeric arrays is a one-line UsageError."""
    import zipfile

    import numpy as np

    path = trajectory_path(directory, name)
    if not path.exists():
        return None
    if not path.is_file():
        raise UsageError(f"trajectory file '{path}' is not a file")
    try:
        with path.open("rb") as fh:  # ours to close, whatever np.load makes of it
            check_archive(fh, str(path))  # limits, before anything is decompressed
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):  # a plain .npy array
                raise ValueError("not an .npz archive")
            with npz:
                arrays = {k: np.asarray(npz[k], dtype=float) for k in npz.files}
    except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise UsageError(f"corrupt trajectory file '{path}': {one_line(exc)}") from None
    return arrays
