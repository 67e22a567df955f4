"""The one validator of a trajectory archive (`.npz`), run before any member is
decompressed: the zip's own directory and each member's `.npy` header are read (a few
hundred bytes each), and the archive is refused unless every member is a plain numeric
array whose declared size matches its stored size and the whole stays under a bound.

Why: `np.load` of an `.npz` decompresses members in full, so a 1.5 MB archive of zeros
became 1.6 GB in memory, and a header declaring 2**40 values ended in an allocation
traceback.  The `.npy` format (numpy.lib.format, NEP 1) puts the dtype and shape in a
short header before the data; `zipfile` gives each member's uncompressed size from the
central directory without inflating it.
"""

from __future__ import annotations

import math
import zipfile
from typing import IO

from harness.core.errors import UsageError

__all__ = ["MAX_ARCHIVE_BYTES", "MAX_MEMBERS", "check_archive"]

#: the most bytes the arrays of one trajectory archive may hold once decompressed (1 GiB)
MAX_ARCHIVE_BYTES = 2**30
#: the most arrays in one archive
MAX_MEMBERS = 4096
#: the dtype kinds a trajectory array may have: bool, signed, unsigned, float
_KINDS = "biuf"


def check_archive(fh: IO[bytes], name: str, *, max_bytes: int | None = None) -> None:
    """Refuse (a one-line `UsageError` naming `name`) an archive that is not a zip of
    numeric `.npy` members of consistent declared sizes, at most `max_bytes` in all,
    reading only the zip directory and the members' headers (`max_bytes` default:
    `MAX_ARCHIVE_BYTES`).  `fh` is rewound."""
    max_bytes = MAX_ARCHIVE_BYTES if max_bytes is None else max_bytes
    start = fh.tell()
    try:
        with zipfile.ZipFile(fh) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise _bad(name, f"{len(infos)} members, more than {MAX_MEMBERS}")
            total = sum(info.file_size for info in infos)
            if total > max_bytes:
                raise _bad(name, f"its arrays would take {total} bytes, more than {max_bytes}")
            for info in infos:
                _check_member(archive, info, name)
    except zipfile.BadZipFile as exc:
        raise _bad(name, f"not an .npz archive ({exc})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise _bad(name, f"{type(exc).__name__}: {exc}") from None
    finally:
        fh.seek(start)


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    from numpy.lib import format as npy

    member = info.filename
    if not member.endswith(".npy"):
        raise _bad(name, f"member '{member}' is not an .npy array")
    if info.flag_bits & 0x1:
        raise _bad(name, f"member '{member}' is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = info.compress_type
        raise _bad(name, f"member '{member}' uses compression method {method} (stored or deflated only)")
    with archive.open(info) as stream:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy.read_array_header_2_0(stream)
        else:
            raise _bad(name, f"member '{member}' has .npy version {version}")
        header = stream.tell()
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise _bad(name, f"member '{member}' has dtype {dtype}, not a plain number type")
    declared = math.prod(shape) * dtype.itemsize
    if declared != info.file_size - header:
        raise _bad(
            name,
            f"member '{member}' declares {math.prod(shape)} values ({declared} bytes) "
            f"but holds {info.file_size - header} bytes",
        )


def _bad(name: str, why: str) -> UsageError:
    return UsageError(f"corrupt trajectory file '{name}': {why}")
