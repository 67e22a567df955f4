"""Registries of tasks and back-ends, keyed by stable names.

Task and back-end classes register with the decorators below.  `discover()` loads the
entry points of the plugin groups (`harness.core.plugins`), the in-tree `tasks` and
`backends` packages among them (the project's own entry points: each package
imports its modules), then the plugins `HARNESS_PLUGINS` lists.  This layer imports no
higher one.  Importing a back-end module imports no framework: availability is
decided by `AbstractBackend.missing()`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeVar

from harness.core import plugins
from harness.core.check_settings import LEGACY_NAMES
from harness.core.errors import UsageError, choices
from harness.core.protocols import AbstractBackend, AbstractTask
from harness.core.training_protocol import (
    LEGACY_TRAINING_NAMES,
    TrainingProtocol,
    check_protocol,
)

__all__ = [
    "BACKENDS",
    "TASKS",
    "discover",
    "get_backend",
    "get_task",
    "register_backend",
    "register_task",
]

TASKS: dict[str, type[AbstractTask]] = {}
BACKENDS: dict[str, type[AbstractBackend]] = {}

T = TypeVar("T", bound=type[AbstractTask])
I = TypeVar("I", bound=type[AbstractBackend])  # noqa: E741


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(kind: str, table: dict[str, Any], cls: type) -> None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise UsageError(f"{kind} class {_qualified(cls)} has no `name`")
    taken = table.get(name)
    if taken is not None and taken is not cls:
        raise UsageError(f"{kind} name '{name}' of {_qualified(cls)} is taken by {_qualified(taken)}")
    table[name] = cls


def register_task(cls: T) -> T:
    """Class decorator: register a task under `cls.name` (a `UsageError` if it is taken or
    its training protocol cannot run: `harness.core.training_protocol.check_protocol`)."""
    legacy = legacy_names(cls)
    if legacy:
        raise UsageError(f"task {getattr(cls, 'name', cls.__qualname__)}: {'; '.join(legacy)} (#27)")
    try:
        check_protocol(cls.name, cls.protocol.phases, own_fit=cls.fit is not AbstractTask.fit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _register("task", TASKS, cls)
    return cls


def legacy_names(cls: type) -> list[str]:
    """What `cls` still sets under a name the task's roles replaced (#27), one message each
    naming its new place: the test settings (`CheckSettings`) and the training protocol
    (`TrainingProtocol`)."""
    found = [
        f"{old} is now checks = CheckSettings({new}=...)"
        for old, new in LEGACY_NAMES.items()
        if old in vars(cls)
    ]
    found += [
        f"{old} is now protocol = TrainingProtocol({new}=...)"
        for old, new in LEGACY_TRAINING_NAMES.items()
        if old in vars(cls)
    ]
    if not isinstance(getattr(cls, "protocol", None), TrainingProtocol):
        found.append("protocol is now a TrainingProtocol(phases=..., defaults=...), not a tuple of phases")
    return found


def register_backend(cls: I) -> I:
    """Class decorator: register a back-end under `cls.name` (a `UsageError` if it is taken)."""
    _register("back-end", BACKENDS, cls)
    return cls


def _register_entry_point(kind: str, label: str, obj: object) -> None:
    """An entry point's object: a module registered itself on import; a class is registered."""
    if isinstance(obj, ModuleType):
        return
    base: type = AbstractTask if kind == "task" else AbstractBackend
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise UsageError(f"plugin {label}: expected a module or a subclass of {base.__name__}, got {obj!r}")
    try:
        if kind == "task":
            register_task(obj)  # type: ignore[arg-type]
        else:
            register_backend(obj)  # type: ignore[arg-type]
    except UsageError as exc:
        raise UsageError(f"plugin {label}: {exc}") from None


_discovered = False


def discover() -> None:
    """Load the entry points of the plugin groups (once): the in-tree packages and the
    installed plugins; then the plugins `HARNESS_PLUGINS` lists (each once: a plugin
    added to it later is loaded by the next call).  No in-tree entry point (an install
    older than them): a one-line `UsageError` that says how to reinstall."""
    global _discovered
    if not _discovered:
        for kind, label, obj in plugins.entry_point_objects():
            _register_entry_point(kind, label, obj)
        if not (TASKS and BACKENDS):
            raise UsageError(
                "no task or back-end registered: the project's entry points are missing "
                "(an install from before they were added); reinstall: pip install -c constraints.txt -e ."
            )
        _discovered = True
    for spec in plugins.environment_plugins():
        plugins.load(spec)


def get_task(name: str) -> type[AbstractTask]:
    discover()
    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task '{name}'; choose from: {choices(TASKS)}, all") from None


def get_backend(name: str) -> type[AbstractBackend]:
    discover()
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown back-end '{name}'; choose from: {choices(BACKENDS)}, all") from None
