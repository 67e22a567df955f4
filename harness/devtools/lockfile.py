"""The lock file (`constraints.txt`) with some pins replaced: the install command of the
version-comparison environments of `tox.ini`.

A pip constraint cannot be overridden by a requirement, and dropping a pin is not enough
either (pip may then upgrade the package again to satisfy a newer, unpinned dependent), so
the old pins go and the new ones become constraints of every install of the environment:

    python -m harness.devtools.lockfile --pin jax==0.9.2,jaxlib==0.9.2 --drop lineax -- PIP_ARGS...
    python -m harness.devtools.lockfile --pin torchdiffeq==0.2.3 --print

With arguments after ``--``, runs ``python -m pip install -c FILE PIP_ARGS...`` with this
interpreter; with ``--print`` (or nothing after ``--``), prints the constraints.  Standard
library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["canonical_name", "main", "replace_pins"]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name: lower case, runs of `-_.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(line: str) -> str | None:
    match = _NAME.match(line.split("#", 1)[0])
    return canonical_name(match.group(1)) if match else None


def replace_pins(lines: Iterable[str], pins: Iterable[str] = (), drop: Iterable[str] = ()) -> list[str]:
    """The lines of a constraints file with the pins of `drop` and of the packages named in
    `pins` left out, and `pins` (requirement strings such as ``jax==0.9.2``) appended.

    **Raises:** `ValueError` for a pin without a package name.
    """
    pins = list(pins)
    names = {canonical_name(name) for name in drop}
    for pin in pins:
        name = _name(pin)
        if name is None:
            raise ValueError(f"bad pin '{pin}': expected NAME==VERSION")
        names.add(name)
    kept = [line.rstrip("\n") for line in lines if _name(line) not in names]
    return kept + ([f"# replaced by harness.devtools.lockfile: {', '.join(pins)}", *pins] if pins else [])


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.devtools.lockfile",
        description="pip install against the lock file with some pins replaced.",
    )
    parser.add_argument("--pin", default="", help="comma-separated NAME==VERSION pins replacing the lock's")
    parser.add_argument("--drop", default="", help="comma-separated names whose pins are only left out")
    parser.add_argument(
        "--lock", type=Path, default=Path("constraints.txt"), help="lock file (default: ./constraints.txt)"
    )
    parser.add_argument("--print", action="store_true", help="print the constraints and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:split])
    pip_args = argv[split + 1 :]
    if not args.lock.is_file():
        print(f"error: no lock file at '{args.lock}'", file=sys.stderr)
        return 2
    try:
        lines = replace_pins(args.lock.read_text().splitlines(), _split(args.pin), _split(args.drop))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = "\n".join(lines) + "\n"
    if args.print or not pip_args:
        sys.stdout.write(text)
        return 0
    fd, path = tempfile.mkstemp(prefix="constraints-", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return subprocess.call([sys.executable, "-m", "pip", "install", "-c", path, *pip_args])
    finally:
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
