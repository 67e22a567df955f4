"""Does the harness add overhead?  Steady-state value-and-grad time on `lotka_volterra`,
measured by the harness and by each back-end's stand-alone script, alternating, in fresh
processes with one thread each.

    python benchmarks/standalone/compare_overhead.py [--rounds 3] [--impl NAME ...]

Prints one row per back-end: the medians over rounds of both, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCRIPTS = {
    "numpy-adjoint": ("numpy_adjoint_lv.py", 30),
    "torch-adjoint": ("torch_adjoint_lv.py", 15),
    "rk4-unrolled": ("rk4_unrolled_lv.py", 50),
    "jax-checkpoint": ("jax_checkpoint_lv.py", 500),
}
MEDIAN = re.compile(r"median ([0-9.]+) ms")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def standalone_ms(script: str, repeats: int) -> float:
    out = subprocess.run(
        [sys.executable, str(HERE / script), "--repeats", str(repeats)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = MEDIAN.search(out)
    if match is None:
        raise RuntimeError(f"{script} printed no median: {out!r}")
    return float(match.group(1))


def harness_ms(impl: str, repeats: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--task",
            "lotka_volterra",
            "--impl",
            impl,
            "--iters",
            "0",
            "--repeats",
            str(repeats),
            "--no-memory",
            "--quiet",
            "--out",
            tmp,
        ]
        subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, check=True)
        record = json.loads((Path(tmp) / "records.jsonl").read_text().splitlines()[0])
    if record["status"] != "ok":
        raise RuntimeError(f"{impl}: {record['reason']}")
    return record["time_median_s"] * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--impl", nargs="*", default=list(SCRIPTS), choices=list(SCRIPTS))
    args = parser.parse_args()
    print(f"{'back-end':16} {'stand-alone ms':>15} {'harness ms':>11} {'ratio':>6}")
    for impl in args.impl:
        script, repeats = SCRIPTS[impl]
        alone, harness = [], []
        for _ in range(args.rounds):
            alone.append(standalone_ms(script, repeats))
            harness.append(harness_ms(impl, repeats))
        a, h = statistics.median(alone), statistics.median(harness)
        print(f"{impl:16} {a:15.3f} {h:11.3f} {h / a:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
