"""Child process of `measure_memory_isolated`: one cell's memory, printed as one JSON line.

Usage (internal): ``python -m harness.execution.memprobe '{"task": ..., "impl": ..., ...}'``.
Thread settings come from the parent's environment, so they match the timed run.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    cell = json.loads(argv[0])
    if cell["device"] != "cpu":
        import os

        # JAX takes 75% of the GPU up front unless told not to: the peak would be meaningless
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    from harness.execution.build import build_cell
    from harness.execution.measurement import probe_memory

    impl, params = build_cell(cell)
    print(json.dumps(probe_memory(impl, params)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
