"""The one place a path is checked before it is read or written.

Readers (`read_regular`): a results file must be a regular file (a link to a device reads
without end, a FIFO blocks `open` until a writer comes) of bounded size, opened with
`O_NONBLOCK` so that checking a FIFO never hangs.  Writers (`check_output_file`,
`check_output_folder`): a path given on the command line must be non-empty, and an
output file must not be a folder nor lie under a file; an output folder must be writable.
The folder's writer lock (`harness.store.lock`) is taken by every command that writes
into a results folder.  Every refusal is a one-line `UsageError` naming the path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from harness.core.errors import UsageError
from harness.store.lock import folder_lock

__all__ = [
    "MAX_RECORDS_BYTES",
    "check_output_file",
    "check_output_folder",
    "path_argument",
    "read_regular",
    "writer_lock",
]

#: the largest records.jsonl or env.json read (4 GiB): more is not a results folder
MAX_RECORDS_BYTES = 4 * 2**30


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: Path | str, what: str, *, limit: int = MAX_RECORDS_BYTES) -> bytes:
    """The bytes of `path`, which must be a regular file (links followed) of at most
    `limit` bytes; anything else is a one-line `UsageError` naming it and what is valid."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"cannot read {what} '{path}': it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise UsageError(
                f"cannot read {what} '{path}': {info.st_size} bytes, more than the {limit} bytes "
                "a results file may hold"
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while read
        raise UsageError(f"cannot read {what} '{path}': more than {limit} bytes")
    return data


def check_output_file(path: Path | str, what: str) -> Path:
    """`path` as a file to write: not empty, not a folder, its parent a folder (created) and
    writable; a one-line `UsageError` otherwise."""
    path = Path(path)
    if str(path) in ("", "."):
        raise UsageError(f"bad {what}: an empty path (give a file name)")
    if path.is_dir():
        raise UsageError(f"cannot write {what} '{path}': it is a directory (give a file name)")
    if path.exists() and not path.is_file():
        raise UsageError(f"cannot write {what} '{path}': it exists and is not a regular file")
    check_output_folder(path.parent, what)
    return path


def check_output_folder(folder: Path | str, what: str) -> Path:
    """`folder` created if missing (with its parents) and writable; a file in the way, a
    read-only place: a one-line `UsageError` naming it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"cannot write {what} into '{folder}': it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"cannot write {what} into '{folder}': a file is in the way") from None
    except NotADirectoryError:
        raise UsageError(f"cannot write {what} into '{folder}': a parent is a file") from None
    except OSError as exc:
        raise UsageError(f"cannot write {what} into '{folder}': {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} into '{folder}': permission denied")
    return folder


def path_argument(text: str) -> Path:
    """An argparse `type` for a path option: an empty string is refused (Path('') would be
    the current folder) with argparse's one-line error."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (give a folder or file name)")
    if "\0" in text:
        raise argparse.ArgumentTypeError("a path with a NUL character")
    return Path(text)


@contextlib.contextmanager
def writer_lock(folder: Path | str, what: str, hint: str = "") -> Iterator[Path]:
    """``with writer_lock(dir, "the report"):`` every writer into an existing results
    folder (`report`, a study's report) holds its lock (a run writing there: one line,
    exit 2) and finds it writable (else one line naming it, and `hint`: what to do)."""
    folder = Path(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} into '{folder}': permission denied{hint and f' ({hint})'}")
    with folder_lock(folder) as held:
        yield held
