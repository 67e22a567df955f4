"""The committed reference run (results/reference/) is reproduced by a fresh run.

A small subset is re-run with the reference's default options (same cell ids) and
compared with `harness compare`'s tolerances, times left out: CI machines are loaded
differently, while gradients, losses, NFE, metrics and framework memory must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.core import registry
from harness.store.compare import compare_runs
from harness.store.results import load_records

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"
SUBSET = [("linear_adjoint", "numpy-adjoint"), ("lotka_volterra", "jax-checkpoint")]


@pytest.mark.slow  # one of the longest end-to-end runs: left out by -m 'not slow'
@pytest.mark.skipif(not (REFERENCE / "records.jsonl").is_file(), reason="no committed reference run")
def test_fresh_run_reproduces_the_reference(tmp_path: Path) -> None:
    subset = [(t, i) for t, i in SUBSET if registry.BACKENDS[i].available()]
    reference = [r for r in load_records(REFERENCE) if (r["task"], r["impl"]) in subset]
    assert len(reference) == len(subset)
    fresh = []
    for task, impl in subset:  # one folder per run: --out means a new run
        out = tmp_path / f"{task}-{impl}"
        code = cli.main(
            ["run", "--task", task, "--impl", impl, "--repeats", "2", "--quiet", "--out", str(out)]
        )
        assert code == 0
        fresh += load_records(out)
    verdicts = compare_runs(reference, fresh, times=False)
    assert all(v.reproduced for v in verdicts), [(v.task, v.impl, v.differences) for v in verdicts]
