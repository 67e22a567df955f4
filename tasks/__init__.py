"""One module per example of the source documents; each registers one task.

Importing this package imports (and so registers) every public module in it: the
project's entry point `neuralode_harness.tasks: builtin = "tasks"` does, as a plugin's
would, so a new task is one new file."""

import importlib as _importlib
import pkgutil as _pkgutil

for _info in _pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")
