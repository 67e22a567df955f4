"""Studies: predefined sweeps over the same cells as `run`, one module each, registered
in `harness.studies.base.STUDIES` (the CLI's `study` choices and help come from there).

- `work-precision`: gradient error against time over solver tolerances (RK4: steps per
  observation interval), no training.
- `memory-scaling`: peak memory against the integration horizon at fixed observation
  spacing, each cell in its own process; fits memory ~ horizon^k per back-end.
- `determinism`: the same cells twice in fresh processes; how exactly do the loss
  histories repeat?
- `gradient-methods`: every gradient method over tolerances and horizons, errors against
  the reference and against each method's own discrete solution, and the documents'
  claims about gradient methods judged (000 §2, 004, the seminorm paper).
- `batch-scaling`: many initial conditions at once (`batch` = 1 ... 4096 on
  `linear_adjoint`): time per trajectory against batch size, on `--device cpu` or `cuda`.
- `solver-claims`: the solver libraries' own published claims (torchode's batch and PID
  step counts, the seminorm, torchdiffeq's backward evaluations, diffrax's speed against
  torchdiffeq), each as data with its source and test, judged.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.core.devices import check_device
from harness.studies import (
    batch_scaling,
    determinism,
    gradient_methods,
    memory_scaling,
    solver_claims,
    work_precision,
)
from harness.studies.base import STUDIES, AbstractStudy
from harness.studies.session import add_session_options

__all__ = ["STUDIES", "AbstractStudy", "add_study_parser", "run_study"]
_MODULES = (
    batch_scaling,
    determinism,
    gradient_methods,
    memory_scaling,
    solver_claims,
    work_precision,
)  # registered on import


def add_study_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """`study NAME [options]`, one sub-command per registered study."""
    study = sub.add_parser("study", help="predefined sweeps: " + ", ".join(sorted(STUDIES)))
    names = study.add_subparsers(dest="study", required=True, metavar="NAME", parser_class=parser_class)
    for name, impl in sorted(STUDIES.items()):
        parser = names.add_parser(name, help=impl.help, description=impl.help)
        parser.add_argument("--task", default=None, help=f"tasks (default: {impl.default_task})")
        add_session_options(parser)
        parser.add_argument(
            "--force", action="store_true", help="start over in an --out folder that holds records"
        )
        impl.add_arguments(parser)


def run_study(args: argparse.Namespace) -> int:
    """Run the study `args.study` with its options."""
    from harness.planning.config import check_session
    from harness.store.results import new_run_id

    study = STUDIES[args.study]
    check_session(args)  # --seed, --repeats, --timeout, --threads (and --iters) in range
    check_device(args.device)
    if args.print_job_script:
        from harness.studies.session import print_job_script

        return print_job_script(args)
    args.task = args.task or study.default_task
    out = args.out or Path("results") / new_run_id(study.name)
    return study.run(args, out)
