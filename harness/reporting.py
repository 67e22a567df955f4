"""Tables of a results folder: human (tabulate), CSV and JSON lines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

__all__ = ["format_records"]


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
    }


def _metrics_table(records: Sequence[Mapping[str, Any]]) -> str:
    keys = varying_params(records)
    rows = [
        {
            "task": r["task"],
            "impl": r["impl"],
            **({"options": _options(r, keys)} if keys else {}),
            **{k: f"{v:.3g}" if isinstance(v, float) else v for k, v in (r.get("metrics") or {}).items()},
        }
        for r in records
        if r.get("metrics")
    ]
    return tabulate(rows, headers="keys", tablefmt="github") if rows else ""


def format_records(records: Sequence[Mapping[str, Any]], fmt: str = "table") -> str:
    """Records as `table` (human, with metrics and reasons), `csv` or `json` (JSON lines)."""
    if fmt == "json":
        return "\n".join(json.dumps(r) for r in records)
    if fmt == "csv":
        from harness.results import records_frame

        return records_frame(records).to_csv(index=False).rstrip("\n")
    keys = varying_params(records)
    parts = [tabulate([_row(r, keys) for r in records], headers="keys", tablefmt="github")]
    metrics = _metrics_table(records)
    if metrics:
        parts += ["", "Metrics after training (task metrics; RMSEs against the noise-free truth):", metrics]
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
