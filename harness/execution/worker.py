"""Worker process: ``python -m harness.execution.worker JOB.json`` measures one cell.

Thread settings come from the parent's environment, so they match across cells.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    job = json.loads(open(argv[0]).read())
    from harness.execution.runner import measure_in_worker

    measure_in_worker(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
