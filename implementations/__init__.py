"""One module per back-end; each registers one implementation under a stable name.

Modules here import no framework at import time: they import torch or jax inside
methods, so `python -m harness list` works where a framework is missing.
"""
