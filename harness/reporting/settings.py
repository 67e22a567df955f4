"""The settings a record ran with (task options, solver, back-end and training settings),
and which of them vary across a set of records: the one definition that the text tables,
the HTML report and the figures share.

In code, *settings* are these and *params* are a model's weights (`harness.core.models.Params`)
(#27); the record fields `params` and `resolved_params` keep their names (records' fields
are never renamed: SPEC "Record fields")."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["effective_settings", "varying_settings"]


def effective_settings(record: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a cell ran with: the record's `resolved_params` (task options with
    their defaults filled in, solver, back-end and training settings), so that a default
    run and a run with `--set t1=...` are comparable; `params` (the options given) for a
    record written before `resolved_params` existed."""
    resolved = record.get("resolved_params")
    if isinstance(resolved, Mapping):
        return dict(resolved)
    return dict(record.get("params") or {})


def varying_settings(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Settings that take two values or more among the records of one task that have
    them (a key only some back-ends have, such as `dt`, varies only if its values differ),
    plus `seed` when the seeds of a task differ: the axes of a grid, as
    {name: value per record}."""
    settings = [{**effective_settings(r), "seed": r.get("seed")} for r in records]
    names = list(dict.fromkeys(k for p in settings for k in p))
    varying = set()
    for task in {str(r.get("task")) for r in records}:
        mine = [p for p, r in zip(settings, records, strict=True) if str(r.get("task")) == task]
        for name in names:
            if len({json.dumps(p[name], default=str) for p in mine if name in p}) > 1:
                varying.add(name)
    return {name: [p.get(name) for p in settings] for name in names if name in varying}
