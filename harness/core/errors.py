"""Errors the command line turns into one-line messages (exit status 2)."""

from __future__ import annotations

__all__ = ["UsageError", "choices", "one_line"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, never as a traceback."""


def choices(names: object) -> str:
    """`a, b, c` for an error message that names the valid choices."""
    return ", ".join(sorted(str(n) for n in names))  # type: ignore[union-attr]


def one_line(exc: BaseException) -> str:
    """`ExceptionType: first line of its message`, for a record's `reason` or an error line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
