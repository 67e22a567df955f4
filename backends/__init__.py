"""One module per back-end; each registers one back-end under a stable name.

Modules here import no framework at import time: they import torch or jax inside
methods, so `python -m harness list` works where a framework is missing.  Importing this
package imports (and so registers) every public module in it: the project's entry point
`neuralode_harness.backends: builtin = "backends"` does, as a plugin's
would, so a new back-end is one new file.
"""

import importlib as _importlib
import pkgutil as _pkgutil

for _info in _pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")
