"""Gradient accuracy and work of every back-end on every task, tracked over commits.

These numbers are deterministic, so they are computed once per run in `setup_cache` (one
process for the whole grid) with the harness's own code: the task's reference gradient,
`harness.execution.measurement.relative_error` and the back-end's `count_nfe`, as `python -m
harness run` records `grad_rel_error`, `nfe_forward` and `nfe_backward`.
"""

from __future__ import annotations

from typing import Any

from benchmarks import common

with common.safe_import():
    from harness.core.errors import one_line
    from harness.execution.build import build_task
    from harness.execution.measurement import relative_error

Entry = dict[str, Any]


def measure(task: str, impl: str) -> Entry:
    """Gradient relative error and NFE of one cell, or why it is skipped or failed."""
    try:
        common.require(task, impl)
    except NotImplementedError as exc:
        return {"skip": str(exc)}
    try:
        cell = common.make_cell(task, impl)
        task_obj, data, params = build_task(cell)
        _, ref_grad, _ = task_obj.reference_gradient(params, data)
        backend, params = common.build(task, impl)
        _, grad = backend.value_and_grad(params)
        nfe_forward, nfe_backward = backend.count_nfe(params)
    except Exception as exc:  # one failing cell must not hide the others
        return {"error": one_line(exc)}
    return {
        "grad_rel_error": relative_error(grad, ref_grad),
        "nfe_forward": float(nfe_forward),
        "nfe_backward": float(nfe_backward),
    }


class GradientWork:
    """Relative gradient error against the task's reference, and right-hand-side
    evaluations of one value-and-grad call (forward solve; backward pass)."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 120.0

    def setup_cache(self) -> dict[str, Entry]:
        return {common.key(t, i): measure(t, i) for t in common.TASKS for i in common.IMPLS}

    setup_cache.timeout = 900.0  # type: ignore[attr-defined]

    def setup(self, cache: dict[str, Entry], task: str, impl: str) -> None:
        entry = cache[common.key(task, impl)]
        if "skip" in entry:
            raise NotImplementedError(entry["skip"])
        if "error" in entry:
            raise RuntimeError(f"{task} / {impl}: {entry['error']}")
        self.entry = entry

    def track_grad_rel_error(self, cache: dict[str, Entry], task: str, impl: str) -> float:
        """||g - g_ref|| / ||g_ref|| at the initial weights (`grad_rel_error`)."""
        return self.entry["grad_rel_error"]

    track_grad_rel_error.unit = "relative error"  # type: ignore[attr-defined]

    def track_nfe_forward(self, cache: dict[str, Entry], task: str, impl: str) -> float:
        """Right-hand-side evaluations of the forward solve (`nfe_forward`)."""
        return self.entry["nfe_forward"]

    track_nfe_forward.unit = "evaluations"  # type: ignore[attr-defined]

    def track_nfe_backward(self, cache: dict[str, Entry], task: str, impl: str) -> float:
        """Evaluations and vector-Jacobian products of the backward pass (`nfe_backward`)."""
        return self.entry["nfe_backward"]

    track_nfe_backward.unit = "evaluations"  # type: ignore[attr-defined]
