"""IDX files (the format of MNIST) and a folder of the four MNIST files.

An IDX file is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B
int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions d, then d
big-endian uint32 sizes; the data follow in C order, big-endian.  Each file may be
gzipped, with a `.gz` suffix.
"""

from __future__ import annotations

import gzip
import math
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
    paths = {name: _idx_path(directory, name) for name in MNIST_FILES}
    try:
        _check_contents(paths)
    except ValueError as exc:  # before any cell runs: one line, exit status 2
        raise DataDirError(f"data_dir '{directory}': {exc}") from None
    return paths


def _header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """The dtype, shape and total size in bytes an IDX file's header declares (its first
    4 + 4 d bytes only), checked against the file's size (for `.gz`, the gzip trailer's
    ISIZE, the size mod 2**32, RFC 1952)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise ValueError(f"'{path.name}' is not an IDX file: bad magic number {head.hex() or 'none'}")
            sizes = fh.read(4 * head[3])
        if len(sizes) < 4 * head[3]:
            raise ValueError(f"'{path.name}' is not an IDX file: header cut short")
        if path.suffix == ".gz":
            with open(path, "rb") as raw:
                raw.seek(-4, 2)
                stored = int.from_bytes(raw.read(4), "little")
        else:
            stored = path.stat().st_size
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"'{path.name}' cannot be read: {one_line(exc)}") from None
    dtype = np.dtype(_IDX_DTYPES[head[2]])
    shape = tuple(int(d) for d in np.frombuffer(sizes, dtype=">u4"))
    total = 4 + 4 * len(shape) + dtype.itemsize * math.prod(shape)
    if stored != (total % 2**32 if path.suffix == ".gz" else total):
        raise ValueError(
            f"'{path.name}': its header declares {shape} ({total} bytes), the file holds another size"
        )
    return dtype, shape, total


def _check_contents(paths: dict[str, Path]) -> None:
    """The four MNIST files agree before any cell runs: images of 3 dimensions, labels of
    one, as many labels as images, every label a digit 0-9 (a label out of range ended as
    an IndexError inside the cell)."""
    names = list(MNIST_FILES)
    for images_name, labels_name in (names[:2], names[2:]):
        _, images, _ = _header(paths[images_name])
        _, labels, _ = _header(paths[labels_name])
        if len(images) != 3 or min(images) < 1:
            raise ValueError(f"'{images_name}' holds shape {images}, not images (N, rows, columns)")
        if len(labels) != 1 or labels[0] != images[0]:
            raise ValueError(
                f"'{labels_name}' holds shape {labels}, not one label for each of {images[0]} images"
            )
        values = read_idx(paths[labels_name])
        if values.size and (values.min() < 0 or values.max() > 9):
            raise ValueError(
                f"'{labels_name}' holds labels {values.min()}..{values.max()}; labels must be digits 0-9"
            )
