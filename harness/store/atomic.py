"""The one atomic, durable writer: every file of a results folder (records, CSV, arrays,
figures, reports) is written to a temporary file in the same folder, flushed and fsynced,
renamed into place, and the folder fsynced, so that a crash at any moment leaves the old
file or the new one, never a torn one, and a finished write survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_file", "write_bytes_atomic", "write_text_atomic", "write_with_atomic"]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_mode() -> int:
    """The mode a plain `open` gives a new file: 0o666 less the umask (mkstemp's is 0o600)."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[IO[bytes]]:
    """``with atomic_file(path) as fh: fh.write(...)``: a binary file that appears at `path`
    only when the block ends without an exception."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _file_mode())
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write `data` to `path` atomically and durably."""
    with atomic_file(path) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically and durably."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_with_atomic(path: Path | str, write: Callable[[IO[bytes]], object]) -> Path:
    """Call `write(fh)` on a binary file that appears at `path` atomically (e.g. NumPy's
    savez or Matplotlib's savefig)."""
    with atomic_file(path) as fh:
        write(fh)
    return Path(path)
