"""Registries of tasks and implementations, keyed by stable names.

Modules in the `tasks` and `implementations` packages register their classes with the
decorators below; `discover()` imports every public module of both packages, so a new
task or back-end is one new file.  Importing an implementation module imports no
framework: availability is decided by `AbstractImplementation.missing()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from harness.core.errors import UsageError, choices
from harness.core.protocols import AbstractImplementation, AbstractTask

__all__ = [
    "IMPLEMENTATIONS",
    "TASKS",
    "discover",
    "get_implementation",
    "get_task",
    "register_implementation",
    "register_task",
]

TASKS: dict[str, type[AbstractTask]] = {}
IMPLEMENTATIONS: dict[str, type[AbstractImplementation]] = {}

T = TypeVar("T", bound=type[AbstractTask])
I = TypeVar("I", bound=type[AbstractImplementation])  # noqa: E741


def register_task(cls: T) -> T:
    """Class decorator: register a task under `cls.name`."""
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} registered twice")
    TASKS[cls.name] = cls
    return cls


def register_implementation(cls: I) -> I:
    """Class decorator: register a back-end under `cls.name`."""
    if cls.name in IMPLEMENTATIONS and IMPLEMENTATIONS[cls.name] is not cls:
        raise ValueError(f"implementation name {cls.name!r} registered twice")
    IMPLEMENTATIONS[cls.name] = cls
    return cls


_discovered = False


def discover() -> None:
    """Import every public module of `tasks` and `implementations` (once)."""
    global _discovered
    if _discovered:
        return
    for package_name in ("tasks", "implementations"):
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
    _discovered = True


def get_task(name: str) -> type[AbstractTask]:
    discover()
    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task '{name}'; choose from: {choices(TASKS)}, all") from None


def get_implementation(name: str) -> type[AbstractImplementation]:
    discover()
    try:
        return IMPLEMENTATIONS[name]
    except KeyError:
        raise UsageError(f"unknown back-end '{name}'; choose from: {choices(IMPLEMENTATIONS)}, all") from None
