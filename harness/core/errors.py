"""Errors the command line turns into one-line messages (exit status 2)."""

from __future__ import annotations

__all__ = ["UsageError", "choices"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, never as a traceback."""


def choices(names: object) -> str:
    """`a, b, c` for an error message that names the valid choices."""
    return ", ".join(sorted(str(n) for n in names))  # type: ignore[union-attr]
