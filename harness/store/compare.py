"""Reproducibility verdicts: does run B reproduce run A?

Cells are matched by `cell_id` (task, back-end, seed and a hash of every option).  Each
compared field has a stated tolerance (`TOLERANCES`): accuracy figures tight, times
within a noise band; a cell reproduces when every field present in both runs is within
its tolerance and the statuses agree.  A cell whose training stopped at its wall-clock
budget after different numbers of iterations is `budget-bound`: its trained loss and
metrics depend on the machine's speed and are not compared (the rest is); so is a cell whose
training reached its target after different numbers of iterations (`path_bound`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness.core.errors import UsageError

__all__ = ["TOLERANCES", "Tolerance", "Verdict", "budget_bound", "check_unique", "compare_runs", "path_bound"]


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """|b - a| <= abs + rel * |a|, or, with `ratio`, 1/ratio <= b / a <= ratio."""

    rel: float = 0.0
    abs: float = 0.0
    ratio: float | None = None
    why: str = ""

    def holds(self, a: float, b: float) -> bool:
        if self.ratio is not None:
            return a > 0 and b > 0 and 1 / self.ratio <= b / a <= self.ratio
        return abs(b - a) <= self.abs + self.rel * abs(a)

    def describe(self) -> str:
        if self.ratio is not None:
            return f"within a factor {self.ratio:g}"
        return f"|b-a| <= {self.abs:g} + {self.rel:g}|a|"


#: fields compared and how tightly; `metric.*` covers every task metric
TOLERANCES: dict[str, Tolerance] = {
    "loss_init": Tolerance(rel=1e-9, why="one deterministic solve; only summation order may differ"),
    "grad_rel_error": Tolerance(rel=1e-3, abs=1e-12, why="the error of a deterministic gradient"),
    "grad_rel_error_discrete": Tolerance(rel=1e-3, abs=1e-12, why="the error of a deterministic gradient"),
    "nfe_forward": Tolerance(rel=0.0, why="step-size control is deterministic"),
    "nfe_backward": Tolerance(rel=0.0, why="step-size control is deterministic"),
    "train_loss_final": Tolerance(rel=1e-6, abs=1e-12, why="training amplifies rounding differences"),
    "metric.*": Tolerance(rel=1e-4, abs=1e-9, why="metrics of the trained model"),
    "peak_framework_bytes": Tolerance(rel=0.05, abs=4096, why="framework bookkeeping"),
    "time_median_s": Tolerance(ratio=2.0, why="steady-state timing noise on a shared machine"),
    "time_first_s": Tolerance(ratio=3.0, why="compilation and caches vary more"),
}
TIME_FIELDS = ("time_median_s", "time_first_s")


@dataclasses.dataclass
class Verdict:
    cell: str
    task: str
    impl: str
    reproduced: bool
    differences: list[str]
    #: why some fields were not compared (training stopped by its wall-clock budget)
    note: str | None = None
    #: "A" or "B": the run that lacks this cell (nothing was compared)
    missing_in: str | None = None

    @property
    def label(self) -> str:
        """`reproduced`, `differs`, `budget-bound` (everything compared reproduced, but the
        training results depend on speed and were not compared) or `path-bound` (both reached
        their target by other paths: `path_bound`)."""
        if not self.reproduced:
            return "differs"
        if not self.note:
            return "reproduced"
        return "path-bound" if self.note.startswith("training reached its target") else "budget-bound"


def _fields(record: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: record.get(k) for k in TOLERANCES if not k.startswith("metric.")}
    out.update({f"metric.{k}": v for k, v in (record.get("metrics") or {}).items()})
    return out


def _tolerance(field: str) -> Tolerance:
    return TOLERANCES["metric.*"] if field.startswith("metric.") else TOLERANCES[field]


def _differs(field: str, a: Any, b: Any) -> str | None:
    if a is None and b is None:
        return None
    if a is None or b is None:
        return f"{field}: {a} vs {b}"
    if not all(isinstance(v, int | float) for v in (a, b)):  # text a fit found, e.g. a formula
        return None if a == b else f"{field}: {a!r} vs {b!r}"
    a, b = float(a), float(b)
    if math.isnan(a) and math.isnan(b):
        return None
    if not _tolerance(field).holds(a, b):
        return f"{field}: {a:.6g} vs {b:.6g} (allowed: {_tolerance(field).describe()})"
    return None


#: the fields that depend on how far training went
TRAINED_FIELDS = ("train_loss_final", "metric.*")


def budget_bound(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """Why the training results of two records cannot be compared, or None: one stopped at
    its wall-clock budget (`train_stopped == "budget"`) and they ran different numbers of
    iterations, so the results depend on the machine's speed, not on the code."""
    if "budget" not in (a.get("train_stopped"), b.get("train_stopped")):
        return None
    ia, ib = a.get("train_iters_run"), b.get("train_iters_run")
    if ia == ib:
        return None
    return (
        f"training stopped at its wall-clock budget after {ia} vs {ib} iterations: "
        "the trained loss and metrics depend on speed (not compared)"
    )


def path_bound(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """Why the training results of two records cannot be compared, or None: both stopped at
    their target loss, after different numbers of iterations.  Each reached what its claims
    need, by another path: rounding that differs between CPUs (e.g. XLA's or OpenBLAS's
    kernels for another instruction set) grows over thousands of optimiser steps
    (lotka_volterra on jax-checkpoint: 2656 against 2736 iterations on two AMD EPYC machines),
    so the trained loss and metrics differ by more than rounding (not compared)."""
    if (a.get("train_stopped"), b.get("train_stopped")) != ("target", "target"):
        return None
    ia, ib = a.get("train_iters_run"), b.get("train_iters_run")
    if ia == ib:
        return None
    return (
        f"training reached its target loss after {ia} vs {ib} iterations: another path, so the "
        "trained loss and metrics are not compared"
    )


def _identity(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a cell is apart from its options: a re-run with other options still pairs up."""
    return (record["task"], record["impl"], record.get("seed"), record.get("device"), record.get("dtype"))


def _param_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    pa, pb = a.get("params") or {}, b.get("params") or {}
    return [
        f"option {k}: {pa.get(k)} vs {pb.get(k)}" for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)
    ]


def _pair(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    """Pairs by `cell_id`; what is left pairs by task, back-end, seed, device and dtype."""
    left_b = {r.get("cell_id"): r for r in b}
    pairs, unmatched = [], []
    for rec in a:
        other = left_b.pop(rec.get("cell_id"), None)
        (pairs.append((rec, other)) if other is not None else unmatched.append(rec))
    for rec in unmatched:
        key = next((k for k, r in left_b.items() if _identity(r) == _identity(rec)), None)
        pairs.append((rec, left_b.pop(key) if key is not None else None))
    pairs += [(None, r) for r in left_b.values()]
    return pairs


def check_unique(records: Sequence[Mapping[str, Any]], name: str) -> None:
    """A run holds one record per cell: a `cell_id` met twice is a one-line UsageError
    (pairing would otherwise keep one of them without a word)."""
    counts = Counter(r.get("cell_id") for r in records if r.get("cell_id") is not None)
    twice = sorted(str(c) for c, n in counts.items() if n > 1)
    if twice:
        more = f" and {len(twice) - 1} more" if len(twice) > 1 else ""
        raise UsageError(
            f"run {name} holds cell {twice[0]} {counts[twice[0]]} times{more}: "
            "a results folder has one record per cell, so its records cannot be paired"
        )


def compare_runs(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], *, times: bool = True
) -> list[Verdict]:
    """One verdict per cell of A (and per cell only in B).  A run holding a cell twice is
    a one-line UsageError (`check_unique`)."""
    check_unique(a, "A")
    check_unique(b, "B")
    verdicts = []
    for rec, other in _pair(a, b):
        if rec is None or other is None:
            only = rec if rec is not None else other
            assert only is not None  # _pair never yields two Nones
            where = "B" if other is None else "A"
            verdicts.append(
                Verdict(
                    str(only.get("cell_id")),
                    only["task"],
                    only["impl"],
                    False,
                    [f"missing in {where}"],
                    None,
                    where,
                )
            )
            continue
        diffs = _param_differences(rec, other)
        if rec["status"] != other["status"]:
            diffs.append(
                f"status: {rec['status']} vs {other['status']} ({other.get('reason') or rec.get('reason')})"
            )
        fa, fb = _fields(rec), _fields(other)
        note = budget_bound(rec, other) or path_bound(rec, other)
        for field in sorted(set(fa) | set(fb)):
            if not times and field in TIME_FIELDS:
                continue
            if note and (field == "train_loss_final" or field.startswith("metric.")):
                continue
            if (d := _differs(field, fa.get(field), fb.get(field))) is not None:
                diffs.append(d)
        verdicts.append(Verdict(str(rec.get("cell_id")), rec["task"], rec["impl"], not diffs, diffs, note))
    return verdicts
