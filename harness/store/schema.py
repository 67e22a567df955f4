"""The record schema: every field a record may carry and its JSON kind, in the order the
fields are documented (docs/records.md).  The one list that the store's `RECORD_FIELDS`,
the validator (`harness.store.validate.record_problem`) and the tests of the writer (every
key a cell's record holds is here) and of the documentation (every field here is
documented) share.  Fields may be added, never renamed (SPEC "Record fields").
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["FIELDS", "Kind", "kind_problem"]

#: JSON kinds: a string, a number (int or float, not bool), a bool, an object, a list of
#: numbers (None allowed in it), a list of strings, a list of objects
Kind = Literal["str", "number", "bool", "object", "numbers", "strings", "objects"]

FIELDS: dict[str, Kind] = {
    # identity and provenance
    "run_id": "str",
    "cell_id": "str",
    "task": "str",
    "impl": "str",
    "params": "object",
    "resolved_params": "object",
    "device": "str",
    "dtype": "str",
    "seed": "number",
    "status": "str",
    "reason": "str",
    "env": "object",
    "cell": "object",
    "sources": "object",
    "execution": "object",
    "cell_time_s": "number",
    # the gradient at the initial weights
    "loss_init": "number",
    "grad_rel_error": "number",
    "grad_rel_error_discrete": "number",
    "discrete_twin": "str",
    "grad_reference": "str",
    "time_first_s": "number",
    "time_median_s": "number",
    "time_iqr_s": "number",
    "repeats": "number",
    "timing": "str",
    "timing_concurrent": "object",
    "timing_reason": "str",
    "nfe_forward": "number",
    "nfe_backward": "number",
    "solver_steps": "number",
    "solver_checkpoints": "number",
    # memory
    "peak_rss_bytes": "number",
    "peak_rss_first_call_bytes": "number",
    "rss_method": "str",
    "peak_framework_bytes": "number",
    "peak_framework_method": "str",
    "peak_device_bytes": "number",
    # training
    "train_iters": "number",
    "train_loss_final": "number",
    "train_time_s": "number",
    "train_loss_history": "numbers",
    "train_target_loss": "number",
    "train_budget_s": "number",
    "train_stopped": "str",
    "train_iters_run": "number",
    "train_iters_to_target": "number",
    "train_time_to_target_s": "number",
    "train_target_from": "number",
    "train_wall_s": "number",
    "train_time_history": "numbers",
    "train_evals": "number",
    "train_converged": "bool",
    "train_converged_by": "str",
    "train_grad_norm_final": "number",
    "train_polish_evals": "number",
    "train_polish_message": "str",
    "train_polish_rejected": "number",
    "train_polish_rejected_first": "str",
    "train_phases": "objects",
    # the gradient where training ends
    "time_median_trained_s": "number",
    "time_iqr_trained_s": "number",
    "nfe_forward_trained": "number",
    "nfe_backward_trained": "number",
    "grad_rel_error_trained": "number",
    # the trained model
    "truth": "str",
    "state_names": "strings",
    "metrics": "object",
    "claims": "objects",
    "trajectory_file": "str",
}

_WHAT = {
    "str": "a string",
    "number": "a number",
    "bool": "true or false",
    "object": "an object",
    "numbers": "a list of numbers",
    "strings": "a list of strings",
    "objects": "a list of objects",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fits(kind: Kind, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "number":
        return _is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if not isinstance(value, list):
        return False
    if kind == "numbers":
        return all(v is None or _is_number(v) for v in value)
    if kind == "strings":
        return all(isinstance(v, str) for v in value)
    return all(isinstance(v, dict) for v in value)


def kind_problem(name: str, value: Any) -> str | None:
    """Why `value` is not of field `name`'s kind ("has a seed that is not a number", "has
    params that is not an object"), or None: it is, it is None (always allowed), or `name`
    is not a schema field."""
    kind = FIELDS.get(name)
    if kind is None or value is None or _fits(kind, value):
        return None
    article = "a " if kind in ("str", "number", "bool") else ""
    return f"has {article}{name} that is not {_WHAT[kind]}"
