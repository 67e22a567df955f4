"""`gradient-methods`: the documents' claims about how the gradient is computed, measured.

Every method on the same problems and initial weights, over solver tolerances (on
`--task`, default lotka_volterra and double_pendulum) and over the horizon at fixed
observations and tolerance (`--horizon-task`, default lotka_volterra with 11 observations):
gradient error against the task's reference and, for the optimise-then-discretise methods,
against the exact gradient of their own discrete solution (`grad_rel_error_discrete`, from
the back-end's `discrete_twin`), time, NFE forward / backward, framework memory.

Methods: numpy-adjoint in 000 §2's modes (A) interpolate and (B) backsolve, each with and
without the seminorm; torch-adjoint with and without the seminorm; torch-direct;
jax-checkpoint; jax-backsolve.  The claims (`CLAIMS`) are judged on the whole sweep.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.claims import Claim, format_value
from harness.planning.cell import Cell
from harness.planning.matrix import select
from harness.studies.base import AbstractStudy, floats, plan_cells, register_study

__all__ = ["CLAIMS", "METHODS", "claim_metrics", "judge_claims"]

DEFAULT_TOLS = "1e-4,1e-6,1e-8"
DEFAULT_HORIZONS = "10,20,40,80"
#: the horizon sweep: tolerance and observations held fixed while t1 grows
HORIZON_TOL = 1e-6
HORIZON_OBS = 11
METHODS = (
    "numpy-adjoint[mode=interpolate,backsolve;seminorm=false,true],"
    "torch-adjoint[seminorm=false,true],torch-direct,jax-checkpoint,jax-backsolve"
)
#: gradient methods that differentiate the continuous problem (optimise-then-discretise)
CONTINUOUS = frozenset({"numpy-adjoint", "torch-adjoint", "jax-backsolve"})

Record = Mapping[str, Any]

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "otd-approximate",
        "004, Tricks-of-the-trade for nODEs",
        "optimise-then-discretise only gives approximate gradients",
        '"Not optimize-then-discretise!! This only gives approximate gradients."',
        "otd_discrete_error_min",
        ">",
        1e-9,
        "the smallest error, over the swept tolerances down to 1e-6, of a continuous adjoint's "
        "gradient against the exact gradient of its own discrete solution (its discrete twin, the "
        "same solver taking the same steps); discretise-then-optimise methods agree with that "
        "gradient to rounding (about 1e-13), so an error beyond 1e-9 is the method's approximation",
    ),
    Claim(
        "dto-at-least-as-accurate",
        "004, Tricks-of-the-trade for nODEs",
        "at the same tolerance discretise-then-optimise is the better gradient",
        '"Typically use (recursively checkpointed) discretise-then-optimize"; "The efficacy of the '
        'continuous adjoint method has been [greatly] overstated."',
        "otd_over_dto_error_median",
        ">=",
        1.0,
        "median, over tasks and tolerances, of the continuous adjoint's error against the "
        "reference over its discrete twin's at the same tolerance: at least 1 means the "
        "discretise-then-optimise gradient is at least as accurate",
    ),
    Claim(
        "backsolve-incorrect",
        "000 §2",
        "solving u backwards (B) can give an incorrect backward pass",
        '"solving for u backward in time yields a different solution compared to the forward pass, '
        '... thus resulting in an incorrect backward pass"',
        "backsolve_over_interpolate_error_longest",
        ">",
        10.0,
        "numpy-adjoint's gradient error in mode backsolve over mode interpolate, same tolerance, "
        "at the longest horizon swept: more than 10 times worse is an incorrect backward pass, "
        "not a tolerance effect",
    ),
    Claim(
        "seminorm-fewer-backward-steps",
        "Kidger, Chen and Lyons (ICML 2021), cited in torch-adjoint",
        "the seminorm cuts backward evaluations (median 40%, up to 62%)",
        "40% fewer backward function evaluations at the median, up to 62%",
        "seminorm_backward_reduction_median",
        ">=",
        0.3,
        "median over tasks, tolerances and back-ends (torch-adjoint, numpy-adjoint interpolate) "
        "of 1 - backward NFE with / without the seminorm; within 10 points of the paper's 40%",
    ),
)


def _option(rec: Record, key: str, default: Any) -> Any:
    return (rec.get("resolved_params") or {}).get(key, default)


def _tol(rec: Record) -> float | None:
    value = _option(rec, "rtol", None)
    return float(value) if value is not None else None


def _ok(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if r.get("status") == "ok"]


def _is_horizon(rec: Record) -> bool:
    """A cell of the horizon sweep: its task options set t1 and n_obs (the tolerance
    sweep's cells run the task's defaults)."""
    return {"t1", "n_obs"} <= set(rec.get("params") or {})


def _variant(rec: Record) -> tuple[str, str, bool]:
    return rec["impl"], str(_option(rec, "mode", "")), bool(_option(rec, "seminorm", False))


def _by(records: Iterable[Record], key: Callable[[Record], Any]) -> dict[Any, Record]:
    return {key(r): r for r in records}


def _median(values: Iterable[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return statistics.median(finite) if finite else None


def claim_metrics(records: Sequence[Record]) -> dict[str, float | None]:
    """The measured values the `CLAIMS` test, from the study's `ok` records."""
    ok = _ok(records)
    sweep = [r for r in ok if not _is_horizon(r)]
    twins = _by(sweep, lambda r: (r["task"], r["impl"], _tol(r)))

    otd = [
        r for r in sweep
        if r.get("discrete_twin") and not _option(r, "seminorm", False) and (_tol(r) or 0) >= 1e-6
    ]  # fmt: skip
    discrete = [r.get("grad_rel_error_discrete") for r in otd]
    ratios = []
    for rec in otd:
        twin = twins.get((rec["task"], rec["discrete_twin"], _tol(rec)))
        if twin and twin.get("grad_rel_error"):
            ratios.append(rec["grad_rel_error"] / twin["grad_rel_error"])

    by_variant = _by(sweep, lambda r: (r["task"], *_variant(r), _tol(r)))
    reductions = []
    for (task, impl, mode, semi, tol), rec in by_variant.items():
        plain = by_variant.get((task, impl, mode, False, tol))
        if semi and mode != "backsolve" and plain and plain.get("nfe_backward"):
            reductions.append(1.0 - rec["nfe_backward"] / plain["nfe_backward"])

    horizon = [
        r for r in ok if _is_horizon(r) and r["impl"] == "numpy-adjoint" and not _option(r, "seminorm", False)
    ]
    longest = max((float(_option(r, "t1", 0)) for r in horizon), default=None)
    modes = {
        _option(r, "mode", ""): r.get("grad_rel_error")
        for r in horizon
        if float(_option(r, "t1", 0)) == longest
    }
    b, a = modes.get("backsolve"), modes.get("interpolate")
    return {
        "otd_discrete_error_min": min((d for d in discrete if d is not None), default=None),
        "otd_over_dto_error_median": _median(ratios),
        "backsolve_over_interpolate_error_longest": b / a if a and b is not None else None,
        "seminorm_backward_reduction_median": _median(reductions),
    }


def judge_claims(metrics: Mapping[str, float | None]) -> list[dict[str, Any]]:
    """PASS / FAIL / NO RESULT (not measured in this run) for each of `CLAIMS`."""
    rows = []
    for claim in CLAIMS:
        value = claim.measure(metrics)
        verdict = "NO RESULT" if value is None else "PASS" if claim.holds(value) else "FAIL"
        rows.append(
            {"claim": claim.id, "source": claim.source, "test": claim.test, "measured": value,
             "verdict": verdict, "says": claim.claim, "why": claim.why}
        )  # fmt: skip
    return rows


def method_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """One row per ok record of the tolerance sweep: the figures of each method."""
    rows = []
    for rec in sorted(_ok(records), key=lambda r: (_is_horizon(r), r["task"], *_variant(r), -(_tol(r) or 0))):
        impl, mode, semi = _variant(rec)
        label = impl + (f" {mode}" if mode else "") + (" seminorm" if semi else "")
        rows.append(
            {
                "task": rec["task"] + (f" t1={_option(rec, 't1', '')}" if _is_horizon(rec) else ""),
                "method": label,
                "tol": format_value(_tol(rec)),
                "grad err": _fmt(rec.get("grad_rel_error")),
                "vs own discrete": _fmt(rec.get("grad_rel_error_discrete")),
                "time s": _fmt(rec.get("time_median_s"), ".3g"),
                "NFE f/b": f"{rec.get('nfe_forward')}/{rec.get('nfe_backward')}",
                "framework MB": _fmt((rec.get("peak_framework_bytes") or 0) / 2**20 or None, ".3g"),
            }
        )
    return rows


def _fmt(value: Any, spec: str = ".1e") -> str:
    return "-" if value is None else format(float(value), spec)


@register_study
class GradientMethods(AbstractStudy):
    name = "gradient-methods"
    help = "gradient methods against each other and the documents' claims about them"
    default_task = "lotka_volterra,double_pendulum"
    memory = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tols", default=DEFAULT_TOLS, help=f"rtol = atol values ({DEFAULT_TOLS})")
        parser.add_argument(
            "--horizons", default=DEFAULT_HORIZONS,
            help=f"t1 values of the horizon sweep, {HORIZON_OBS} observations, tol {HORIZON_TOL:g} "
            f"({DEFAULT_HORIZONS}); 'none' to leave it out",
        )  # fmt: skip
        parser.add_argument("--horizon-task", default="lotka_volterra", help="task of the horizon sweep")

    def cells(self, args: argparse.Namespace) -> list[Cell]:
        impl = args.impl if args.impl != "all" else METHODS
        tols = ",".join(repr(t) for t in floats(args.tols, "--tols"))
        cells: list[Cell] = []
        for task_name, _ in select("task", args.task or self.default_task):
            cells += plan_cells(task_name, _with_tols(impl, f"tol={tols}"), args)
        if args.horizons != "none":
            horizons = ",".join(repr(h) for h in floats(args.horizons, "--horizons"))
            task = f"{args.horizon_task}[t1={horizons};n_obs={HORIZON_OBS}]"
            cells += plan_cells(task, _with_tols(impl, f"tol={HORIZON_TOL!r}"), args)
        return cells

    def summarise(self, out: Path) -> None:
        from tabulate import tabulate

        from harness.reporting.figures.work_precision import work_precision_figure
        from harness.reporting.html_report import STUDY_CLAIMS_FILE, write_report
        from harness.store.atomic import atomic_file
        from harness.store.results import load_records

        records = load_records(out)
        print("\ngradient methods (grad err: against the task's reference; vs own discrete: against")
        print("the exact gradient of the method's own discrete solution):")
        print(tabulate(method_rows(records), headers="keys", tablefmt="github"))
        metrics = claim_metrics(records)
        verdicts = judge_claims(metrics)
        print("\nclaims:")
        shown = ("verdict", "claim", "source", "test")
        table = [{k: r[k] for k in shown} | {"measured": _fmt(r["measured"], ".3g")} for r in verdicts]
        print(tabulate(table, headers="keys", tablefmt="github"))
        with atomic_file(out / "gradient_methods.json") as fh:
            fh.write(json.dumps({"metrics": metrics, "claims": verdicts}, indent=2).encode())
        with atomic_file(out / STUDY_CLAIMS_FILE) as fh:
            fh.write(json.dumps(verdicts, indent=2).encode())
        write_report(out, records)  # again: now with the claims' verdicts
        figure = work_precision_figure([r for r in records if not _is_horizon(r)], out / "figures")
        if figure is not None:
            print(f"\nfigure: {figure}")


def _with_tols(impl: str, grid: str) -> str:
    """`impl` with `grid` added to every back-end's brackets (back-ends with rtol / atol)."""
    from harness.core import registry
    from harness.planning.grid import split_selection

    items = []
    for item in split_selection(impl):
        name, _, body = item.partition("[")
        if not {"rtol", "atol"} <= set(registry.get_backend(name.strip()).solver_options):
            items.append(item)
            continue
        body = body.removesuffix("]")
        items.append(f"{name}[{body};{grid}]" if body else f"{name}[{grid}]")
    return ",".join(items)
