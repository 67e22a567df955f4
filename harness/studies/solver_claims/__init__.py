"""`solver-claims`: the solver libraries' own published claims, each stated as data with
its source and a test set before the study was first run (`claims.CLAIMS`), measured here
and judged PASS / FAIL / NO RESULT.

Parts (`--parts`), each measuring some claims:

- `batch`: Van der Pol at mu = 25, rtol = atol = 1e-5, dopri5, one cycle: steps of the
  batch solved as one system (torchdiffeq; torchode on the flattened batch) against
  torchode's per-sample step control, over batch sizes (`vdp.joint_vs_per_sample`);
- `controller`: torchode's PID against its integral controller over mu
  (`vdp.controller_steps`);
- `seminorm`: torchdiffeq's adjoint with and without the seminorm on neural ODEs whose
  parameters dwarf their state, one output time; backward over forward evaluations
  (`adjoint_nfe.adjoint_evaluations`);
- `speed`: torchdiffeq over diffrax on diffrax's small neural ODE benchmark, interleaved,
  diffrax compiled first (`speed.speed_ratios`).

Writes `solver_claims.json` (provenance, settings, every measurement, the metrics and the
verdicts) and `figures/solver_claims_steps.png` into the results folder, and prints the
verdict table.  Steps and evaluations are hardware-independent; the speed ratio is this
machine's (its threads and CPU are in the provenance)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError, choices
from harness.core.ranges import integer
from harness.planning.cell import Cell
from harness.studies.base import AbstractStudy, floats, register_study
from harness.studies.solver_claims.claims import CLAIMS, PARTS, claim_metrics, judge_claims

__all__ = ["CLAIMS", "RESULTS_FILE", "SolverClaims"]

RESULTS_FILE = "solver_claims.json"
DEFAULT_BATCHES = "1,4,16,64,256,1024"
DEFAULT_MUS = "5,10,25,50,100"
DEFAULT_WIDTHS = "64,256"
DEFAULT_REPEATS = 25
#: the torchode paper's Van der Pol setting
BATCH_MU, VDP_TOL = 25.0, 1e-5
#: the seminorm networks: one output time t1, rtol = atol
NFE_T1, NFE_TOL = 10.0, 1e-6
#: session options whose other values do not apply here: option -> (attribute, default)
_FIXED = {"--impl": ("impl", "all"), "--device": ("device", "cpu"), "--dtype": ("dtype", "float64"),
          "--engine": ("engine", "serial")}  # fmt: skip


@register_study
class SolverClaims(AbstractStudy):
    name = "solver-claims"
    help = "the solver libraries' published claims (torchode, the seminorm, torchdiffeq, diffrax) judged"
    default_task = "own"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--parts", default=",".join(PARTS), help=f"parts to measure ({','.join(PARTS)})")
        parser.add_argument(
            "--batches", default=DEFAULT_BATCHES, help=f"batch sizes of `batch` ({DEFAULT_BATCHES})"
        )
        parser.add_argument(
            "--mus", default=DEFAULT_MUS, help=f"Van der Pol mu of `controller` ({DEFAULT_MUS})"
        )
        parser.add_argument(
            "--controller-batch", default="16", help="initial conditions per mu in `controller` (16)"
        )
        parser.add_argument(
            "--widths", default=DEFAULT_WIDTHS, help=f"MLP widths of `seminorm` ({DEFAULT_WIDTHS})"
        )
        parser.add_argument("--net-seeds", default="5", help="networks per width in `seminorm` (5)")
        for action in parser._actions:  # the speed part's timed calls: more than the session's 7
            if action.dest == "repeats":
                action.default = DEFAULT_REPEATS
                action.help = (
                    f"timed calls of each library in `speed`, interleaved (default: {DEFAULT_REPEATS})"
                )

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        """None: the study measures the libraries directly, not through back-end cells."""
        return []

    def run(self, args: argparse.Namespace, out: Path) -> int:
        settings = self.settings(args)
        from harness.store.paths import check_output_folder, writer_lock

        check_output_folder(out, "the study's results")
        with writer_lock(out, "the study's results"):
            if (out / RESULTS_FILE).exists() and not args.force:
                raise UsageError(f"'{out}' already holds {RESULTS_FILE}: give another --out or --force")
            measurements, seconds = measure(settings, quiet=args.quiet)
            self.write(out, settings, measurements, seconds)
        return 0

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        """The options checked (a bad one: one line, exit 2) and resolved."""
        for flag, (attr, default) in _FIXED.items():
            if getattr(args, attr) != default:
                given = getattr(args, attr)
                raise UsageError(
                    f"study {self.name} does not take {flag} {given}: it runs fixed libraries on the CPU"
                )
        if args.task != self.default_task:
            raise UsageError(
                f"study {self.name} runs its own problems; --task does not apply (got {args.task})"
            )
        parts = [p.strip() for p in args.parts.split(",") if p.strip()]
        unknown = [p for p in parts if p not in PARTS]
        if unknown or not parts:
            raise UsageError(
                f"bad --parts={args.parts}: expected one or more of {choices(PARTS)}, comma-separated"
            )
        if args.repeats < 1:
            raise UsageError(f"bad --repeats={args.repeats}: must be an integer >= 1")
        seeds = int(integer(1).parse("--net-seeds", args.net_seeds))
        return {
            "parts": parts,
            "batches": [int(b) for b in floats(args.batches, "--batches")],
            "batch_mu": BATCH_MU, "vdp_tol": VDP_TOL,
            "mus": floats(args.mus, "--mus"),
            "controller_batch": int(integer(1).parse("--controller-batch", args.controller_batch)),
            "widths": [int(w) for w in floats(args.widths, "--widths")],
            "net_seeds": list(range(args.seed, args.seed + seeds)),
            "nfe_t1": NFE_T1, "nfe_tol": NFE_TOL,
            "seed": args.seed, "repeats": args.repeats, "threads": args.threads,
        }  # fmt: skip

    def write(
        self, out: Path, settings: dict[str, Any], measurements: dict[str, Any], seconds: dict[str, float]
    ) -> None:
        """The verdicts and everything they rest on, atomically; the table; the figure."""
        from tabulate import tabulate

        from harness.execution.environment import provenance
        from harness.reporting.figures.solver_claims import solver_claims_figure
        from harness.store.atomic import write_text_atomic

        gpu = _gpu_present()
        metrics = claim_metrics(measurements)
        verdicts = judge_claims(metrics, gpu=gpu)
        record = {
            "study": self.name, "provenance": {**provenance(), "gpu_present": gpu}, "settings": settings,
            "seconds": seconds, "measurements": measurements, "metrics": metrics, "claims": verdicts,
        }  # fmt: skip
        write_text_atomic(out / RESULTS_FILE, json.dumps(record, indent=2) + "\n")
        _print_measurements(measurements)
        shown = [
            {"verdict": v["verdict"], "claim": v["claim"], "test": v["test"],
             "measured": "-" if v["measured"] is None else f"{v['measured']:.3g}", "note": v["note"]}
            for v in verdicts
        ]  # fmt: skip
        print("\nsolver claims:")
        print(tabulate(shown, headers="keys", tablefmt="github"))
        title = f"Van der Pol mu={BATCH_MU:g}, dopri5, rtol=atol={VDP_TOL:g}, one cycle"
        figure = solver_claims_figure(
            measurements.get("batch") or [],
            measurements.get("controller") or [],
            out / "figures",
            title=title,
        )
        print(f"\nresults: {out / RESULTS_FILE}" + (f"\nfigure: {figure}" if figure else ""))


def measure(settings: dict[str, Any], *, quiet: bool = False) -> tuple[dict[str, Any], dict[str, float]]:
    """Run the parts of `settings`: their rows by part, and each part's wall time."""
    from harness.execution.environment import framework_threads

    framework_threads("torch")
    measurements: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for part in settings["parts"]:
        if not quiet:
            print(f"solver-claims: {part}: {PARTS[part]} ...", flush=True)
        start = time.perf_counter()
        measurements[part] = _measure_part(part, settings)
        seconds[part] = time.perf_counter() - start
    return measurements, seconds


def _measure_part(part: str, s: dict[str, Any]) -> list[dict[str, Any]]:
    if part == "batch":
        from harness.studies.solver_claims.vdp import joint_vs_per_sample

        return joint_vs_per_sample(s["batches"], s["batch_mu"], s["vdp_tol"], s["seed"])
    if part == "controller":
        from harness.studies.solver_claims.vdp import controller_steps

        return controller_steps(s["mus"], s["controller_batch"], s["vdp_tol"], s["seed"])
    if part == "seminorm":
        from harness.studies.solver_claims.adjoint_nfe import adjoint_evaluations

        return adjoint_evaluations(s["widths"], s["net_seeds"], t1=s["nfe_t1"], tol=s["nfe_tol"])
    from harness.studies.solver_claims.speed import speed_ratios

    return speed_ratios(s["repeats"])


def _gpu_present() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _print_measurements(measurements: dict[str, Any]) -> None:
    from tabulate import tabulate

    titles = {
        "batch": "steps against batch size (Van der Pol mu=25):",
        "controller": "torchode's mean steps per sample, integral and PID controllers:",
        "seminorm": "torchdiffeq odeint_adjoint evaluations (one output time):",
        "speed": "torchdiffeq / diffrax wall time (s), diffrax compiled first:",
    }
    for part, rows in measurements.items():
        print(f"\n{titles[part]}")
        print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4g"))
