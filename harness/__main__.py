"""`python -m harness`: thread counts are fixed here, before any framework is imported."""

from __future__ import annotations

import sys


def _threads_from_argv(argv: list[str]) -> int:
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else None
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            try:
                return max(int(value), 1)
            except ValueError:
                return 1  # the parser reports the bad value
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    from harness.execution.environment import configure_threads

    configure_threads(_threads_from_argv(argv))
    from harness.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
