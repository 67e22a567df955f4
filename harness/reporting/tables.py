"""Tables of a results folder: human (tabulate), CSV and JSON lines.

The claims' verdicts are the ones each record holds (judged when its cell ran), or, for
the tasks whose claim declarations the caller passes in (`claims`: task name -> claims),
the records re-judged with them; no task registry is imported here."""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.core.claims import Claim, CrossClaim, cross_verdict_rows, verdict_rows
from harness.core.claims import format_value as format_measured
from harness.reporting.answer import answer_lines
from harness.reporting.markdown import markdown_table
from harness.reporting.retarget import step_time_s
from harness.reporting.settings import effective_settings, varying_settings

__all__ = [
    "ClaimsByTask",
    "Verdicts",
    "aggregate_verdict",
    "format_records",
    "metrics_reference",
    "reproduction_table",
    "reproduction_wide",
    "verdict_counts",
    "verdict_notes",
]


def _num(value: Any, fmt: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return format(value * scale, fmt)


def _options(rec: Mapping[str, Any], keys: Sequence[str]) -> str:
    params = {**effective_settings(rec), "seed": rec.get("seed")}
    return " ".join(f"{k}={params[k]}" for k in keys if k in params)


#: training's wall time after the back-end's first call (its JIT compilation is `first call s`)
TRAIN_HEADER = "train s (warm)"

#: the mark of a time taken while other cells ran (see `concurrency_note`)
CONCURRENT_MARK = " *"


def concurrency(rec: Mapping[str, Any]) -> int:
    """How many cells could run at once while this record's cell ran (1: alone)."""
    how = rec.get("execution")
    value = how.get("concurrency") if isinstance(how, Mapping) else None
    return int(value) if isinstance(value, int | float) and value >= 1 else 1


def _mark(text: str, concurrent: bool) -> str:
    return text + CONCURRENT_MARK if concurrent and text != "-" else text


def concurrency_note(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The footnote of the marked times, or None when every time was taken alone."""
    most = max((concurrency(r) for r in records), default=1)
    if most <= 1:
        return None
    engines = sorted({str(r["execution"].get("engine")) for r in records if concurrency(r) > 1})
    return (
        f"{CONCURRENT_MARK.strip()} taken while up to {most} cells ran at once (engine "
        f"{', '.join(engines)}): not comparable with times taken alone; value-and-grad times "
        "without the mark were taken one cell at a time (--timing serial)"
    )


def _row(rec: Mapping[str, Any], keys: Sequence[str] = ()) -> dict[str, str]:
    nfe = "-" if rec.get("nfe_forward") is None else f"{rec['nfe_forward']}/{rec['nfe_backward']}"
    median, iqr = rec.get("time_median_s"), rec.get("time_iqr_s")
    spread = (
        "" if iqr is None or int(rec.get("repeats") or 0) < 2 else f" ± {iqr * 1e3:.2g}"
    )  # one call: none
    steady = "-" if median is None else f"{median * 1e3:.3g}{spread}"
    timed_together = rec.get("timing") == "concurrent"
    trained_together = concurrency(rec) > 1
    row = {"task": rec["task"], "impl": rec["impl"]}
    if keys:
        row["options"] = _options(rec, keys)
    return row | {
        "status": rec["status"],
        "grad rel err": _num(rec.get("grad_rel_error"), ".1e"),
        "first call s": _mark(_num(rec.get("time_first_s"), ".3g"), timed_together),
        "vg median ± IQR ms": _mark(steady, timed_together),
        "NFE fwd/bwd": nfe,
        "trained: vg ms, NFE, grad err": _at_trained(rec),
        "RSS MB first/steady": "-"
        if rec.get("peak_rss_bytes") is None
        else f"{rec['peak_rss_first_call_bytes'] * 1e-6:.1f}/{rec['peak_rss_bytes'] * 1e-6:.1f}",
        "framework MB": _num(rec.get("peak_framework_bytes"), ".3f", 1e-6),
        "loss init": _num(rec.get("loss_init"), ".3g"),
        "loss final": _num(rec.get("train_loss_final"), ".3g"),
        TRAIN_HEADER: _mark(_num(rec.get("train_time_s"), ".3g"), trained_together),
        "train step ms": _mark(_num(step_time_s(rec), ".3g", 1e3), trained_together),
        "to target (iters, s)": _mark(_to_target(rec), trained_together),
        "stopped": rec.get("train_stopped") or "-",
    }


def _at_trained(rec: Mapping[str, Any]) -> str:
    """Value-and-grad median time, NFE and gradient error at the trained weights (`-`
    without training)."""
    median, error = rec.get("time_median_trained_s"), rec.get("grad_rel_error_trained")
    if median is None:
        return "-"
    nfe = f"{rec.get('nfe_forward_trained')}/{rec.get('nfe_backward_trained')}"
    return f"{median * 1e3:.3g}, {nfe}, {_num(error, '.1e')}"


def _to_target(rec: Mapping[str, Any]) -> str:
    """Iterations and wall seconds to the training target, `-` when it was not reached."""
    iters, secs = rec.get("train_iters_to_target"), rec.get("train_time_to_target_s")
    return "-" if iters is None or secs is None else f"{iters}, {secs:.3g}"


#: claim declarations passed in by a caller: task name -> the task's claims as declared now
ClaimsByTask = Mapping[str, Sequence[Claim]]
#: task name -> its claims over two tasks (`AbstractTask.cross_claims`)
CrossClaimsByTask = Mapping[str, Sequence[CrossClaim]]


def _recorded_rows(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The verdict rows of the judged claims a record holds (its `claims` field)."""
    rows = []
    for verdict in record.get("claims") or []:
        if not isinstance(verdict, Mapping) or not verdict.get("claim"):
            continue
        measured = verdict.get("measured")
        rows.append(
            {
                "task": str(record.get("task")),
                "claim": str(verdict["claim"]),
                "source": str(verdict.get("source") or ""),
                "document": str(verdict.get("document") or ""),
                "test": str(verdict.get("test") or ""),
                "impl": str(record.get("impl")),
                "measured": "" if measured is None else format_measured(measured),
                "verdict": str(verdict.get("verdict")),
                "note": str(verdict.get("note") or ""),
            }
        )
    return rows


@dataclasses.dataclass(frozen=True)
class Verdicts:
    """The claims' verdicts of a set of records, computed once (`Verdicts.of`) and shown
    as the report's first section, its notes and the verdict counts.

    `rows` are task x claim x back-end (see `harness.core.claims.verdict_rows`); `impls`
    every back-end of the records, the columns of the wide table."""

    rows: tuple[dict[str, str], ...]
    impls: tuple[str, ...]

    @classmethod
    def of(
        cls,
        records: Sequence[Mapping[str, Any]],
        claims: ClaimsByTask | None = None,
        cross: CrossClaimsByTask | None = None,
    ) -> Verdicts:
        """The verdicts each record holds (judged when its cell ran); for a task in
        `claims`, its records re-judged with those declarations instead (the claims as
        declared now, which the caller looks up: reporting imports no task registry); and
        the claims over two tasks of `cross`, judged on the pairs of records present."""
        rows: list[dict[str, str]] = []
        label = _configuration_labels(records)
        for record in sorted(records, key=lambda r: (str(r.get("task")), str(r.get("impl")))):
            task = str(record.get("task"))
            if claims is not None and task in claims:
                declared = tuple(claims[task])
                mine = verdict_rows([record], lambda _, declared=declared: declared)
            else:
                mine = _recorded_rows(record)
            rows += [{**row, "task": label(record)} for row in mine]
        if cross:
            rows += cross_verdict_rows(records, lambda task: cross.get(task, ()))
        return cls(tuple(rows), tuple(sorted({str(r.get("impl")) for r in records})))

    def wide(self) -> list[dict[str, str]]:
        """One row per (task, claim): its section, the document's figure, the test, then
        per back-end the verdict and the measured figure; over several records of one
        back-end (seeds), the aggregate (`aggregate_verdict`)."""
        table: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.rows:
            out = table.setdefault(
                (row["task"], row["claim"]),
                {k: row[k] for k in ("task", "claim", "source", "document", "test")},
            )
            out.setdefault(row["impl"], []).append(row)
        return [
            {
                **{k: r[k] for k in ("task", "claim", "source", "document", "test")},
                **{i: aggregate_verdict(r[i]) if i in r else "" for i in self.impls},
            }
            for r in table.values()
        ]

    def table(self, tablefmt: str = "github") -> str:
        """ "Does it reproduce the source?": task x claim x back-end ("" without claims)."""
        rows = self.wide()
        return markdown_table(rows, headers="keys", tablefmt=tablefmt) if rows else ""

    def counts(self) -> dict[str, int]:
        """How many claim x back-end verdicts of each kind there are."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        return counts

    def notes(self) -> list[str]:
        """One line per distinct note of a non-passing verdict (a finding, a budget); a
        note's line breaks (a record's reason) shown as spaces, so each stays one line."""
        notes: dict[tuple[str, str, str, str], list[str]] = {}
        for row in self.rows:
            if row["verdict"] != "PASS" and row["note"]:
                note = " ".join(row["note"].split())
                key = (row["task"], row["claim"], row["verdict"], note)
                notes.setdefault(key, []).append(row["impl"])
        return [f"- {t} / {c}: {v} on {', '.join(i)}: {n}" for (t, c, v, n), i in notes.items()]


#: what varies between records without making them two configurations: the seed (they
#: aggregate), the wall-clock safety net (the record says whether it stopped training)
_NOT_CONFIGURATION = ("seed", "budget")


def _configuration_labels(records: Sequence[Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], str]:
    """The task label of a record's verdict rows: its task, with the options that vary
    among the records of that task besides the seed and the wall-clock safety net
    (`double_pendulum (t1=3 n_obs=61)`),
    so that the wide table aggregates seeds of one configuration, never two
    configurations (the HNN's pair on its window beside the default run)."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_task.setdefault(str(record.get("task")), []).append(record)
    labels: dict[int, str] = {}
    for task, mine in by_task.items():
        varying = {k: v for k, v in varying_settings(mine).items() if k not in _NOT_CONFIGURATION}
        for i, record in enumerate(mine):
            shown = " ".join(f"{k}={v[i]}" for k, v in varying.items() if v[i] is not None)
            labels[id(record)] = f"{task} ({shown})" if shown else task
    return lambda record: labels.get(id(record), str(record.get("task")))


def aggregate_verdict(rows: Sequence[Mapping[str, str]]) -> str:
    """One cell of the wide table: "PASS 0.0156" for one record; over several (seeds) the
    verdict they share, or MIXED, with how many passed and the measured median [min, max]:
    "PASS 3/3 0.0156 [0.015, 0.017]", "MIXED 2/3 ...", "FAIL 0/3 ..."."""
    if len(rows) == 1:
        measured = f" {rows[0]['measured']}" if rows[0]["measured"] else ""
        return f"{rows[0]['verdict']}{measured}"
    kinds = {r["verdict"] for r in rows}
    word = kinds.pop() if len(kinds) == 1 else "MIXED"
    passes = sum(r["verdict"] == "PASS" for r in rows)
    values = []
    for r in rows:
        try:
            values.append(float(r["measured"]))
        except ValueError:
            pass
    spread = ""
    if values:
        lo, mid, hi = min(values), float(statistics.median(values)), max(values)
        spread = f" {format_measured(mid)} [{format_measured(lo)}, {format_measured(hi)}]"
    return f"{word} {passes}/{len(rows)}{spread}"


def reproduction_wide(
    records: Sequence[Mapping[str, Any]], claims: ClaimsByTask | None = None
) -> tuple[list[dict[str, str]], list[str]]:
    """One row per (task, claim) and the back-ends (see `Verdicts.wide`)."""
    verdicts = Verdicts.of(records, claims)
    return verdicts.wide(), list(verdicts.impls)


def reproduction_table(
    records: Sequence[Mapping[str, Any]], tablefmt: str = "github", claims: ClaimsByTask | None = None
) -> str:
    """ "Does it reproduce the source?": task x claim x back-end (see `Verdicts.table`)."""
    return Verdicts.of(records, claims).table(tablefmt)


def verdict_counts(
    records: Sequence[Mapping[str, Any]], claims: ClaimsByTask | None = None
) -> dict[str, int]:
    """How many claim x back-end verdicts of each kind the records hold."""
    return Verdicts.of(records, claims).counts()


def verdict_notes(records: Sequence[Mapping[str, Any]], claims: ClaimsByTask | None = None) -> list[str]:
    """One line per distinct note of a non-passing verdict (a finding, a budget)."""
    return Verdicts.of(records, claims).notes()


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metrics_by_task(
    records: Sequence[Mapping[str, Any]],
) -> list[tuple[str, list[Mapping[str, Any]], list[str]]]:
    """Metrics tables: tasks that measure the same things (the same numeric metric keys,
    e.g. `odenet_digits` and `resnet_digits`) share one, side by side; the others get one
    each.  Returns `(tasks, records, metric keys)` per table, in order of appearance.
    Non-numeric metrics (what a fit found, e.g. a formula) are listed by `text_metrics`."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("metrics"):
            by_task.setdefault(r["task"], []).append(r)
    tables: dict[tuple[str, ...], tuple[list[str], list[Mapping[str, Any]]]] = {}
    for task, rows in by_task.items():
        keys = tuple(dict.fromkeys(k for r in rows for k, v in r["metrics"].items() if is_number(v)))
        names, members = tables.setdefault(keys, ([], []))
        names.append(task)
        members.extend(rows)
    return [(", ".join(names), rows, list(keys)) for keys, (names, rows) in tables.items()]


def text_metrics(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """`task / impl: key = value; ...` for the non-numeric metrics of each record."""
    lines = []
    for r in records:
        text = {k: v for k, v in (r.get("metrics") or {}).items() if not is_number(v) and v is not None}
        if text:
            body = "; ".join(f"{k} = {v}" for k, v in text.items())
            lines.append(f"- {r['task']} / {r['impl']}: {body}")
    return lines


def _metrics_tables(records: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = list(varying_settings(records))
    tables = []
    for _, rows, metric_keys in metrics_by_task(records):
        table = [
            {
                "task": r["task"],
                "impl": r["impl"],
                **({"options": _options(r, keys)} if keys else {}),
                **{k: _cell(r["metrics"].get(k)) for k in metric_keys},
            }
            for r in rows
        ]
        tables.append(markdown_table(table, headers="keys", tablefmt="github"))
    return tables


def _cell(value: Any) -> Any:
    return f"{value:.3g}" if isinstance(value, float) else value


def metrics_reference(records: Sequence[Mapping[str, Any]]) -> str:
    """What the metrics' RMSEs are measured against: the noise-free truth, or the
    observations for a task on real data (its records' `truth`)."""
    if any(r.get("truth") == "observations" for r in records):
        return "the observations for tasks on real data (record field truth), else the noise-free truth"
    return "the noise-free truth"


def format_records(
    records: Sequence[Mapping[str, Any]],
    fmt: str = "table",
    *,
    verdicts: bool | Verdicts = True,
    claims: ClaimsByTask | None = None,
) -> str:
    """Records as `table` (human: the claims' verdicts unless `verdicts` is false, then the
    measurements, metrics and reasons), `csv` or `json` (JSON lines).  `verdicts` may be
    the `Verdicts` of the records computed already; else they are computed here, re-judged
    with `claims` for the tasks it declares (see `Verdicts.of`)."""
    if fmt == "json":
        return "\n".join(json.dumps(r) for r in records)
    if fmt == "csv":
        from harness.store.results import records_frame

        return records_frame(records).to_csv(index=False).rstrip("\n")
    keys = list(varying_settings(records))
    parts = []
    judged = verdicts if isinstance(verdicts, Verdicts) else None
    if verdicts is True:
        judged = Verdicts.of(records, claims)
    if judged is not None and (table := judged.table()):
        parts += ["Does it reproduce the source? (claims of the documents; measured value after the verdict)"]
        parts += ["", table, *(["", *notes] if (notes := judged.notes()) else []), ""]
    if answer := answer_lines(records):
        parts += [*answer, ""]
    parts += [markdown_table([_row(r, keys) for r in records], headers="keys", tablefmt="github")]
    if note := concurrency_note(records):
        parts += ["", note]
    tables, found = _metrics_tables(records), text_metrics(records)
    if tables:
        parts += ["", f"Metrics after training (task metrics; RMSEs against {metrics_reference(records)}):"]
        for table in tables:
            parts += ["", table]
    if found:
        parts += ["", *found]
    notes = [f"- {r['task']} / {r['impl']}: {r['status']}: {r['reason']}" for r in records if r.get("reason")]
    if notes:
        parts += ["", *notes]
    env = next((r.get("env") for r in records if r.get("env")), None)
    if env:
        threads = (env.get("threads") or {}).get("OMP_NUM_THREADS")
        parts += [
            "",
            f"{env.get('cpu')}, {threads} thread(s), commit {env.get('git_commit')}, {env.get('date')}",
        ]
    return "\n".join(parts)
