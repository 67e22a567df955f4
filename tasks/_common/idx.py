"""IDX files (the format of MNIST) and a folder of the four MNIST files.

An IDX file is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B
int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions d, then d
big-endian uint32 sizes; the data follow in C order, big-endian.  Each file may be
gzipped, with a `.gz` suffix.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from harness.core.errors import UsageError, one_line

__all__ = ["MNIST_FILES", "DataDirError", "check_data_dir", "idx_image_shape", "read_idx"]

#: the standard MNIST file names (each may also be gzipped, with a `.gz` suffix)
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: IDX type codes (the third byte of the magic number) and the big-endian dtypes they name
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataDirError(UsageError, FileNotFoundError):
    """`data_dir` is missing or lacks an MNIST file: one line naming the path and the files
    expected (a `UsageError`, so the command line prints it without a traceback)."""


def _read_bytes(path: Path) -> bytes:
    """The bytes of `path`, gunzipped for a `.gz` name; a file that cannot be read or is not
    gzip data is a one-line `ValueError` naming it."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"'{path}' cannot be read: {one_line(exc)}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """An array from an IDX file (the MNIST format, see the module docstring), gzipped when
    the name ends in `.gz`.

    **Raises:** `ValueError` (one line naming the file) on a malformed header or size.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"'{path}' is not an IDX file: bad magic number {raw[:4].hex() or 'none'}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"'{path}' is not an IDX file: header cut short")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(f"'{path}': {len(raw)} bytes, the header {shape} needs {expected}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def idx_image_shape(path: str | Path) -> tuple[int, int]:
    """(rows, columns) of the images in an IDX file of images (3 dimensions), from its
    header alone.

    **Raises:** `ValueError` when the file does not start with a 3-dimensional header.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            header = fh.read(16)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"'{path}' cannot be read: {one_line(exc)}") from None
    if len(header) < 16 or header[3] != 3:
        raise ValueError(f"'{path}' is not an IDX file of images (3 dimensions)")
    rows, cols = np.frombuffer(header, dtype=">u4", count=2, offset=8)
    return int(rows), int(cols)


def _idx_path(directory: Path, name: str) -> Path:
    """`directory/name` or `directory/name.gz`, whichever exists (the plain file first)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataDirError(
        f"no MNIST file '{name}' (or '{name}.gz') in '{directory}'; "
        f"data_dir must hold {', '.join(MNIST_FILES)} (each optionally .gz)"
    )


def check_data_dir(data_dir: str | Path) -> dict[str, Path]:
    """The paths of the four MNIST files in `data_dir`.

    **Raises:** `DataDirError` (one line) naming the directory and the files expected.
    """
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        raise DataDirError(
            f"data_dir '{directory}' is not a directory; it must hold the MNIST files "
            f"{', '.join(MNIST_FILES)} (each optionally .gz)"
        )
    return {name: _idx_path(directory, name) for name in MNIST_FILES}
