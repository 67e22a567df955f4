"""The source documents' claims as data, and their verdicts on a run's records.

Each task declares the results of its source that it reproduces (`AbstractTask.claims`):
a `Claim` names the document and section, says the claim in a few words, and tests one of
the task's metrics (optionally as a ratio of two) against a threshold whose reason it
states.  `judge` turns a record into a `Verdict`:

- PASS: the trained model meets the claim, whatever stopped its training (a claim that an
  untrained model meets trivially, `needs_training`, e.g. "fails backward", only when
  training converged);
- FAIL: it does not, and training converged (`train_converged`: the record says by which
  criterion, `harness.numerics.driver.convergence`);
- KNOWN FAIL: it does not, training converged, and the claim carries a `finding`: the
  harness measured the opposite of the document, stated rather than tuned away;
- NOT CONVERGED: it does not, but training did not converge, so the model is no evidence
  against the claim (an untrained model "fails backward"); the note says how far training
  got (evaluations, wall time, the criterion's figures);
- NO RESULT: the cell failed before its metrics (its reason is in the record);
- SKIPPED: the back-end cannot run the task.

FAIL and NO RESULT make `python -m harness reproduce` exit with status 1.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeGuard

__all__ = [
    "FAILING",
    "FIT_CLAIMS",
    "Claim",
    "CrossClaim",
    "Verdict",
    "cross_verdict_rows",
    "fit_claim",
    "format_value",
    "judge",
    "judge_cross",
    "judge_record",
    "not_converged_note",
    "trained",
    "verdict_rows",
]

Comparison = Literal["<=", ">=", "<", ">", "contains"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "contains": lambda measured, wanted: wanted in measured,
}

#: verdicts that make `reproduce` exit with status 1
FAILING = frozenset({"FAIL", "NO RESULT"})


@dataclasses.dataclass(frozen=True)
class Claim:
    """One result of a source document, as a test on a trained model's metrics.

    **Arguments:**

    - `id`: short name, unique within the task (e.g. "fit", "extrapolates-forward").
    - `source`: document, section and figure, e.g. "000 §3.2, Fig. 3".
    - `claim`: the claim in a few words.
    - `document`: what the document shows or reports (its figure or number).
    - `metric`: the metric of the task that tests it (a key of the record's `metrics`).
    - `op`, `threshold`: the comparison `metric op threshold` that must hold.
    - `why`: the reason for the threshold.
    - `ratio_to`: when given, the tested value is `metric / ratio_to` (e.g. backward error
      over forward error).
    - `finding`: set when the harness measures the opposite of the document: what it finds.
      A claim with a finding that does not hold is KNOWN FAIL, not FAIL.
    """

    id: str
    source: str
    claim: str
    document: str
    metric: str
    op: Comparison
    threshold: Any
    why: str
    ratio_to: str | None = None
    finding: str | None = None
    #: an untrained model meets it trivially (e.g. "fails backward"): PASS only when
    #: training converged, else NOT CONVERGED
    needs_training: bool = False

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"claim {self.id}: op must be one of {sorted(_OPS)}, not {self.op!r}")
        if not self.why.strip():
            raise ValueError(f"claim {self.id}: the threshold needs its reason (`why`)")

    @property
    def test(self) -> str:
        """The test in words, e.g. ``fit_rmse_relative <= 0.05``."""
        value = f"{self.metric} / {self.ratio_to}" if self.ratio_to else self.metric
        return f"{value} {self.op} {format_value(self.threshold)}"

    def measure(self, metrics: Mapping[str, Any]) -> Any:
        """The tested value from a record's metrics, or None when it is missing or not finite."""
        value = metrics.get(self.metric)
        if value is None:
            return None
        if self.op == "contains":
            return value
        if self.ratio_to is not None:
            base = metrics.get(self.ratio_to)
            if not _finite(base) or not _finite(value):
                return None
            return float(value) / float(base) if float(base) != 0.0 else math.inf
        return float(value) if _finite(value) else None

    def holds(self, measured: Any) -> bool:
        return measured is not None and bool(_OPS[self.op](measured, self.threshold))


#: the trajectory-fit claims many tasks declare: id -> (the `trajectory_metrics` metric
#: it tests, the comparison); `fit_claim` builds them
FIT_CLAIMS: dict[str, tuple[str, Comparison]] = {
    "fit": ("fit_rmse_relative", "<="),
    "extrapolates-forward": ("extrap_forward_rmse_relative", "<="),
    "fails-backward": ("extrap_backward_rmse_relative", ">="),
}


def fit_claim(
    id: str, source: str, claim: str, document: str, threshold: float, why: str, *, finding: str | None = None
) -> Claim:
    """A trajectory-fit claim: `id` (a key of `FIT_CLAIMS`) names its metric and comparison,
    e.g. ``fit_claim("fit", ..., 0.05, ...)`` tests ``fit_rmse_relative <= 0.05``; the other
    arguments are `Claim`'s."""
    metric, op = FIT_CLAIMS[id]
    trivial = id == "fails-backward"  # an untrained model "fails backward" too
    return Claim(
        id, source, claim, document, metric, op, threshold, why, finding=finding, needs_training=trivial
    )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A claim judged on one record: `verdict` is one of the module's six words."""

    claim: str
    verdict: str
    measured: Any
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: Any) -> str:
    """A measured figure for a verdict table: 3 significant digits, lists joined."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def judge(claim: Claim, record: Mapping[str, Any]) -> Verdict:
    """The verdict of `claim` on one record (see the module docstring)."""
    status = record.get("status")
    if status == "skipped":
        return Verdict(claim.id, "SKIPPED", None, str(record.get("reason") or ""))
    metrics = record.get("metrics") or {}
    measured = claim.measure(metrics)
    if status != "ok" and not metrics:
        return Verdict(claim.id, "NO RESULT", None, str(record.get("reason") or ""))
    if measured is None:
        return Verdict(claim.id, "NO RESULT", None, f"metric {claim.metric} not measured")
    converged = record.get("train_converged") is True
    if claim.holds(measured) and (converged or not claim.needs_training):
        return Verdict(claim.id, "PASS", measured)
    if not converged:
        return Verdict(claim.id, "NOT CONVERGED", measured, not_converged_note(record))
    if claim.finding:
        return Verdict(claim.id, "KNOWN FAIL", measured, claim.finding)
    return Verdict(claim.id, "FAIL", measured)


def trained(record: Mapping[str, Any]) -> bool:
    """Whether the claims apply to `record`: a cell that ran without training (a study of
    gradients or memory, `--iters 0`) has no model to judge, so no verdicts at all, not
    NO RESULT; a failed or skipped cell is judged (NO RESULT, SKIPPED)."""
    return record.get("status") != "ok" or "metrics" in record


def not_converged_note(record: Mapping[str, Any]) -> str:
    """How far an unconverged training got: evaluations, wall time, what stopped it and the
    convergence criterion's figures."""
    if "train_converged" not in record:
        return "the record predates convergence checks (no train_converged)"
    evals = record.get("train_evals", record.get("train_iters_run"))
    wall = record.get("train_wall_s")
    stopped = {
        "budget": "the wall-clock safety net",
        "iters": "its evaluation budget",
        "target": "its target",
    }.get(str(record.get("train_stopped")), str(record.get("train_stopped")))
    wall_text = f", {wall:.0f} s" if _finite(wall) else ""
    criterion = record.get("train_converged_by")
    return f"not converged after {evals} evaluations{wall_text}, stopped by {stopped}: {criterion}"


@dataclasses.dataclass(frozen=True)
class CrossClaim:
    """A result of a source that compares two tasks (003: the ODENet about as accurate as
    the ResNet), judged on a record of this task and one of `other_task` with the same
    back-end, seed, device and dtype: ``metric - other_task.other_metric op threshold``.

    The arguments are `Claim`'s, with `other_task` and `other_metric` (default: `metric`),
    and `same`: the options both records must have run with the same values of (the two
    tasks compared on the same data; a pair that differs is NO RESULT, saying how to run the
    other task to match).  FAIL (or KNOWN FAIL with a `finding`) needs both models
    converged; otherwise a claim that does not hold is NOT CONVERGED.
    """

    id: str
    source: str
    claim: str
    document: str
    metric: str
    other_task: str
    op: Comparison
    threshold: float
    why: str
    other_metric: str | None = None
    finding: str | None = None
    same: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in _OPS or self.op == "contains":
            raise ValueError(f"cross claim {self.id}: op must be a comparison, not {self.op!r}")
        if not self.why.strip():
            raise ValueError(f"cross claim {self.id}: the threshold needs its reason (`why`)")

    @property
    def test(self) -> str:
        other = f"{self.other_task}.{self.other_metric or self.metric}"
        return f"{self.metric} - {other} {self.op} {format_value(self.threshold)}"

    def holds(self, measured: float | None) -> bool:
        return measured is not None and bool(_OPS[self.op](measured, self.threshold))


def judge_cross(
    claim: CrossClaim, record: Mapping[str, Any] | None, other: Mapping[str, Any] | None
) -> Verdict:
    """`claim` on a record of its task and the matching record of `claim.other_task`."""
    pair = [r for r in (record, other) if r is not None]
    if len(pair) < 2:
        return Verdict(claim.id, "NO RESULT", None, f"no record of {claim.other_task} to compare with")
    if any(r.get("status") == "skipped" for r in pair):
        reasons = (str(r.get("reason") or "") for r in pair if r.get("status") == "skipped")
        return Verdict(claim.id, "SKIPPED", None, "; ".join(reasons))
    values = [
        (r.get("metrics") or {}).get(m)
        for r, m in zip(pair, (claim.metric, claim.other_metric or claim.metric), strict=True)
    ]
    mine, theirs = values
    if not (_finite(mine) and _finite(theirs)):
        return Verdict(claim.id, "NO RESULT", None, "a metric of the pair was not measured")
    measured = float(mine) - float(theirs)
    if claim.holds(measured):
        return Verdict(claim.id, "PASS", measured)
    unconverged = [r for r in pair if r.get("train_converged") is not True]
    if unconverged:
        note = f"{unconverged[0].get('task')}: {not_converged_note(unconverged[0])}"
        return Verdict(claim.id, "NOT CONVERGED", measured, note)
    if claim.finding:
        return Verdict(claim.id, "KNOWN FAIL", measured, claim.finding)
    return Verdict(claim.id, "FAIL", measured)


def cross_verdict_rows(
    records: Sequence[Mapping[str, Any]], cross_claims_of: Callable[[str], Sequence[CrossClaim]]
) -> list[dict[str, str]]:
    """Rows of the verdict table for the claims over two tasks: one per record of a task
    that declares them (its pair found by back-end, seed, device and dtype), under the
    task name "TASK vs OTHER"."""
    key = lambda r: (r.get("task"), r.get("impl"), r.get("seed"), r.get("device"), r.get("dtype"))
    index: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in records:
        index.setdefault(key(r), []).append(r)
    rows = []
    for record in sorted(records, key=lambda r: (str(r.get("task")), str(r.get("impl")))):
        for claim in cross_claims_of(str(record.get("task"))) if trained(record) else ():
            candidates = index.get((claim.other_task, *key(record)[1:]), [])
            other, mismatch = _pair(claim, record, candidates)
            verdict = judge_cross(claim, record, other) if mismatch is None else mismatch
            rows.append(
                {
                    "task": f"{record.get('task')} vs {claim.other_task}",
                    "claim": claim.id,
                    "source": claim.source,
                    "document": claim.document,
                    "test": claim.test,
                    "impl": str(record.get("impl")),
                    "measured": "" if verdict.measured is None else format_value(verdict.measured),
                    "verdict": verdict.verdict,
                    "note": verdict.note,
                }
            )
    return rows


def _options(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record.get("resolved_params") or record.get("params") or {}


def _pair(
    claim: CrossClaim, record: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, Verdict | None]:
    """The record of `claim.other_task` to compare `record` with: the last of `candidates`
    that ran with the same values of `claim.same`; else (None, a NO RESULT verdict saying
    which values to run the other task with)."""
    mine = {k: _options(record).get(k) for k in claim.same}
    matching = [r for r in candidates if all(_options(r).get(k) == v for k, v in mine.items())]
    if matching or not candidates:
        return (matching[-1] if matching else None), None
    theirs = _options(candidates[-1])
    differ = {k: v for k, v in mine.items() if theirs.get(k) != v}
    shown = {k: format_value(v) if isinstance(v, float) else v for k, v in differ.items()}
    wanted = " ".join(f"--set {k}={v}" for k, v in shown.items())
    note = f"no {claim.other_task} record on the same {', '.join(claim.same)}: run it with {wanted}"
    return None, Verdict(claim.id, "NO RESULT", None, note)


def judge_record(claims: Iterable[Claim], record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every claim judged on `record`, as JSON-able dicts (the record's `claims` field), with
    the claim's source, document figure and test, so that a results folder describes its
    verdicts without the task; none for a cell that did not train (`trained`)."""
    if not trained(record):
        return []
    return [
        {
            **judge(claim, record).as_dict(),
            "source": claim.source,
            "document": claim.document,
            "test": claim.test,
        }
        for claim in claims
    ]


def verdict_rows(
    records: Sequence[Mapping[str, Any]], claims_of: Callable[[str], Sequence[Claim]]
) -> list[dict[str, str]]:
    """Rows task x claim x back-end: section, claim, the document's figure, the measured
    figure and the verdict, judged with the claims as declared now (a record's stored
    `claims` are the verdicts at the time of its run)."""
    rows = []
    for record in sorted(records, key=lambda r: (str(r.get("task")), str(r.get("impl")))):
        claims = {c.id: c for c in claims_of(str(record.get("task")))} if trained(record) else {}
        for claim in claims.values():
            verdict = judge(claim, record).as_dict()
            measured = verdict.get("measured")
            rows.append(
                {
                    "task": str(record.get("task")),
                    "claim": claim.id,
                    "source": claim.source,
                    "document": claim.document,
                    "test": claim.test,
                    "impl": str(record.get("impl")),
                    "measured": "" if measured is None else format_value(measured),
                    "verdict": str(verdict.get("verdict")),
                    "note": str(verdict.get("note") or ""),
                }
            )
    return rows
