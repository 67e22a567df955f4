"""Errors the command line turns into one-line messages (exit status 2)."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineParser", "UsageError", "choices", "error_line", "informative_line", "one_line"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, never as a traceback."""


def choices(names: object) -> str:
    """`a, b, c` for an error message that names the valid choices."""
    return ", ".join(sorted(str(n) for n in names))  # type: ignore[union-attr]


#: lines of an exception message that frame the cause rather than state it
_FRAMING = (
    "traceback",
    'file "',
    "above is the stack",
    "below is the stack",
    "the above exception",
    "during handling of",
    "for simplicity, jax",
    "the stack trace below",
    "note:",
)


def informative_line(message: str) -> str:
    """The line of a (possibly long) message that states the cause: the first one that is
    neither blank, nor a rule of dashes, nor traceback framing (JAX and equinox put their
    cause below such lines); a line ending in ':' takes the next one with it."""
    lines = [line.strip() for line in message.splitlines()]
    useful = [
        line
        for line in lines
        if line and any(c.isalnum() for c in line) and not line.lower().startswith(_FRAMING)
    ]
    if not useful:
        return ""
    first = useful[0]
    if first.endswith(":") and len(useful) > 1:
        first = f"{first} {useful[1]}"
    return first


def one_line(exc: BaseException) -> str:
    """`ExceptionType: the informative line of its message`, for a record's `reason` or an
    error line."""
    return f"{type(exc).__name__}: {informative_line(str(exc))}".rstrip(": ")


def error_line(text: object) -> str:
    """`text` as one line of a terminal: control characters (a newline, a carriage return,
    an escape sequence in a name the user typed) shown as Python escapes (`\\n`), so that
    an error that echoes user input stays one line and cannot rewrite the terminal."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (control characters escaped) and exit
    with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {error_line(message)} (see '{self.prog} --help')\n")
