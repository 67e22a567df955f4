"""A session: a planned set of cells run into a results folder, its table printed and its
report written.  `run`, `reproduce` and every study go through `execute`; the options
every session takes are declared once, in `add_session_options`."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from harness.core.devices import DTYPES

__all__ = ["add_session_options", "execute", "write_report"]

#: timed value-and-grad calls after the warm-up call, for `run` and the studies alike
DEFAULT_REPEATS = 7


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """The options `run`, `reproduce` and `study` share: back-ends, device, dtype, seed,
    repeats, results folder, timeout, threads, progress."""
    parser.add_argument(
        "--impl", default="all", help="NAME[,NAME...] or all (default); grids: NAME[rtol=1e-3,1e-6]"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--dtype", default="float64", choices=DTYPES)
    parser.add_argument("--seed", type=int, default=0, help="data and initial-weight seed (default: 0)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"timed value-and-grad repeats after warm-up (default: {DEFAULT_REPEATS})",
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<run-id>)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per cell before it is failed")
    parser.add_argument("--threads", type=int, default=1, help="threads per framework (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def execute(
    cells: list[Any],
    *,
    out: Path | None,
    label: str,
    repeats: int,
    memory: bool,
    timeout: float,
    progress: bool,
    judge: bool = False,
) -> int:
    """Run `cells` into `out` (default results/<run-id>), print the table, write the report;
    with `judge`, count the claims' verdicts and exit with 1 when one is failing."""
    from harness.core.claims import FAILING
    from harness.execution.environment import provenance
    from harness.execution.runner import run_cells
    from harness.reporting.tables import format_records, verdict_counts
    from harness.store.results import ResultsStore, load_records, new_run_id

    run_id = new_run_id(label)
    out = out if out is not None else Path("results") / run_id
    env = provenance()
    store = ResultsStore(out, env)
    try:
        run_cells(
            cells, store, run_id=run_id, env=env, repeats=repeats, memory=memory, timeout=timeout,
            progress=progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished cells are in {out}/records.jsonl; --resume {out} goes on",
            file=sys.stderr,
        )
        return 130
    records = load_records(out)
    print(format_records(records))
    written = write_report(out, records)
    print(f"\nresults: {out}/records.jsonl, {out}/summary.csv" + (f", {written}" if written else ""))
    if not judge:
        return 0
    counts = verdict_counts(records)
    print("verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return 1 if any(counts.get(v) for v in FAILING) else 0


def write_report(directory: Path, records: list[Any], verdicts: Any = None) -> str:
    """Figures, report.md and report.html when the report libraries are installed; the
    files written, for the closing line.  `verdicts`: `harness.reporting.tables.Verdicts`
    (default: those the records carry)."""
    if importlib.util.find_spec("matplotlib") is None:
        return ""
    try:
        from harness.reporting.html_report import write_report as write_html
    except ImportError:
        return ""
    paths = write_html(directory, records, verdicts=verdicts)
    return ", ".join(str(p) for p in paths.values() if str(p).endswith((".html", ".md")))
