"""How `harness.testing` checks a task: one object (#27), not four class variables.

A task sets `checks = CheckSettings(...)` with what differs from the defaults; a subclass
that changes one field of its parent's writes `dataclasses.replace(Parent.checks, ...)`.
`tolerances` holds only the entries a task changes: they are merged over the class
hierarchy (`harness.testing.tolerances`), over `DEFAULT_TOLERANCES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_TOLERANCES", "LEGACY_NAMES", "CheckSettings"]

#: the tolerances of `check_task` and `check_backend` as {check: (tolerance, reason)}
DEFAULT_TOLERANCES: dict[str, tuple[float, str]] = {
    "vjp": (
        1e-6,
        "fourth-order central differences at h = 1e-3 along unit directions: truncation"
        " ~1e-12, rounding ~1e-13 relative; a wrong term is off by O(1)",
    ),
    "loss_cotangent": (1e-6, "as for vjp: the same differences of the loss in pred"),
    "reference_loss": (
        1e-9,
        "the reference's solve and the check's DOP853 at rtol = atol = 1e-12 each leave"
        " ~1e-11 relative in the loss",
    ),
    "reference_gradient": (
        1e-6,
        "central differences of the loss through DOP853 at 1e-12 along unit directions"
        " (h = 1e-4): solver noise ~1e-12 / h and truncation ~h^2, both ~1e-8 relative to"
        " |gradient|",
    ),
    "gradient": (
        1e-5,
        "relative 2-norm error of a back-end's gradient at rtol = atol = 1e-7 against the"
        " reference at 1e-12: solver tolerance is no guarantee of gradient accuracy (SPEC"
        " measurement notes), so the bound is a product requirement the checks enforce",
    ),
    "loss": (1e-6, "a back-end's loss at rtol = atol = 1e-7 against the reference's, relative"),
}

#: the class variables `CheckSettings` replaced, and the field each became
LEGACY_NAMES = {
    "check_options": "options",
    "check_solver": "solver",
    "check_fd_step": "fd_step",
    "check_tolerances": "tolerances",
}


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """The settings of a task's checks.

    **Arguments:**

    - `options`: small task options, so that the checks take seconds.
    - `solver`: solver settings of `check_backend` where they differ from the
      task's `solver_defaults` (a default tolerance too loose to test a gradient).
    - `fd_step`: the step of the fourth-order central differences of the VJP checks: 1e-3
      for smooth models; a ReLU network with thousands of units crosses kinks at that
      step, so it takes a smaller one.
    - `tolerances`: {check: (tolerance, reason)}, the entries this task changes.
    """

    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    solver: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fd_step: float = 1e-3
    tolerances: Mapping[str, tuple[float, str]] = dataclasses.field(default_factory=dict)
