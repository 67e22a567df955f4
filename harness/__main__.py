"""`python -m harness`: thread counts are fixed here, before any framework is imported."""

from __future__ import annotations

import sys


def _threads_from_argv(argv: list[str]) -> int:
    """`--threads N` of the command line (1 if not given), checked against its range
    (`harness.core.ranges.PROCESS_RANGES`): a bad value is a one-line `UsageError`."""
    from harness.core.ranges import PROCESS_RANGES

    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else None
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            return PROCESS_RANGES["--threads"].parse("--threads", value)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    from harness.core.errors import UsageError
    from harness.execution.environment import configure_threads

    try:
        threads = _threads_from_argv(argv)
    except UsageError as exc:  # before the parser: NumPy must not load before the threads are set
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_threads(threads)
    from harness.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
