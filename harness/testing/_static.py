"""The checks of `check_task` that need no derivative: metadata, options, data, initial
parameters; and the tasks' tolerances."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.core.check_settings import CheckSettings
from harness.core.claims import Claim
from harness.core.models import Params
from harness.core.protocols import AbstractTask, Dataset
from harness.core.registry import legacy_names
from harness.core.training_protocol import TrainingProtocol

__all__ = [
    "TASK_CHECKS",
    "Fail",
    "check_data",
    "check_init_params",
    "check_metadata",
    "check_options",
    "tolerance",
    "tolerances",
]

#: the checks of `check_task`, in the order they run
TASK_CHECKS = (
    "metadata",
    "options",
    "data",
    "init_params",
    "vjp",
    "loss_cotangent",
    "reference_gradient",
    "metrics",
)


def tolerances(task: type[AbstractTask] | AbstractTask) -> dict[str, tuple[float, str]]:
    """The task's `checks.tolerances`, merged over its class hierarchy (a subclass that sets
    one entry keeps its parents' others)."""
    cls = task if isinstance(task, type) else type(task)
    merged: dict[str, tuple[float, str]] = {}
    for klass in reversed(cls.__mro__):
        own = klass.__dict__.get("checks")
        if isinstance(own, CheckSettings):
            merged.update(own.tolerances)
    return merged


def tolerance(task: type[AbstractTask] | AbstractTask, check: str) -> float:
    """The tolerance of `check` for `task` (`tolerances`)."""
    return float(tolerances(task)[check][0])


class Fail:
    """Raises AssertionError naming the task and the check."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name

    def __call__(self, check: str, condition: Any, message: str | Callable[[], str]) -> None:
        if not condition:
            text = message() if callable(message) else message
            raise AssertionError(f"check_task({self.task_name}) [{check}]: {text}")


# ----------------------------------------------------------------------------- static checks


def check_metadata(cls: type[AbstractTask], fail: Fail) -> None:
    name = getattr(cls, "name", None)
    fail(
        "metadata",
        isinstance(name, str) and name.strip() and not any(c.isspace() for c in name),
        f"`name` must be a non-empty string without spaces, not {name!r}",
    )
    source = getattr(cls, "source", None)
    fail(
        "metadata",
        isinstance(source, str) and source.strip(),
        f"`source` must name the source document and section, not {source!r}",
    )
    for message in legacy_names(cls):
        fail("metadata", False, f"{message} (#27)")
    doc = cls.__dict__.get("__doc__")
    fail(
        "metadata",
        isinstance(doc, str) and doc.strip(),
        "the task class needs its own docstring (citing the source document and section)",
    )


_OPTION_TYPES = (bool, int, float, str)


def check_options(cls: type[AbstractTask], options: Mapping[str, Any], fail: Fail) -> None:
    fail("options", isinstance(cls.options, dict), "`options` must be a dict")
    for key, value in cls.options.items():
        fail(
            "options",
            isinstance(key, str) and key.isidentifier(),
            f"option name {key!r} is not an identifier",
        )
        fail(
            "options",
            isinstance(value, _OPTION_TYPES),
            f"option {key}={value!r}: defaults are bool, int, float or str (--set casts to their type)",
        )
    for where, given in (("checks.options", cls.checks.options), ("check_task(**options)", options)):
        for key, value in given.items():
            fail("options", key in cls.options, f"{where}: {key!r} is not an option of the task")
            default = cls.options[key]
            ok = isinstance(value, type(default)) or (isinstance(default, float) and type(value) is int)
            fail(
                "options", ok, f"{where}: {key}={value!r} is not a {type(default).__name__} like its default"
            )
    if not isinstance(cls.protocol, TrainingProtocol):
        return  # a legacy tuple of phases: `check_metadata` says so
    train = cls.protocol.settings()  # TrainingProtocol refuses unknown keys when it is made
    fail(
        "options",
        type(train["iters"]) is int and train["iters"] > 0,
        f"iters must be a positive int: {train['iters']!r}",
    )
    fail(
        "options",
        type(train["curriculum"]) is int and train["curriculum"] >= 0,
        f"curriculum must be an int >= 0: {train['curriculum']!r}",
    )
    for key in ("lr", "target", "budget"):
        value = train[key]
        positive = key == "lr"
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > 0 if positive else value >= 0)
        fail(
            "options",
            ok,
            f"training default {key}={value!r} must be a {'positive' if positive else 'non-negative'} number",
        )
    for key in ("rtol", "atol", "dt"):
        value = cls.solver_defaults.get(key)
        fail(
            "options",
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
            f"solver_defaults[{key!r}] must be a positive number, not {value!r}",
        )
    claims = cls.claims
    fail(
        "options",
        isinstance(claims, tuple) and all(isinstance(c, Claim) for c in claims),
        "`claims` must be a tuple of harness.core.claims.Claim",
    )
    ids = [c.id for c in claims]
    fail("options", len(ids) == len(set(ids)), f"claim ids must be unique: {ids}")
    known = set(TASK_CHECKS) | {"gradient", "loss", "reference_loss"}
    for check, entry in tolerances(cls).items():
        fail("options", check in known, f"checks.tolerances: unknown check {check!r}; known: {sorted(known)}")
        ok = (
            isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], int | float)
            and entry[0] > 0
        )
        fail(
            "options",
            ok and isinstance(entry[1], str) and entry[1].strip(),
            f"checks.tolerances[{check!r}] must be (positive tolerance, reason), not {entry!r}",
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def check_data(task: AbstractTask, fail: Fail) -> Dataset:
    data = task.make_data(0)
    fail("data", isinstance(data, Dataset), f"make_data must return a Dataset, not {type(data).__name__}")
    again = task.make_data(0)
    for field in ("t", "y", "y0", "y_true", "t_forward", "y_forward", "t_backward", "y_backward", "truth"):
        fail(
            "data",
            _same(getattr(data, field), getattr(again, field)),
            f"make_data(0) is not deterministic: `{field}` differs between two calls",
        )
    for problem in data.problems(task.model):
        fail("data", False, problem)
    return data


def check_init_params(task: AbstractTask, fail: Fail) -> Params:
    params = task.init_params(0)
    fail("init_params", isinstance(params, dict) and params, "init_params must return a non-empty dict")
    fail("init_params", _same(params, task.init_params(0)), "init_params(0) is not deterministic")
    for key, value in params.items():
        fail("init_params", isinstance(key, str), f"parameter name {key!r} is not a string")
        array = np.asarray(value)
        fail(
            "init_params",
            isinstance(value, np.ndarray | float) and array.dtype == np.float64,
            f"parameter {key} must be a NumPy float64 array, not {type(value).__name__} {array.dtype}",
        )
        fail("init_params", bool(np.all(np.isfinite(array))), f"parameter {key} is not finite")
    return params
