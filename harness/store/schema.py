"""The record schema: every field a record may carry and its JSON kind, in the order the
fields are documented (docs/records.md).  One definition, the `Record` TypedDict: the
writer builds a `Record`, `load_records` returns them, the validator
(`harness.store.validate.record_problem`) checks each field's kind (`FIELDS`, derived from
`Record`), and the tests of the writer and of the documentation check every key against
it.  Fields may be added, never renamed (SPEC "Record fields").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Required, TypedDict, cast

__all__ = ["FIELDS", "Kind", "Record", "kind_problem", "merge"]

#: JSON kinds: a string, a number (int or float, not bool), a bool, an object, a list of
#: numbers (None allowed in it), a list of strings, a list of objects
Kind = Literal["str", "number", "bool", "object", "numbers", "strings", "objects"]

# the Python type of each JSON kind (null is allowed for every field but three)
Text = str | None
Number = float | None
Flag = bool | None
Object = dict[str, Any] | None
Numbers = list[float] | list[float | None] | None
Texts = list[str] | None
Objects = list[dict[str, Any]] | None


class Record(TypedDict, total=False):
    """A record: one cell's measurements (docs/records.md), as JSON.  Every field but `task`,
    `impl` and `status` may be absent or null.  The writer builds one (`merge` checks the
    names of fields it merges from computed dicts), `load_records` returns them, and the
    validator checks each field's kind (`FIELDS`): pyright checks names and types wherever a
    `Record` is built or read (#27)."""

    # identity and provenance
    run_id: Text
    cell_id: Text
    task: Required[str]
    impl: Required[str]
    params: Object
    resolved_params: Object
    device: Text
    dtype: Text
    seed: Number
    status: Required[str]
    reason: Text
    env: Object
    cell: Object
    sources: Object
    execution: Object
    cell_time_s: Number
    # the gradient at the initial weights
    loss_init: Number
    grad_rel_error: Number
    grad_rel_error_discrete: Number
    discrete_twin: Text
    grad_reference: Text
    time_first_s: Number
    time_median_s: Number
    time_iqr_s: Number
    repeats: Number
    timing: Text
    timing_concurrent: Object
    timing_reason: Text
    nfe_forward: Number
    nfe_backward: Number
    solver_steps: Number
    solver_checkpoints: Number
    # memory
    peak_rss_bytes: Number
    peak_rss_first_call_bytes: Number
    rss_method: Text
    peak_framework_bytes: Number
    peak_framework_method: Text
    peak_device_bytes: Number
    # training
    train_iters: Number
    train_loss_final: Number
    train_time_s: Number
    train_loss_history: Numbers
    train_target_loss: Number
    train_budget_s: Number
    train_stopped: Text
    train_iters_run: Number
    train_iters_to_target: Number
    train_time_to_target_s: Number
    train_target_from: Number
    train_wall_s: Number
    train_time_history: Numbers
    train_evals: Number
    train_converged: Flag
    train_converged_by: Text
    train_grad_norm_final: Number
    train_polish_evals: Number
    train_polish_message: Text
    train_polish_rejected: Number
    train_polish_rejected_first: Text
    train_phases: Objects
    # the gradient where training ends
    time_median_trained_s: Number
    time_iqr_trained_s: Number
    nfe_forward_trained: Number
    nfe_backward_trained: Number
    grad_rel_error_trained: Number
    # the trained model
    truth: Text
    state_names: Texts
    metrics: Object
    claims: Objects
    trajectory_file: Text


#: the JSON kind of each type of `Record`'s fields
_KINDS: dict[str, Kind] = {
    "Text": "str",
    "Required[str]": "str",
    "Number": "number",
    "Flag": "bool",
    "Object": "object",
    "Numbers": "numbers",
    "Texts": "strings",
    "Objects": "objects",
}

#: every field and its JSON kind, in the documented order, from `Record`'s annotations
FIELDS: dict[str, Kind] = {
    name: _KINDS[getattr(kind, "__forward_arg__", str(kind))] for name, kind in Record.__annotations__.items()
}


def merge(record: Record, fields: Mapping[str, Any]) -> None:
    """Merge `fields`, computed by a lower layer (a training summary, a memory probe), into
    `record`: a name that is not a field of the schema is a KeyError, so that a misspelled
    or undocumented field never reaches a results file."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise KeyError(f"not record fields: {', '.join(unknown)} (harness.store.schema.Record)")
    cast(dict[str, Any], record).update(fields)


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
