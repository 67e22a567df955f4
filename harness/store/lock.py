"""One writer per results folder: an OS lock (`fcntl.flock`) on the folder itself (its
directory descriptor), so no lock file is left among the results.

A run or study session holds it from before it looks at the folder until its report is
written; a second writer is refused with one line (`wait=False`, the command line) or
waits its turn (`wait=True`, e.g. `ResultsStore.append` outside a session).  The kernel
releases a flock when its descriptor closes, so a crashed or killed writer never leaves
a stale lock behind; the descriptor is not inherited by worker processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from harness.core.errors import UsageError

__all__ = ["FolderBusy", "folder_lock", "holds_lock"]

#: folders this process holds the lock of (resolved path -> depth), so that a store
#: appending inside a session does not try to lock its folder a second time
_HELD: dict[str, int] = {}


class FolderBusy(UsageError):
    """Another process is writing this results folder."""


def _key(directory: Path) -> str:
    return str(Path(directory).resolve())


def holds_lock(directory: Path | str) -> bool:
    """Whether this process holds the writer lock of `directory`."""
    return _HELD.get(_key(Path(directory)), 0) > 0


@contextlib.contextmanager
def folder_lock(directory: Path | str, *, wait: bool = False) -> Iterator[Path]:
    """``with folder_lock(dir):`` this process is the only writer of `dir` (which must
    exist).  Re-entrant within a process.  Busy: `FolderBusy` (one line naming the folder
    and the holder's process id) or, with `wait`, block until the holder is done.  An
    OSError opening the lock file is a one-line UsageError."""
    directory = Path(directory)
    key = _key(directory)
    if _HELD.get(key, 0) > 0:
        _HELD[key] += 1
        try:
            yield directory
        finally:
            _HELD[key] -= 1
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot lock results folder '{directory}': {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise FolderBusy(
                f"results folder '{directory}' is in use by another run{_holder(fd)}: "
                "wait for it to finish or choose another --out"
            ) from None
        _HELD[key] = 1
        try:
            yield directory
        finally:
            _HELD.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """` (process N)`: who holds the flock of `fd`'s file, from /proc/locks (Linux), or ''."""
    try:
        st = os.fstat(fd)
        where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as fh:
            for line in fh:
                fields = line.split()
                if "FLOCK" in fields and where in fields:
                    pid = fields[fields.index(where) - 1]
                    if pid.isdigit() and int(pid) != os.getpid():
                        return f" (process {pid})"
    except (OSError, ValueError, IndexError):
        pass
    return ""
