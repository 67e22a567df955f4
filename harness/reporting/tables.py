"""Tables of a results folder: human (tabulate), CSV and JSON lines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

__all__ = [
    "claims_of",
    "format_records",
    "reproduction_table",
    "reproduction_wide",
    "verdict_counts",
    "verdict_notes",
]


def _num(value: Any, fmt: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return format(value * scale, fmt)


def varying_params(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Option keys whose values differ between records of the same task (grids, seeds)."""
    keys: set[str] = set()
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_task.setdefault(rec["task"], []).append(rec)
    for group in by_task.values():
        for key in {k for r in group for k in (r.get("params") or {})}:
            if len({json.dumps((r.get("params") or {}).get(key)) for r in group}) > 1:
                keys.add(key)
    if len({r.get("seed") for r in records}) > 1:
        keys.add("seed")
    return sorted(keys)


def _options(rec: Mapping[str, Any], keys: Sequence[str]) -> str:
    params = {**(rec.get("params") or {}), "seed": rec.get("seed")}
    return " ".join(f"{k}={params[k]}" for k in keys if k in params)


def _row(rec: Mapping[str, Any], keys: Sequence[str] = ()) -> dict[str, str]:
    nfe = "-" if rec.get("nfe_forward") is None else f"{rec['nfe_forward']}/{rec['nfe_backward']}"
    median, iqr = rec.get("time_median_s"), rec.get("time_iqr_s")
    steady = "-" if median is None else f"{median * 1e3:.3g} ± {iqr * 1e3:.2g}"
    row = {"task": rec["task"], "impl": rec["impl"]}
    if keys:
        row["options"] = _options(rec, keys)
    return row | {
        "status": rec["status"],
        "grad rel err": _num(rec.get("grad_rel_error"), ".1e"),
        "first call s": _num(rec.get("time_first_s"), ".3g"),
        "vg median ± IQR ms": steady,
        "NFE fwd/bwd": nfe,
        "RSS MB first/steady": "-"
        if rec.get("peak_rss_bytes") is None
        else f"{rec['peak_rss_first_call_bytes'] * 1e-6:.1f}/{rec['peak_rss_bytes'] * 1e-6:.1f}",
        "framework MB": _num(rec.get("peak_framework_bytes"), ".3f", 1e-6),
        "loss init": _num(rec.get("loss_init"), ".3g"),
        "loss final": _num(rec.get("train_loss_final"), ".3g"),
        "train s": _num(rec.get("train_time_s"), ".3g"),
        "to target it/s": _to_target(rec),
        "stopped": rec.get("train_stopped") or "-",
    }


def _to_target(rec: Mapping[str, Any]) -> str:
    """Iterations and wall seconds to the training target, `-` when it was not reached."""
    iters, secs = rec.get("train_iters_to_target"), rec.get("train_time_to_target_s")
    return "-" if iters is None or secs is None else f"{iters}/{secs:.3g}"


def claims_of(task: str) -> tuple[Any, ...]:
    """The claims a registered task declares; none for a task this install does not know."""
    from harness.core import registry

    registry.discover()
    cls = registry.TASKS.get(task)
    return cls.claims if cls is not None else ()


def reproduction_wide(records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, str]], list[str]]:
    """One row per (task, claim): its section, the document's figure, the test, then per
    back-end the verdict and the measured figure.  Returns the rows and the back-ends."""
    from harness.core.claims import verdict_rows

    impls = sorted({str(r.get("impl")) for r in records})
    table: dict[tuple[str, str], dict[str, str]] = {}
    for row in verdict_rows(records, claims_of):
        out = table.setdefault(
            (row["task"], row["claim"]),
            {
                "task": row["task"],
                "claim": row["claim"],
                "source": row["source"],
                "document": row["document"],
                "test": row["test"],
            },
        )
        measured = f" {row['measured']}" if row["measured"] else ""
        out[row["impl"]] = f"{row['verdict']}{measured}"
    rows = [{**r, **{i: r.get(i, "") for i in impls}} for r in table.values()]
    return rows, impls


def reproduction_table(records: Sequence[Mapping[str, Any]], tablefmt: str = "github") -> str:
    """ "Does it reproduce the source?": task x claim x back-end (see `reproduction_wide`)."""
    rows, _ = reproduction_wide(records)
    return tabulate(rows, headers="keys", tablefmt=tablefmt) if rows else ""


def verdict_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many claim x back-end verdicts of each kind the records hold."""
    from harness.core.claims import verdict_rows

    counts: dict[str, int] = {}
    for row in verdict_rows(records, claims_of):
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def verdict_notes(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per distinct note of a non-passing verdict (a finding, a budget)."""
    from harness.core.claims import verdict_rows

    notes = {}
    for row in verdict_rows(records, claims_of):
        if row["verdict"] != "PASS" and row["note"]:
            key = (row["task"], row["claim"], row["verdict"], row["note"])
            notes.setdefault(key, []).append(row["impl"])
    return [f"- {t} / {c}: {v} on {', '.join(i)}: {n}" for (t, c, v, n), i in notes.items()]


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
    keys = varying_params(records)
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
        tables.append(tabulate(table, headers="keys", tablefmt="github"))
    return tables


def _cell(value: Any) -> Any:
    return f"{value:.3g}" if isinstance(value, float) else value


def format_records(records: Sequence[Mapping[str, Any]], fmt: str = "table", *, verdicts: bool = True) -> str:
    """Records as `table` (human: the claims' verdicts unless `verdicts` is false, then the
    measurements, metrics and reasons), `csv` or `json` (JSON lines)."""
    if fmt == "json":
        return "\n".join(json.dumps(r) for r in records)
    if fmt == "csv":
        from harness.store.results import records_frame

        return records_frame(records).to_csv(index=False).rstrip("\n")
    keys = varying_params(records)
    parts = []
    if verdicts and (table := reproduction_table(records)):
        parts += ["Does it reproduce the source? (claims of the documents; measured value after the verdict)"]
        parts += ["", table, *(["", *notes] if (notes := verdict_notes(records)) else []), ""]
    parts += [tabulate([_row(r, keys) for r in records], headers="keys", tablefmt="github")]
    tables, found = _metrics_tables(records), text_metrics(records)
    if tables:
        parts += ["", "Metrics after training (task metrics; RMSEs against the noise-free truth):"]
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
