"""The answer to "which back-end for my problem?", per task, from the records at hand.

Four questions, each answered with the winner, the runner-up and the ratio between them:

- **fastest to the target loss**: wall time from the start of training to the task's
  target (`train_time_to_target_s`; the median over seeds);
- **cheapest training step**: the median wall time of one training evaluation (from the
  stored `train_time_history`, `harness.reporting.retarget.step_time_s`);
- **most accurate gradient**: the smallest relative error against the reference gradient
  (`grad_rel_error`); with a work-precision sweep (several tolerances or steps per
  back-end), *for its time*: each back-end's smallest error among its settings whose
  value-and-grad call fits the slowest back-end's fastest call;
- **least memory**: the framework-level peak of one value-and-grad call
  (`peak_framework_bytes`; RSS growth where a back-end has no framework figure).

A difference within the measured spread is a tie: for times over several seeds, the
ranges [min, max] of the two overlap; for one seed, the two intervals of the per-step
time's interquartile range (scaled to the time) overlap.  Gradient errors and memory are
single deterministic readings: equal to two significant digits is a tie.  A back-end
whose cells are not all `ok` is left out of every question and named.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from harness.reporting.retarget import step_durations, step_time_s
from harness.reporting.settings import effective_settings, varying_settings

__all__ = ["Answer", "answer_html", "answer_lines", "answers"]

Record = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Answer:
    """One question answered for one task: entrants ranked best first, each (label,
    value, low, high); `tie` when the first two are within the measured spread."""

    task: str
    question: str
    unit: str
    ranked: list[tuple[str, float, float, float]]
    tie: bool

    @property
    def ratio(self) -> float | None:
        """The runner-up's value over the winner's (None with one entrant)."""
        if len(self.ranked) < 2 or self.ranked[0][1] <= 0:
            return None
        return self.ranked[1][1] / self.ranked[0][1]

    def line(self) -> str:
        """E.g. ``fastest to the target loss: jax-checkpoint 0.455 s, then ... (1.26x)``."""
        (name, value, _, _), *rest = self.ranked
        best = f"{name} {_fmt(value, self.unit)}"
        if not rest:
            return f"{self.question}: {best} (the only one measured)"
        runner = f"{rest[0][0]} {_fmt(rest[0][1], self.unit)}"
        if self.tie:
            return f"{self.question}: a tie between {best} and {runner} (within the measured spread)"
        return f"{self.question}: {best}, then {runner} ({self.ratio:.3g}x)"


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "MB":
        return f"{value * 1e-6:.3g} MB"
    return f"{value:.2g}"


def _label(record: Record, keys: Sequence[str]) -> str:
    params = effective_settings(record)
    options = " ".join(f"{k}={params[k]}" for k in keys if k in params)
    return f"{record['impl']} {options}".strip()


def _positive(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else None


def _step_spread(record: Record) -> float:
    """The per-step time's relative half interquartile range (0 with too few steps)."""
    steps = step_durations(record)
    if len(steps) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(steps, n=4)
    mid = statistics.median(steps)
    return 0.5 * (q3 - q1) / mid if mid > 0 else 0.0


def _timed(groups: Mapping[str, list[Record]], value_of: Any) -> list[tuple[str, float, float, float]]:
    """(label, median, low, high) of a time per group: over seeds the range, for one seed
    the interval of its per-step interquartile spread."""
    entries = []
    for label, members in groups.items():
        values = [(v, r) for r in members if (v := _positive(value_of(r))) is not None]
        if len(values) < len(members) or not values:
            continue  # a seed that did not get there: no median of the others
        times = [v for v, _ in values]
        mid = statistics.median(times)
        if len(times) > 1:
            entries.append((label, mid, min(times), max(times)))
        else:
            half = _step_spread(values[0][1])
            entries.append((label, mid, mid * (1 - half), mid * (1 + half)))
    return sorted(entries, key=lambda e: e[1])


def _single(groups: Mapping[str, list[Record]], value_of: Any) -> list[tuple[str, float, float, float]]:
    """(label, value, value, value) of a deterministic reading (geometric mean over seeds)."""
    entries = []
    for label, members in groups.items():
        values = [v for r in members if (v := _positive(value_of(r))) is not None]
        if values and len(values) == len(members):
            mean = math.exp(statistics.fmean(math.log(v) for v in values))
            entries.append((label, mean, mean, mean))
    return sorted(entries, key=lambda e: e[1])


def _tie(ranked: Sequence[tuple[str, float, float, float]], deterministic: bool) -> bool:
    if len(ranked) < 2:
        return False
    (_, a, _, a_hi), (_, b, b_lo, _) = ranked[0], ranked[1]
    if deterministic:
        return f"{a:.2g}" == f"{b:.2g}"
    return a_hi >= b_lo


def _gradient_for_its_time(
    groups: Mapping[str, list[Record]],
) -> tuple[str, list[tuple[str, float, float, float]]]:
    """The gradient question.  With several settings per back-end (a work-precision sweep
    over tolerances or steps), back-ends are compared at one time budget: the slowest
    back-end's fastest value-and-grad call, so that every back-end has a setting within
    it; each enters with its smallest error within the budget.  Otherwise each setting
    enters with its own error."""
    per_impl: dict[str, list[Record]] = {}
    for members in groups.values():
        for record in members:
            per_impl.setdefault(str(record["impl"]), []).append(record)
    swept = any(len({_settings(r) for r in members}) > 1 for members in per_impl.values())
    if not swept:
        return "most accurate gradient", _single(groups, lambda r: r.get("grad_rel_error"))
    points = {
        impl: [
            (t, e)
            for r in members
            if (t := _positive(r.get("time_median_s"))) and (e := _positive(r.get("grad_rel_error")))
        ]
        for impl, members in per_impl.items()
    }
    points = {impl: p for impl, p in points.items() if p}
    if not points:
        return "", []
    budget = max(min(t for t, _ in p) for p in points.values())
    best = [(impl, min(e for t, e in p if t <= budget)) for impl, p in points.items()]
    ranked = sorted(((impl, e, e, e) for impl, e in best), key=lambda entry: entry[1])
    return f"most accurate gradient within {_fmt(budget, 's')} a call (work-precision sweep)", ranked


def _settings(record: Record) -> str:
    """The solver settings of a record (tolerances, steps), as one comparable string."""
    params = effective_settings(record)
    return repr(sorted((k, params[k]) for k in ("rtol", "atol", "dt", "tol") if k in params))


def _memory(record: Record) -> Any:
    framework = record.get("peak_framework_bytes")
    return framework if _positive(framework) is not None else record.get("peak_rss_bytes")


def answers(records: Sequence[Record]) -> dict[str, list[Answer]]:
    """Per task (in order of first appearance), the questions that have at least one
    entrant, and the back-ends left out because a cell of theirs is not `ok`."""
    keys = [k for k in varying_settings(records) if k != "seed"]
    by_task: dict[str, dict[str, list[Record]]] = {}
    broken: dict[str, set[str]] = {}
    for record in records:
        task, label = str(record["task"]), _label(record, keys)
        if record.get("status") != "ok":
            broken.setdefault(task, set()).add(label)
        by_task.setdefault(task, {}).setdefault(label, []).append(record)
    out: dict[str, list[Answer]] = {}
    for task, groups in by_task.items():
        groups = {k: v for k, v in groups.items() if k not in broken.get(task, set())}
        target = next((r.get("train_target_loss") for g in groups.values() for r in g), None)
        gradient_question, gradient_ranked = _gradient_for_its_time(groups)
        questions = [
            (
                f"fastest to the target loss {target:g}" if target else "",
                "s",
                _timed(groups, lambda r: r.get("train_time_to_target_s")),
                False,
            ),
            ("cheapest training step", "s", _timed(groups, step_time_s), False),
            (gradient_question, "", gradient_ranked, True),
            ("least memory (one value-and-grad call)", "MB", _single(groups, _memory), True),
        ]
        out[task] = [
            Answer(task, question, unit, ranked, _tie(ranked, deterministic))
            for question, unit, ranked, deterministic in questions
            if question and ranked
        ]
    return out


def answer_lines(records: Sequence[Record]) -> list[str]:
    """The answer section as text: a heading, then per task its answers, one line each
    (none when no record answers anything)."""
    found = answers(records)
    broken = sorted({f"{r['task']} / {r['impl']}" for r in records if r.get("status") != "ok"})
    lines = []
    for task, task_answers in found.items():
        if task_answers:
            lines += [f"{task}:", *(f"  - {a.line()}" for a in task_answers)]
    if not lines:
        return []
    heading = "Which back-end? (winner, runner-up and ratio; a tie when within the measured spread)"
    left_out = [f"  left out (a cell not ok): {', '.join(broken)}"] if broken else []
    return [heading, *lines, *left_out]


def answer_html(records: Sequence[Record]) -> list[str]:
    """The answer section of the HTML report: per task, each question's line and a small
    bar chart of every entrant (bar length logarithmic in the value, best first)."""
    import html

    found = {task: a for task, a in answers(records).items() if a}
    if not found:
        return []
    parts = [
        "<h2>Which back-end?</h2>",
        "<p>Per task: the winner, the runner-up and the ratio between them; a tie when the two "
        "are within the measured spread. Bars: each back-end's value, longer is worse (log scale).</p>",
    ]
    for task, task_answers in found.items():
        parts.append(f"<h3>{html.escape(task)}</h3>")
        for item in task_answers:
            parts.append(f'<p class="answer">{html.escape(item.line())}</p>')
            parts.append(_bars_html(item))
    return parts


def _bars_html(item: Answer) -> str:
    """Horizontal CSS bars, one per entrant, 8-100 % wide by the log of the value."""
    import html

    values = [value for _, value, _, _ in item.ranked]
    lo, hi = min(values), max(values)
    rows = []
    for name, value, _, _ in item.ranked:
        frac = 1.0 if hi <= lo else math.log(value / lo) / math.log(hi / lo)
        width = 8 + 92 * frac if hi > lo else 8
        rows.append(
            f'<div class="bar-row"><span class="bar-name">{html.escape(name)}</span>'
            f'<span class="bar-track"><span class="bar" style="width:{width:.0f}%"></span></span>'
            f'<span class="bar-value">{html.escape(_fmt(value, item.unit))}</span></div>'
        )
    return f'<div class="bars">{"".join(rows)}</div>'
