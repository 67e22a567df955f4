"""The solver libraries' own published claims as data, and their verdicts.

Each `SolverClaim` wraps a `harness.core.claims.Claim` (source, what it says, what the
source shows, the metric, the comparison and threshold with its reason: the test, set
before the study was first run) with the part of the study that measures it and whether it
needs a GPU.  `claim_metrics` turns the study's measurements into the tested values;
`judge_claims` gives PASS, FAIL or NO RESULT (not measured in this run, or a GPU claim on a
machine without one), with a note."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from harness.core.claims import Claim
from harness.studies.solver_claims.adjoint_nfe import NORMS

__all__ = ["CLAIMS", "PARTS", "SolverClaim", "claim_metrics", "judge_claims"]

#: the study's parts, each measuring some claims: name -> what it measures
PARTS = {
    "batch": "steps of joint against per-sample step control over batch sizes (Van der Pol)",
    "controller": "steps of torchode's PID against its integral controller over mu (Van der Pol)",
    "seminorm": "forward and backward evaluations of torchdiffeq's adjoint, with and without the seminorm",
    "speed": "wall time of torchdiffeq over diffrax on diffrax's small neural ODE benchmark",
}

TORCHODE = "Lienen and Guennemann (2022), torchode: A Parallel ODE Solver for PyTorch, arXiv:2210.12375"
#: the mu that divides stiff from non-stiff in the PID claim
STIFF_MU = 25.0


@dataclasses.dataclass(frozen=True)
class SolverClaim:
    """A published solver claim: the `Claim`, the study part that measures it (a key of
    `PARTS`) and whether it needs a GPU (judged only where one is present)."""

    claim: Claim
    part: str
    needs_gpu: bool = False

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"claim {self.claim.id}: part must be one of {sorted(PARTS)}, not {self.part!r}")


CLAIMS: tuple[SolverClaim, ...] = (
    SolverClaim(
        Claim(
            "joint-control-up-to-4x-steps",
            f"{TORCHODE}, abstract and its Van der Pol batch experiment (as issue #29 states it)",
            "solving a batch as one system takes up to 4x the steps of per-sample step control",
            '"robust against within-batch interactions that lead other solvers to take up to 4 times as '
            'many steps" (Van der Pol, mu = 25, rtol = atol = 1e-5, dopri5, one cycle, batch 1 to 1024)',
            "joint_over_per_sample_steps_max",
            ">=",
            3.0,
            "the largest ratio, over the batch sizes, of torchdiffeq's steps on the stacked batch to "
            "torchode's per-sample steps (its loop's iterations: the slowest sample's steps) reaches at "
            "least 3, the paper's 4 less a quarter; a larger ratio is the same effect, stronger",
        ),
        "batch",
    ),
    SolverClaim(
        Claim(
            "pid-saves-steps-when-stiff",
            f"{TORCHODE}, its PID experiment; torchode's documentation, Step Size Controllers; "
            "the figures as issue #29 states them",
            "a PID controller saves a few % of the steps over an integral controller when stiff (mu > 25)",
            '"If you work with stiff dynamics, the more general PIDController might be useful and save a '
            'few solver steps as we have explored in our paper" (docs); 3-5 % at mu > 25 (issue #29)',
            "pid_saving_stiff_median",
            ">=",
            0.02,
            "median over the swept mu > 25 of 1 - PID steps / integral steps (torchode, dopri5, "
            "rtol = atol = 1e-5, mean over the initial conditions): at least 2 %, the lower 3 % less a point",
        ),
        "controller",
    ),
    SolverClaim(
        Claim(
            "pid-no-saving-when-not-stiff",
            f"{TORCHODE}, its PID experiment, as issue #29 states it",
            "the PID controller saves nothing below mu = 25",
            "the saving appears only in stiff settings, about none below mu = 25 (issue #29)",
            "pid_saving_nonstiff_max",
            "<=",
            0.01,
            "the largest saving 1 - PID steps / integral steps over the swept mu < 25 is at most 1 % "
            "(a PID that costs steps there saves nothing too)",
        ),
        "controller",
    ),
    SolverClaim(
        Claim(
            "seminorm-40pct-fewer-backward",
            "Kidger, Chen and Lyons (ICML 2021), 'Hey, that's not an ODE': faster ODE adjoints via seminorms",
            "the seminorm cuts backward evaluations by a median of about 40 %",
            "a median of 40 % fewer backward function evaluations, up to 62 %",
            "seminorm_backward_reduction_median",
            ">=",
            0.3,
            "median, over networks (widths, seeds) whose parameters outnumber their state, with one "
            "output time, of 1 - backward NFE with / without the seminorm (torchdiffeq odeint_adjoint, "
            "dopri5) against torchdiffeq's default backward norm: within 10 points of the paper's 40 %",
        ),
        "seminorm",
    ),
    SolverClaim(
        Claim(
            "backward-half-of-forward",
            "Chen et al. (NeurIPS 2018), Neural Ordinary Differential Equations, as quoted in "
            "https://github.com/rtqichen/torchdiffeq/issues/97",
            "the backward pass takes about half the evaluations of the forward pass",
            '"the number of evaluations in the backward pass is roughly half of the forward pass" (the '
            "issue: not so with torchdiffeq; the paper used scipy's odeint)",
            "backward_over_forward_nfe_median",
            "<=",
            0.6,
            "median over the networks of backward NFE / forward NFE with torchdiffeq's adjoint dopri5 and "
            "its default norm: at most 0.6, half plus 10 points",
        ),
        "seminorm",
    ),
    SolverClaim(
        Claim(
            "torchdiffeq-1.3x-slower-at-least",
            "diffrax docs/further_details/benchmarks.md and benchmarks/small_neural_ode.py "
            "(github.com/patrick-kidger/diffrax)",
            "torchdiffeq is about 1.3 to 20 times slower than diffrax (lower end)",
            '"torchdiffeq is ~1.3 to ~20 times slower depending on the problem"',
            "torchdiffeq_over_diffrax_min",
            ">=",
            1.17,
            "the smallest, over the benchmark's four runs (t1 or 100 save points, value or gradient), "
            "of the median wall-time ratio torchdiffeq / diffrax: at least 1.3 less 10 % for the '~'",
        ),
        "speed",
    ),
    SolverClaim(
        Claim(
            "torchdiffeq-20x-slower-at-most",
            "diffrax docs/further_details/benchmarks.md and benchmarks/small_neural_ode.py "
            "(github.com/patrick-kidger/diffrax)",
            "torchdiffeq is about 1.3 to 20 times slower than diffrax (upper end)",
            '"torchdiffeq is ~1.3 to ~20 times slower depending on the problem"',
            "torchdiffeq_over_diffrax_max",
            "<=",
            22.0,
            "the largest, over the benchmark's four runs, of the median wall-time ratio torchdiffeq / "
            "diffrax: at most 20 plus 10 % for the '~'",
        ),
        "speed",
    ),
)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _reductions(new: Mapping[Any, Any], old: Mapping[Any, Any]) -> list[float]:
    """1 - backward NFE of `new` / of `old`, per network both ran."""
    return [1.0 - new[k]["nfe_backward"] / old[k]["nfe_backward"] for k in new if k in old]


def claim_metrics(measurements: Mapping[str, Any]) -> dict[str, float | None]:
    """The tested values from the study's measurements (`measurements[part]`: that part's
    rows); None where a part was not measured."""
    batch = measurements.get("batch") or []
    ratios = [r["torchdiffeq_joint_steps"] / r["torchode_per_sample_steps_max"] for r in batch]
    control = measurements.get("controller") or []
    stiff = [r["pid_saving"] for r in control if r["mu"] > STIFF_MU]
    calm = [r["pid_saving"] for r in control if r["mu"] < STIFF_MU]
    nets = measurements.get("seminorm") or []
    by_norm = {norm: {(r["width"], r["seed"]): r for r in nets if r["norm"] == norm} for norm in NORMS}
    plain = by_norm["default"]
    speed = [r["ratio_median"] for r in measurements.get("speed") or []]
    return {
        "joint_over_per_sample_steps_max": max(ratios, default=None),
        "pid_saving_stiff_median": _median(stiff),
        "pid_saving_nonstiff_max": max(calm, default=None),
        "seminorm_backward_reduction_median": _median(_reductions(by_norm["seminorm"], plain)),
        # shown, not judged: against one RMS norm over the whole augmented state
        "seminorm_vs_full_rms_reduction_median": _median(_reductions(by_norm["seminorm"], by_norm["rms"])),
        "backward_over_forward_nfe_median": _median(
            [r["nfe_backward"] / r["nfe_forward"] for r in plain.values()]
        ),
        "torchdiffeq_over_diffrax_min": min(speed, default=None),
        "torchdiffeq_over_diffrax_max": max(speed, default=None),
    }


def judge_claims(metrics: Mapping[str, float | None], *, gpu: bool) -> list[dict[str, Any]]:
    """PASS / FAIL / NO RESULT for each of `CLAIMS`, with the claim's data; a claim that
    needs a GPU is NO RESULT where `gpu` is false, whatever was measured."""
    rows = []
    for item in CLAIMS:
        claim = item.claim
        value = claim.measure(metrics)
        if item.needs_gpu and not gpu:
            verdict, value, note = "NO RESULT", None, "needs a GPU: judged only where one is present"
        elif value is None:
            verdict, note = "NO RESULT", f"not measured: part '{item.part}' was not run"
        else:
            verdict, note = ("PASS" if claim.holds(value) else "FAIL"), ""
        rows.append(
            {"claim": claim.id, "verdict": verdict, "measured": value, "test": claim.test,
             "source": claim.source, "says": claim.claim, "document": claim.document, "why": claim.why,
             "part": item.part, "needs_gpu": item.needs_gpu, "note": note}
        )  # fmt: skip
    return rows
