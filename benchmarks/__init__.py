"""asv benchmark suite (see asv.conf.json and the README's "Benchmark dashboards" section).

Thread counts are fixed here, before any module of the suite imports NumPy, PyTorch or
JAX, exactly as `python -m harness` does: one thread unless `HARNESS_THREADS` says
otherwise.  `standalone/` (no `__init__.py`) holds scripts, not benchmarks; asv skips it.
"""

import os

try:
    from harness.execution.environment import configure_threads
except ImportError:  # a commit without the harness: every benchmark skips (see common.py)
    pass
else:
    configure_threads(max(int(os.environ.get("HARNESS_THREADS", "1")), 1))
