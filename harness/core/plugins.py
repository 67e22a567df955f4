"""Plugins: tasks and back-ends from outside the tree.

Three ways in, loaded by `harness.core.registry.discover()` after the built-in `tasks` and
`backends` packages, in this order:

1. **Entry points** of installed distributions, in the groups `neuralode_harness.tasks` and
   `neuralode_harness.backends` (and, for plugins written before #27's rename, the old
   `neuralode_harness.implementations`).  An entry point names a module (importing it runs
   its `@register_task` / `@register_backend` decorators) or a class (registered
   then, decorated or not)::

       [project.entry-points."neuralode_harness.tasks"]
       spiral = "spiral_plugin.task"

2. **`HARNESS_PLUGINS`**, an `os.pathsep`-separated list of plugins, each a dotted module
   name (`my_tasks.spiral`) or the path of a `.py` file.

3. **`--plugin MODULE_OR_FILE`** (repeatable) on the command line, which appends to
   `HARNESS_PLUGINS` (files as absolute paths) before discovery, so the worker and
   memory-probe processes, which inherit the environment and discover for themselves,
   load the same plugins.

A file inside a package (its folder has an `__init__.py`) is imported under its dotted
name, with the folder above the package's top put first on `sys.path`, so a plugin given as
a file and the same plugin installed with an entry point are one module.  A file outside a
package is imported under its stem, with its folder appended to `sys.path` (for its
sibling imports).  A plugin that fails to load is a `UsageError` naming it and the
exception: one line, exit status 2 on the command line.

Imports nothing of the harness outside `harness.core`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import os
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.core.errors import UsageError, one_line

__all__ = [
    "ENTRY_POINT_GROUPS",
    "ENV_VARIABLE",
    "add_to_environment",
    "entry_point_objects",
    "environment_plugins",
    "load",
    "source_of",
]

#: entry-point group -> what its entry points register
ENTRY_POINT_GROUPS = {
    "neuralode_harness.tasks": "task",
    "neuralode_harness.backends": "backend",
    # the group's name before #27 gave the back-end one word; still read for older plugins
    "neuralode_harness.implementations": "backend",
}

#: the environment variable that lists plugins (and carries `--plugin` to subprocesses)
ENV_VARIABLE = "HARNESS_PLUGINS"

#: what a plugin that exits at import should do instead
_PLUGIN_FIX = "a plugin must only define tasks or back-ends (raise an exception to refuse)"

#: plugins loaded in this process, by their resolved spelling
_loaded: dict[str, ModuleType] = {}


def is_file(spec: str) -> bool:
    """Is `spec` the path of a file (rather than a dotted module name)?"""
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def resolve(spec: str) -> str:
    """`spec` as it travels to subprocesses: files as absolute paths, modules as given."""
    spec = spec.strip()
    return os.path.abspath(os.path.expanduser(spec)) if is_file(spec) else spec


def environment_plugins(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """The plugins `HARNESS_PLUGINS` lists, in order, empty entries dropped."""
    value = (os.environ if environ is None else environ).get(ENV_VARIABLE, "")
    return [part.strip() for part in value.split(os.pathsep) if part.strip()]


def add_to_environment(specs: list[str], environ: MutableMapping[str, str] | None = None) -> None:
    """Append `specs` (resolved, each once) to `HARNESS_PLUGINS`."""
    environ = os.environ if environ is None else environ
    present = environment_plugins(environ)
    for spec in specs:
        if not spec.strip():
            raise UsageError("bad --plugin: empty name")
        resolved = resolve(spec)
        if resolved not in present:
            present.append(resolved)
    if present:
        environ[ENV_VARIABLE] = os.pathsep.join(present)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise FileNotFoundError("no such file")
    if path.suffix != ".py":
        raise ImportError("not a .py file")
    # the dotted name: walk up while the folder is a package
    parts = [] if path.stem == "__init__" else [path.stem]
    root = path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    name = ".".join(parts)
    in_package = root != path.parent or path.stem == "__init__"
    existing = sys.modules.get(name)
    if existing is not None:
        where = getattr(existing, "__file__", None)
        if where is not None and Path(where).resolve() == path:
            return existing
        raise ImportError(f"it would import as module '{name}', which is already loaded from {where}")
    if in_package:
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        module = importlib.import_module(name)
        where = getattr(module, "__file__", None)
        if where is None or Path(where).resolve() != path:
            raise ImportError(f"module '{name}' was found at {where}, not at this file")
        return module
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before executing: dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@contextlib.contextmanager
def _held_stderr() -> Iterator[None]:
    """What a plugin writes to `sys.stderr` while it loads, held back: written out after a
    load that succeeds (its warnings are kept), dropped when it fails, so that the failure
    is one line."""
    held = io.StringIO()
    with contextlib.redirect_stderr(held):
        yield
    sys.stderr.write(held.getvalue())  # reached only when the load succeeded


def load(spec: str) -> ModuleType:
    """Import the plugin `spec` (a dotted module name or a `.py` file), once per process.

    **Raises:** `UsageError` naming the plugin and the exception if it fails to load.
    """
    resolved = resolve(spec)
    if resolved in _loaded:
        return _loaded[resolved]
    if not resolved:
        raise UsageError("bad plugin: empty name")
    try:
        with _held_stderr():
            if is_file(resolved):
                module = _import_file(Path(resolved).resolve())
            else:
                module = importlib.import_module(resolved)
    except UsageError as exc:  # e.g. a name clash raised by the registry's decorators
        raise UsageError(f"plugin '{spec}': {exc}") from None
    except SystemExit as exc:  # sys.exit at import: the run would end silently with its code
        raise UsageError(
            f"plugin '{spec}' called sys.exit({exc.code!r}) while loading: {_PLUGIN_FIX}"
        ) from None
    except Exception as exc:
        raise UsageError(f"plugin '{spec}' failed to load: {one_line(exc)}") from None
    _loaded[resolved] = module
    return module


def entry_point_objects() -> Iterator[tuple[str, str, Any]]:
    """`(kind, label, object)` for every entry point of the plugin groups, loaded; `kind` is
    `task` or `backend`, `label` names the entry point for error messages."""
    for group, kind in ENTRY_POINT_GROUPS.items():
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            label = f"entry point '{ep.name} = {ep.value}' ({group})"
            try:
                with _held_stderr():
                    obj = ep.load()
            except UsageError as exc:
                raise UsageError(f"plugin {label}: {exc}") from None
            except SystemExit as exc:
                raise UsageError(
                    f"plugin {label} called sys.exit({exc.code!r}) while loading: {_PLUGIN_FIX}"
                ) from None
            except Exception as exc:
                raise UsageError(f"plugin {label} failed to load: {one_line(exc)}") from None
            yield kind, label, obj


@functools.cache
def source_of(cls: type) -> dict[str, Any]:
    """Where a task or back-end class came from, for its records: its module, the file and
    the SHA-256 of the file's bytes (None for a class without a file), and the plugin spec
    that loaded it (None for the built-in packages and entry points)."""
    try:
        path: str | None = os.path.abspath(inspect.getfile(cls))
    except (TypeError, OSError):
        path = None
    digest = None
    if path is not None:
        try:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            digest = None
    module = sys.modules.get(cls.__module__)
    plugin = next((spec for spec, loaded in _loaded.items() if loaded is module), None)
    return {"module": cls.__module__, "file": path, "sha256": digest, "plugin": plugin}
