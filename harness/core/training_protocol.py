"""A task's training role (#25, #27): its protocol as data (`TrainingProtocol`: the
training defaults, the phases it trains by, in order, each with the `train` option that is
its budget (counted in gradient evaluations), its stop rule and why (the document or a
measurement), and what convergence means for it), and the behaviour that goes with it
(`harness.core.protocols.Training`: `fit` and `phases`, next to the back-end interface
that `fit` trains on), one of the roles `harness.core.protocols.AbstractTask` composes.

The harness runs the phases (`harness.numerics.training.train_cell`), the same on every
back-end.  Two kinds are the driver's own (`harness.numerics.driver`):

- `adam`: Adam on the task's loss, with continuum learning when `curriculum` > 0;
- `lbfgs`: the guarded L-BFGS polish through `scipy.optimize`, always the last phase.

Any other kind is the task's own first phase, run by its `fit` (mini-batch SGD with its
decay, collocation, the hybrid task's frozen-parameter phases): the kind names it in the
record and the report, and `fit` says how it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DRIVER_KINDS",
    "LEGACY_TRAINING_NAMES",
    "TRAIN_BASE",
    "Phase",
    "TrainingProtocol",
    "check_protocol",
    "default_phases",
]

#: the phase kinds the driver runs itself; any other is a task's own `fit`
DRIVER_KINDS = ("adam", "lbfgs")

#: training settings every task has (`TrainingProtocol.settings`): Adam's iterations
#: (one gradient evaluation each) and learning rate; `target`, the loss at which the Adam
#: phase stops (0: none; time and evaluations to it are the benchmark); `polish`, the
#: gradient evaluations of the L-BFGS polish after it (0: none); `gtol`, the convergence
#: criterion (gradient norm at most `gtol` times its initial norm; also the polish's stop
#: rule); `budget`, the wall-clock safety net in seconds (0: none); `curriculum`, continuum
#: learning's step in observations (0: off).  See `harness.numerics.driver`.
TRAIN_BASE: dict[str, Any] = {
    "iters": 100,
    "lr": 1e-2,
    "target": 0.0,
    "polish": 0,
    "gtol": 1e-6,
    "budget": 1500.0,
    "curriculum": 0,
}

#: the task class variables `TrainingProtocol` replaced, and the field each became
LEGACY_TRAINING_NAMES = {
    "train_defaults": "defaults",
    "converged_at_target": "converged_at_target",
    "needs_batches": "needs_batches",
    "fit_metrics": "fit_metrics",
}


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a training protocol.

    **Arguments:**

    - `kind`: `adam`, `lbfgs`, or the name of the task's own phase (run by its `fit`).
    - `budget`: the `train` option that counts its gradient evaluations (`iters`,
      `polish`); 0 skips the phase.
    - `stop`: its stop rule besides the budget, in words.
    - `why`: the source or measurement that chose it.
    - `unit`: what its budget counts: gradient evaluations, or e.g. `epochs` for a phase
      that passes over a training set in mini-batches (#27: `iters` counts epochs there).
    """

    kind: str
    budget: str
    stop: str
    why: str
    unit: str = "gradient evaluations"

    def __post_init__(self) -> None:
        if not self.kind.strip() or not self.budget.strip():
            raise ValueError("a phase needs its kind and the train option that is its budget")
        if not self.why.strip():
            raise ValueError(f"phase {self.kind}: say why it is in the protocol (`why`)")

    def as_dict(self, train: Mapping[str, Any], evals: int) -> dict[str, Any]:
        """The record's entry for this phase (`train_phases`): what was declared, the budget
        it ran with and the evaluations it took."""
        return {
            "phase": self.kind,
            "budget_option": self.budget,
            "budget": int(train.get(self.budget, 0)),
            "budget_unit": self.unit,
            "evals": int(evals),
            "stop": self.stop,
            "why": self.why,
        }


def default_phases(first: Phase | None = None) -> tuple[Phase, ...]:
    """Adam (or a task's own `first` phase) for `iters` evaluations, then the L-BFGS polish
    for `polish` (the field's standard pair for small full-batch problems)."""
    adam = Phase(
        "adam",
        "iters",
        "the task's target loss (time and evaluations to it are the benchmark)",
        "000 §2 trains by Adam; a loose target leaves the model short of convergence (#25)",
    )
    polish = Phase(
        "lbfgs",
        "polish",
        "gradient norm <= gtol x its initial norm, or L-BFGS-B stalls",
        "from Adam's stop at 2e-5, L-BFGS-B reached 1e-8 in 166 evaluations on double_pendulum,"
        " about 30x fewer than Adam alone (measured, #25)",
    )
    return (first or adam, polish)


def check_protocol(task_name: str, phases: Sequence[Phase], own_fit: bool) -> None:
    """Raise ValueError unless `phases` is a protocol `train_cell` can run: a first phase
    that fits (`adam`, or a task's own kind, which needs the task's `fit`), then at most an
    `lbfgs` polish."""
    if not phases or phases[0].kind == "lbfgs":
        raise ValueError(f"task {task_name}: a training protocol starts with a fitting phase")
    first, rest = phases[0], list(phases[1:])
    if first.kind not in DRIVER_KINDS and not own_fit:
        raise ValueError(f"task {task_name}: phase {first.kind!r} is the task's own and needs its `fit`")
    if [p.kind for p in rest] not in ([], ["lbfgs"]):
        raise ValueError(f"task {task_name}: after the first phase only an 'lbfgs' polish can follow")


@dataclasses.dataclass(frozen=True)
class TrainingProtocol:
    """How a task trains, as data; the same on every back-end.

    **Arguments:**

    - `defaults`: the task's training defaults, keys of `TRAIN_BASE` (the rest taken from
      there; `settings`), overridable with ``--set key=value``.
    - `phases`: the phases it trains by (`default_phases`: Adam, then the L-BFGS polish).
    - `converged_at_target`: why a model whose loss reached the target counts as converged
      (e.g. the noise floor: the discrepancy principle), or "" (the target is a milestone
      only); see `harness.numerics.driver.convergence`.
    - `needs_batches`: whether it trains on mini-batches
      (`AbstractBackend.value_and_grad_batch`): a back-end without them is skipped.
    - `fit_metrics`: metrics that its `fit` adds through `TrainResult.info` (claims may test
      them; an untrained model's metrics lack them).

    A subclass that changes one field of its parent's writes
    `dataclasses.replace(Parent.protocol, ...)`.
    """

    defaults: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"iters": 100, "lr": 1e-2})
    phases: tuple[Phase, ...] = dataclasses.field(default_factory=lambda: default_phases())
    converged_at_target: str = ""
    needs_batches: bool = False
    fit_metrics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.defaults) - set(TRAIN_BASE))
        if unknown:
            raise ValueError(f"training defaults: unknown keys {unknown}; valid: {sorted(TRAIN_BASE)}")
        if not self.phases or not all(isinstance(p, Phase) for p in self.phases):
            raise ValueError("a training protocol needs its phases (`Phase`s, e.g. default_phases())")

    def settings(self) -> dict[str, Any]:
        """`TRAIN_BASE` updated with `defaults`: every training setting of a cell."""
        return {**TRAIN_BASE, **self.defaults}
