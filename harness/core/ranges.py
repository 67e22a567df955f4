"""Declared ranges of option values, checked before any cell starts.

Every task option (`AbstractTask.option_ranges`), back-end option
(`AbstractBackend.option_ranges`), solver and training option
(`harness.planning.config`) and process-level number (`PROCESS_RANGES`) has a `Range`:
its type and its valid values.  `Range.parse` turns a command-line string into a value of
that type and `Range.check` refuses a value outside the range with one line naming the
option, the value and the range (a `UsageError`, exit status 2), e.g.
``bad t1=-1: must be a finite number > 0``.  NaN and infinities are refused wherever a
finite number is expected; integers must fit in 64 bits.

Imports nothing but `harness.core.errors`, so that `python -m harness` can check
`--threads` before NumPy loads.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from harness.core.errors import UsageError

__all__ = [
    "INT64_MAX",
    "PROCESS_RANGES",
    "Range",
    "any_number",
    "flag",
    "integer",
    "non_negative",
    "number",
    "one_of",
    "positive",
    "probability",
    "text",
]

#: the largest integer a range accepts (NumPy's int64): seeds and sizes end up there
INT64_MAX = 2**63 - 1
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid values of one option.

    **Arguments:**

    - `kind`: `float`, `int`, `bool` or `str`.
    - `low`, `high`: bounds of a number (None: unbounded on that side).
    - `low_open`, `high_open`: whether the bound itself is excluded.
    - `finite`: refuse NaN and infinities (floats; always true for integers).
    - `choices`: the accepted strings (`str` only; empty: any text).
    """

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """The range in words: `a finite number > 0`, `an integer >= 2`, `one of a, b`."""
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return f"one of {', '.join(self.choices)}" if self.choices else "text"
        noun = "an integer" if self.kind is int else ("a finite number" if self.finite else "a number")
        low, high = self.low, self.high
        if low is not None and high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{_fmt(low)}, {_fmt(high)}{right}"
        if low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {_fmt(low)}"
        if high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {_fmt(high)}"
        return noun

    def _refuse(self, name: str, value: Any, shown: str | None = None) -> UsageError:
        if shown is None:
            shown = value if isinstance(value, str) else _show(value)
        limit = ""
        if (
            self.kind is int
            and self.high is None
            and isinstance(value, int | float)
            and abs(value) > INT64_MAX
        ):
            limit = f" (at most {_fmt(INT64_MAX)})"
        return UsageError(f"bad {name}={shown}: must be {self.describe()}{limit}")

    def parse(self, name: str, raw: Any) -> Any:
        """`raw` (a command-line string, or a value) as a checked value of `kind`."""
        if not isinstance(raw, str) or self.kind is str:
            return self.check(name, raw)
        text = raw.strip()
        value: Any
        try:
            if self.kind is bool:
                if text.lower() not in (*_TRUE, *_FALSE):
                    raise ValueError
                value = text.lower() in _TRUE
            elif self.kind is int:
                try:
                    value = int(text)
                except ValueError:
                    number = float(text)  # "1e3" is an integer too
                    if not number.is_integer():
                        raise
                    value = int(number)
            else:
                value = float(text)
        except (ValueError, OverflowError):
            raise self._refuse(name, raw) from None
        try:
            return self.check(name, value)
        except UsageError:  # the value as typed: `1e999`, not `inf`
            raise self._refuse(name, value, raw) from None

    def check(self, name: str, value: Any) -> Any:
        """`value` if it lies in the range (ints widened to float for a float range),
        else a one-line `UsageError` naming `name`, the value and the range."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise self._refuse(name, value)
            return value
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise self._refuse(name, value)
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._refuse(name, value)
        if self.kind is int:
            if isinstance(value, float):
                if not (math.isfinite(value) and value.is_integer()):
                    raise self._refuse(name, value)
                value = int(value)
            if abs(value) > INT64_MAX:
                raise self._refuse(name, value)
        else:
            value = float(value)
            if math.isnan(value) or (self.finite and math.isinf(value)):
                raise self._refuse(name, value)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise self._refuse(name, value)
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise self._refuse(name, value)
        return value

    def accepts(self, value: Any) -> bool:
        """Whether `check` would pass `value`."""
        try:
            self.check("value", value)
        except UsageError:
            return False
        return True


def _fmt(bound: float) -> str:
    if bound == INT64_MAX:
        return "2**63 - 1"
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return f"{value:g}"
    return str(value)


def positive(*, at_most: float | None = None) -> Range:
    """A finite number > 0 (and <= `at_most`)."""
    return Range(float, low=0.0, low_open=True, high=at_most)


def non_negative(*, at_most: float | None = None) -> Range:
    """A finite number >= 0 (and <= `at_most`)."""
    return Range(float, low=0.0, high=at_most)


def number(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Range:
    """A finite number between `low` and `high` (closed unless told)."""
    return Range(float, low=low, high=high, low_open=low_open, high_open=high_open)


def any_number() -> Range:
    """Any finite number."""
    return Range(float)


def probability(*, open_ends: bool = False) -> Range:
    """A fraction in [0, 1] (or (0, 1) with `open_ends`)."""
    return Range(float, low=0.0, high=1.0, low_open=open_ends, high_open=open_ends)


def integer(at_least: int = 0, at_most: int | None = None) -> Range:
    """An integer >= `at_least` (and <= `at_most`)."""
    return Range(int, low=at_least, high=at_most)


def flag() -> Range:
    """true or false."""
    return Range(bool)


def one_of(*names: str) -> Range:
    """One of the strings `names`."""
    return Range(str, choices=tuple(names))


def text() -> Range:
    """Any string (a path, a list the task parses itself)."""
    return Range(str)


#: the process-level numbers of the command line (`run`, `reproduce`, `study`), by flag
PROCESS_RANGES: dict[str, Range] = {
    "--seed": integer(0),
    "--seeds": integer(0),
    "--repeats": integer(1),
    "--iters": integer(0),
    "--timeout": positive(),
    "--threads": integer(1, 4096),
    "--train-budget": positive(),
    "--workers": integer(1, 4096),
    "--memory-limit": positive(),
    "--connect-timeout": positive(at_most=3600),
}
