"""Cell configuration: `--set key=value` parsing and validation against the registries.

A key belongs to the task (its `options`), to the solver (`solver_defaults`, shared by
all back-ends of a task), to a back-end (its `options`) or to training (`iters`, `lr`).
Every value is parsed and checked against its declared range (`harness.core.ranges`): a
task's and a back-end's `option_ranges`, `SOLVER_RANGES` and `TRAIN_RANGES` here; a value
of the wrong type or outside its range is a one-line `UsageError` naming the option, the
value and the range (exit status 2), before any cell starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from harness.core.errors import UsageError, choices
from harness.core.protocols import AbstractBackend, AbstractTask
from harness.core.ranges import PROCESS_RANGES, Range, flag, integer, non_negative, positive

__all__ = [
    "SOLVER_RANGES",
    "TRAIN_RANGES",
    "CellConfig",
    "build_task",
    "cast_value",
    "check_session",
    "parse_seeds",
    "parse_sets",
    "split_options",
]

TRAIN_KEYS = ("iters", "lr", "target", "polish", "gtol", "budget", "curriculum")
#: a train key of its own: go on after the target (`--train-past-target`)
STOP_KEY = "stop_at_target"
#: `tol=x` sets rtol = atol = x (the work-precision sweeps)
TOL_ALIAS = "tol"

#: the valid values of the solver options (`AbstractTask.solver_defaults`), the same for
#: every task: tolerances and the RK4 step are finite and positive
SOLVER_RANGES: dict[str, Range] = {
    "rtol": positive(),
    "atol": positive(),
    "dt": positive(),
    TOL_ALIAS: positive(),
}
#: the valid values of the training options (`harness.core.training_protocol.TRAIN_BASE`): target
#: and budget 0 mean none, curriculum 0 off
TRAIN_RANGES: dict[str, Range] = {
    "iters": integer(0),
    "lr": positive(),
    "target": non_negative(),
    "polish": integer(0),
    "gtol": positive(),
    "budget": non_negative(),
    "curriculum": integer(0),
    STOP_KEY: flag(),
}


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """`["rtol=1e-6", "t1=5"]` -> `{"rtol": "1e-6", "t1": "5"}` (values still strings)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"bad --set value '{item}': expected key=value, e.g. --set rtol=1e-6")
        out[key.strip()] = value.strip()
    return out


def cast_value(key: str, raw: Any, default: Any, valid: Range | None = None) -> Any:
    """`raw` parsed and checked against its range `valid`; without one, cast to the type
    of `default` (bool, int, float or str)."""
    if valid is not None:
        return valid.parse(key, raw)
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise UsageError(f"bad --set value '{key}={raw}': expected {type(default).__name__}") from None
    return raw


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """The options of one (task, back-end) cell, split by owner."""

    task: dict[str, Any]
    solver: dict[str, Any]
    impl: dict[str, Any]
    train: dict[str, Any]

    def as_params(self) -> dict[str, Any]:
        """Flat view recorded as the record's `params`."""
        return {**self.task, **self.solver, **self.impl, **self.train}


def check_session(args: Any) -> None:
    """The process-level numbers of a command (`--seed`, `--repeats`, `--timeout`,
    `--threads`, `--iters`, `--train-budget`, those it has and gives) against
    `PROCESS_RANGES`: one line naming the flag, the value and the range."""
    for flag_name, valid in PROCESS_RANGES.items():
        value = getattr(args, flag_name.removeprefix("--").replace("-", "_"), None)
        if value is not None and flag_name != "--seeds":
            valid.check(flag_name, value)


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2` -> `[0, 1, 2]`, each an integer in `PROCESS_RANGES["--seeds"]`."""
    seeds = [PROCESS_RANGES["--seeds"].parse("--seeds", s) for s in text.split(",") if s.strip()]
    if not seeds:
        raise UsageError(f"bad --seeds={text}: no seed given (expected integers such as 0,1,2)")
    return seeds


def valid_keys(tasks: Iterable[type[AbstractTask]], impls: Iterable[type[AbstractBackend]]) -> set[str]:
    keys = {*TRAIN_KEYS, TOL_ALIAS}
    for task in tasks:
        keys |= set(task.options) | set(task.solver_defaults)
    for impl in impls:
        keys |= set(impl.options)
    return keys


def build_task(task_cls: type[AbstractTask], options: Mapping[str, Any]) -> AbstractTask:
    """`task_cls(**options)`, any exception of the task's option check (KeyError, ValueError,
    TypeError, ...) turned into a one-line `UsageError` naming the task (exit status 2)."""
    try:
        return task_cls(**options)
    except UsageError:
        raise
    except Exception as exc:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        lines = str(text).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "default options"
        raise UsageError(f"task {task_cls.name} rejects its options ({shown}): {message}") from None


def split_options(
    sets: Mapping[str, str],
    task_cls: type[AbstractTask],
    impl_cls: type[AbstractBackend],
    *,
    iters: int | None = None,
    budget: float | None = None,
    stop_at_target: bool = True,
) -> CellConfig:
    """Resolve `--set` values for one cell; keys that belong to neither side are ignored
    here (they were validated against the whole selection by `validate_keys`)."""
    task_ranges = task_cls.option_ranges
    task = {
        k: cast_value(k, v, task_cls.options[k], task_ranges.get(k))
        for k, v in sets.items()
        if k in task_cls.options
    }
    if TOL_ALIAS in sets:
        sets = {
            "rtol": sets[TOL_ALIAS],
            "atol": sets[TOL_ALIAS],
            **{k: v for k, v in sets.items() if k != TOL_ALIAS},
        }
    solver_keys = [k for k in impl_cls.solver_options if k in task_cls.solver_defaults]
    solver = {
        k: cast_value(
            k, sets.get(k, task_cls.solver_defaults[k]), task_cls.solver_defaults[k], _solver_range(k)
        )
        for k in solver_keys
    }
    impl_ranges = impl_cls.option_ranges
    impl = {
        k: cast_value(k, v, impl_cls.options[k], impl_ranges.get(k))
        for k, v in sets.items()
        if k in impl_cls.options
    }
    defaults = task_cls.protocol.settings()
    train: dict[str, Any] = {
        k: cast_value(k, sets.get(k, defaults[k]), defaults[k], TRAIN_RANGES[k]) for k in TRAIN_KEYS
    }
    if iters is not None:  # `--iters N`: N iterations in all, no polish unless --set polish=M
        train["iters"] = TRAIN_RANGES["iters"].check("iters", iters)
        if "polish" not in sets:
            train["polish"] = 0
    if budget is not None:
        train["budget"] = TRAIN_RANGES["budget"].check("budget", budget)
    train[STOP_KEY] = TRAIN_RANGES[STOP_KEY].check(STOP_KEY, stop_at_target)
    return CellConfig(task=task, solver=solver, impl=impl, train=train)


def _solver_range(key: str) -> Range:
    """The declared range of a solver option; one a back-end reads beyond `SOLVER_RANGES`
    is at least a finite number >= 0."""
    return SOLVER_RANGES.get(key, non_negative())


def validate_keys(
    sets: Mapping[str, str],
    tasks: Iterable[type[AbstractTask]],
    impls: Iterable[type[AbstractBackend]],
) -> None:
    """Every `--set` key must belong to a selected task, its solver, a selected back-end or training."""
    tasks, impls = list(tasks), list(impls)
    keys = valid_keys(tasks, impls)
    defaults: dict[str, Any] = {}
    ranges: dict[str, list[Range]] = {}
    for owner in [*impls, *tasks]:
        defaults.update(owner.options)
        for key, valid in owner.option_ranges.items():
            ranges.setdefault(key, []).append(valid)
    for task in tasks:
        defaults.update(
            {**task.solver_defaults, **task.protocol.settings(), TOL_ALIAS: task.solver_defaults["rtol"]}
        )
        for key in [*task.solver_defaults, TOL_ALIAS]:
            ranges.setdefault(key, []).append(_solver_range(key))
    for key, valid in TRAIN_RANGES.items():
        ranges.setdefault(key, []).append(valid)
    for key, raw in sets.items():
        if key not in keys:
            raise UsageError(f"unknown --set key '{key}'; valid keys here: {choices(keys)}")
        _parse_any(key, raw, defaults[key], ranges.get(key, []))


def _parse_any(key: str, raw: Any, default: Any, ranges: list[Range]) -> None:
    """`raw` must suit at least one owner of `key` (each cell checks its own owner's range)."""
    if not ranges:
        cast_value(key, raw, default)
        return
    first: UsageError | None = None
    for valid in ranges:
        try:
            valid.parse(key, raw)
            return
        except UsageError as exc:
            first = first or exc
    assert first is not None
    raise first
