"""The report of a results folder (SPEC "Reports"): figures in `<dir>/figures/`, a
markdown summary `<dir>/report.md` and a self-contained `<dir>/report.html` (figures as
base64 data URIs, CSS inline: one file to mail or archive).

A figure that fails is one line in the report; the others and the tables still come out.
Every file is written atomically (a temporary file, then os.replace).
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.reporting import figures
from harness.reporting.tables import (
    format_records,
    metrics_by_task,
    reproduction_table,
    reproduction_wide,
    text_metrics,
    verdict_notes,
)
from harness.reporting.time_to_target_figure import time_to_target_figure
from harness.store.results import load_records, records_frame

__all__ = ["FigureResult", "build_figures", "write_report"]

log = logging.getLogger(__name__)

Record = Mapping[str, Any]

#: columns of the HTML summary table: (record field, header, scale)
SUMMARY_COLUMNS = (
    ("task", "task", None),
    ("impl", "back-end", None),
    ("seed", "seed", None),
    ("status", "status", None),
    ("grad_rel_error", "grad rel err", None),
    ("time_first_s", "first call s", None),
    ("time_median_s", "vg median ms", 1e3),
    ("time_iqr_s", "vg IQR ms", 1e3),
    ("nfe_forward", "NFE fwd", None),
    ("nfe_backward", "NFE bwd", None),
    ("peak_rss_first_call_bytes", "RSS first MB", 1e-6),
    ("peak_rss_bytes", "RSS steady MB", 1e-6),
    ("peak_framework_bytes", "framework MB", 1e-6),
    ("loss_init", "loss init", None),
    ("train_loss_final", "loss final", None),
    ("train_time_s", "train s", None),
)

CAPTIONS = {
    "trajectory": (
        "Trajectory of the trained model (dashed, one column per back-end, one row per state "
        "component) against the truth (black) for the first batch member; circles are the "
        "observations, the shaded band the training window. Outside it the model extrapolates "
        "backward and forward in time. The y-range is the truth's: a model that leaves the "
        "frame has diverged."
    ),
    "hamiltonian": (
        "Hamiltonian of the true trajectory (black) and of each trained neural ODE (left), and "
        "its drift |H(t) - H(t0)| from the initial energy on a log scale (right). The truth "
        "conserves H up to the solver's error; an MLP vector field does not."
    ),
    "time_to_target": (
        "Training loss against wall-clock time (log-log), one line per back-end, from the start "
        "of training (a JAX back-end's compilation of its step included). The dashed line is the "
        "task's target loss, where training stops; a dot marks when a back-end reached it; the "
        "dotted line is the time budget, after which a back-end's claims are NOT REACHED."
    ),
    "loss": (
        "Training loss per iteration (log scale), one line per back-end, the same initial "
        "weights and optimiser for all; with several seeds, the mean and a 95 % t-interval band. "
        "Lines that coincide mean the back-ends train identically."
    ),
    "bars": (
        "Per task and back-end: steady-state value-and-grad time (median, error bar: "
        "interquartile range), peak RSS of a steady-state call and of the first call (isolated "
        "process, over the baseline), framework-level peak memory, and the gradient's relative "
        "error against the reference; log scales; '0' marks a zero reading."
    ),
    "work_precision": (
        "Work-precision: gradient relative error against steady-state time (log-log) as the "
        "solver setting changes (rtol = atol for adaptive back-ends, step dt for RK4; each "
        "point labelled with it). Down and to the left is better."
    ),
    "memory_scaling": (
        "Peak memory against the integration horizon t1 (log-log): framework-level (left) and "
        "RSS (right). k is the least-squares slope of log memory against log t1 (memory ~ t1^k): "
        "about 0 for constant-memory methods, about 1 for methods that store every step."
    ),
    "pareto": (
        "Accuracy, time and memory together: gradient relative error against steady-state time, "
        "marker area growing with the logarithm of peak memory (framework-level), one colour per "
        "back-end (lighter shades: other settings of the same back-end). The grey staircase is "
        "the time-error Pareto front."
    ),
}

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1500px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #555; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e3e3e3; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; vertical-align: bottom; min-width: 4em; }
td:first-child, th:first-child, td.text, th.text { text-align: left; }
tr:hover td { background: #fafafa; }
.status-ok { color: #1a7f37; } .status-failed { color: #cf222e; font-weight: bold; }
.status-skipped { color: #9a6700; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; max-width: 1100px; }
ul.problems li { color: #cf222e; }
code { background: #f3f3f3; padding: 0 0.25em; }
"""


@dataclass
class FigureResult:
    """One figure of the report: the file, or why it could not be drawn."""

    name: str
    caption: str
    path: Path | None = None
    error: str | None = None


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# --------------------------------------------------------------------------- figures


def _figure_plan(
    records: Sequence[Record], directory: Path, out: Path
) -> list[tuple[str, str, Callable[[], Path | None]]]:
    """(name, caption, draw) for every figure the report tries, in report order."""
    plan: list[tuple[str, str, Callable[[], Path | None]]] = []
    for task in dict.fromkeys(str(r["task"]) for r in records):
        plan.append(
            (
                f"trajectory-{task}",
                f"{task}: {CAPTIONS['trajectory']}",
                lambda task=task: figures.trajectory_figure(records, directory, out, task),
            )
        )
        plan.append(
            (
                f"time-to-target-{task}",
                f"{task}: {CAPTIONS['time_to_target']}",
                lambda task=task: time_to_target_figure(records, out, task),
            )
        )
        if "pendulum" in task:
            plan.append(
                (
                    f"hamiltonian-{task}",
                    f"{task}: {CAPTIONS['hamiltonian']}",
                    lambda task=task: figures.hamiltonian_figure(records, directory, out, task),
                )
            )
    for name, draw in (
        ("loss", figures.loss_figure),
        ("bars", figures.bars_figure),
        ("work_precision", figures.work_precision_figure),
        ("memory_scaling", figures.memory_scaling_figure),
        ("pareto", figures.pareto_figure),
    ):
        plan.append((name, CAPTIONS[name], lambda draw=draw: draw(records, out)))
    return plan


def _plotting_missing() -> str | None:
    """Why no figure can be drawn here, or None."""
    missing = [m for m in ("matplotlib", "seaborn") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: pip install -e '.[report]'"
    return None


def build_figures(records: Sequence[Record], directory: Path) -> list[FigureResult]:
    """Draw every applicable figure into `<directory>/figures/`; a figure without data is
    left out, a failing one becomes a FigureResult with its error (and a log line)."""
    out = Path(directory) / "figures"
    if reason := _plotting_missing():
        return [FigureResult("figures", "", error=reason)]
    results = []
    for name, caption, draw in _figure_plan(records, Path(directory), out):
        try:
            path = draw()
        except Exception as exc:  # one broken figure must not stop the report
            log.warning("figure %s failed: %s", name, _one_line(exc))
            results.append(FigureResult(name, caption, error=_one_line(exc)))
            continue
        if path is not None:
            results.append(FigureResult(name, caption, path=Path(path)))
    return results


# --------------------------------------------------------------------------- numbers


def _number(value: Any) -> str:
    """A table cell: 3 significant digits, whole numbers in full, '–' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.3g}"


def varying_params(records: Sequence[Record]) -> dict[str, list[Any]]:
    """Parameters (task defaults filled in) that take two values or more among the records
    of one task: the axes of a grid, as {name: value per record}."""
    params = [figures.effective_params(r) for r in records]
    names = list(dict.fromkeys(k for p in params for k in p))
    varying = set()
    for task in {str(r["task"]) for r in records}:
        mine = [p for p, r in zip(params, records, strict=True) if r["task"] == task]
        for name in names:
            if len({json.dumps(p[name], default=str) for p in mine if name in p}) > 1:
                varying.add(name)
    return {name: [p.get(name) for p in params] for name in names if name in varying}


def summary_table(records: Sequence[Record]) -> Any:
    """The HTML summary as a DataFrame of strings: one row per record, units in headers;
    the parameters that vary between records follow the back-end."""
    import pandas as pd

    frame = records_frame(records)
    table = pd.DataFrame(index=frame.index)
    for field, header, scale in SUMMARY_COLUMNS:
        if field not in frame:
            continue
        column = frame[field]
        if scale is not None:
            column = pd.to_numeric(column, errors="coerce") * scale
        table[header] = [_number(v) for v in column]
        if field == "impl":
            for name, values in varying_params(records).items():
                table[name] = [_number(v) for v in values]
    if "seed" in table and frame["seed"].nunique(dropna=False) <= 1:
        table = table.drop(columns="seed")
    return table


def metrics_tables(records: Sequence[Record]) -> list[Any]:
    """Task metrics, one table per task (its numeric metrics), as strings."""
    import pandas as pd

    def row(r: Record, keys: list[str]) -> dict[str, str]:
        return {"task": r["task"], "back-end": r["impl"], **{k: _number(r["metrics"].get(k)) for k in keys}}

    return [pd.DataFrame([row(r, keys) for r in rows]) for _, rows, keys in metrics_by_task(records)]


# --------------------------------------------------------------------------- HTML


def _html_table(frame: Any, text_columns: Sequence[str] = ("task", "back-end", "status")) -> str:
    """A DataFrame of strings as an HTML table (escaped), status cells coloured."""
    head = "".join(
        f'<th class="{"text" if c in text_columns else ""}">{_breakable(str(c))}</th>' for c in frame.columns
    )
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column, value in row.items():
            classes = ["text"] if column in text_columns else []
            if column == "status":
                classes.append(f"status-{value}")
            cells.append(f'<td class="{" ".join(classes)}">{html.escape(str(value))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


def _breakable(name: str) -> str:
    """An escaped header that may wrap after underscores (metric names are long)."""
    return html.escape(name).replace("_", "_<wbr>")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figures_html(results: Sequence[FigureResult]) -> str:
    parts, number = [], 0
    for fig in results:
        if fig.path is None:
            continue
        number += 1
        name, caption = html.escape(fig.name), html.escape(fig.caption)
        parts.append(
            f'<figure id="{name}"><img alt="{name}" src="{_data_uri(fig.path)}">'
            f"<figcaption><b>Figure {number}.</b> {caption}</figcaption></figure>"
        )
    problems = [f for f in results if f.error]
    if problems:
        items = "".join(f"<li>{html.escape(f.name)}: {html.escape(str(f.error))}</li>" for f in problems)
        parts.append(f'<h3>Figures that could not be drawn</h3><ul class="problems">{items}</ul>')
    return "\n".join(parts) if parts else "<p>No figure applies to these records.</p>"


def _problems_html(records: Sequence[Record]) -> str:
    bad = [r for r in records if r.get("status") != "ok"]
    if not bad:
        return "<p>Every cell ran.</p>"
    return f"<ul>{''.join(_problem_item(r) for r in bad)}</ul>"


def _problem_item(record: Record) -> str:
    """One failed or skipped cell with its reason, as an HTML list item."""
    status = html.escape(str(record.get("status")))
    cell = html.escape(f"{record['task']} / {record['impl']}")
    reason = html.escape(str(record.get("reason") or "no reason recorded"))
    seed = html.escape(str(record.get("seed")))
    return f'<li><span class="status-{status}">{status}</span> <b>{cell}</b> (seed {seed}): {reason}</li>'


def _exponents_rows(records: Sequence[Record]) -> list[dict[str, str]]:
    """Fitted memory exponents as table rows (empty without a horizon sweep)."""
    exps = figures.memory_exponents(records)
    by_key: dict[tuple[str, str], dict[str, str]] = {}
    for (task, label, kind), k in exps.items():
        row = by_key.setdefault((task, label), {"task": task, "back-end": label})
        row[f"k ({kind})"] = f"{round(k, 2) + 0.0:.2f}"
    return list(by_key.values())


def provenance(directory: Path, records: Sequence[Record]) -> dict[str, Any]:
    """The run's environment: env.json of the folder, else the first record's `env`."""
    path = Path(directory) / "env.json"
    if path.is_file():
        try:
            env = json.loads(path.read_text())
            if isinstance(env, dict):
                return env
        except json.JSONDecodeError:
            pass
    return next((dict(r["env"]) for r in records if r.get("env")), {})


def _provenance_html(env: Mapping[str, Any], records: Sequence[Record]) -> str:
    rows = [(k, env.get(k)) for k in ("date", "git_commit", "python", "platform", "cpu", "cpu_count")]
    rows += [(f"threads: {k}", v) for k, v in (env.get("threads") or {}).items()]
    rows += [(f"version: {k}", v) for k, v in (env.get("versions") or {}).items()]
    runs = sorted(
        {
            (
                str(r.get("run_id")),
                str((r.get("env") or {}).get("git_commit")),
                str((r.get("env") or {}).get("date")),
            )
            for r in records
        }
    )
    if len(runs) > 1:
        rows += [(f"run {run_id}", f"commit {commit}, {date}") for run_id, commit, date in runs]
    body = "".join(
        f'<tr><td class="text">{html.escape(str(k))}</td><td class="text">{html.escape(str(v))}</td></tr>'
        for k, v in rows
        if v is not None
    )
    return f"<table><tbody>{body}</tbody></table>"


def _counts(records: Sequence[Record]) -> str:
    statuses = [str(r.get("status")) for r in records]
    parts = [f"{statuses.count(s)} {s}" for s in ("ok", "failed", "skipped") if s in statuses]
    return f"{len(records)} cells: " + ", ".join(parts)


def render_html(
    directory: Path, records: Sequence[Record], results: Sequence[FigureResult], env: Mapping[str, Any]
) -> str:
    """The whole report as one HTML document with everything inline."""
    title = f"Neural-ODE benchmark report: {Path(directory).resolve().name}"
    metrics = metrics_tables(records)
    found = text_metrics(records)
    exponents = _exponents_rows(records)
    import pandas as pd

    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(_counts(records))}. '
        f"Folder <code>{html.escape(str(directory))}</code>.</p>",
        *_reproduction_html(records),
        "<h2>Results</h2>",
        "<p>One row per cell (task, back-end, seed, options). vg = value-and-grad call; RSS over the "
        "baseline in an isolated process; framework = the framework's own figure.</p>",
        _html_table(summary_table(records)),
    ]
    if metrics:
        sections += [
            "<h3>Metrics after training (task metrics; RMSEs against the noise-free truth)</h3>",
            *[_html_table(table) for table in metrics],
        ]
    if found:
        items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in found)
        sections += ["<h3>What the fits found</h3>", f"<ul>{items}</ul>"]
    if exponents:
        sections += [
            "<h3>Memory exponents k (memory ~ t1^k)</h3>",
            _html_table(pd.DataFrame(exponents).fillna("–")),
        ]
    sections += ["<h2>Failed and skipped cells</h2>", _problems_html(records)]
    sections += ["<h2>Figures</h2>", _figures_html(results)]
    sections += ["<h2>Provenance</h2>", _provenance_html(env, records)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


REPRODUCTION_NOTE = (
    "Each row is one claim of a source document (section and figure), the document's figure, "
    "the test the harness applies, and per back-end the verdict with the measured value: PASS, "
    "FAIL, NOT REACHED (training stopped by its time budget first), KNOWN FAIL (the harness "
    "measures the opposite of the document: a finding, stated below), NO RESULT (the cell "
    "failed), SKIPPED."
)


def _reproduction_html(records: Sequence[Record]) -> list[str]:
    """The report's first section: the claims' verdicts, task x claim x back-end."""
    import pandas as pd

    rows, impls = reproduction_wide(records)
    if not rows:
        return []
    notes = "".join(f"<li>{html.escape(line[2:])}</li>" for line in verdict_notes(records))
    return [
        "<h2>Does it reproduce the source?</h2>",
        f"<p>{html.escape(REPRODUCTION_NOTE)}</p>",
        _html_table(pd.DataFrame(rows), text_columns=("task", "claim", "source", "document", "test", *impls)),
        f"<ul>{notes}</ul>" if notes else "",
    ]


# --------------------------------------------------------------------------- markdown


def render_markdown(directory: Path, records: Sequence[Record], results: Sequence[FigureResult]) -> str:
    """The summary table of `format_records`, memory exponents and the list of figures."""
    lines = [
        f"# Neural-ODE benchmark report: {Path(directory).resolve().name}",
        "",
        _counts(records) + ".",
        "",
    ]
    if table := reproduction_table(records):
        notes = verdict_notes(records)
        lines += ["## Does it reproduce the source?", "", REPRODUCTION_NOTE, "", table, ""]
        lines += [*notes, ""] if notes else []
    lines += ["## Results", "", format_records(records, verdicts=False)]
    exponents = _exponents_rows(records)
    if exponents:
        from tabulate import tabulate

        lines += [
            "",
            "## Memory exponents k (memory ~ t1^k)",
            "",
            tabulate(exponents, headers="keys", tablefmt="github"),
        ]
    lines += ["", "## Figures", ""]
    drawn = [f for f in results if f.path is not None]
    for number, fig in enumerate(drawn, start=1):
        rel = fig.path.relative_to(directory) if fig.path.is_relative_to(directory) else fig.path
        lines += [f"![{fig.name}]({rel.as_posix()})", "", f"*Figure {number}.* {fig.caption}", ""]
    if not drawn:
        lines += ["No figure applies to these records.", ""]
    problems = [f for f in results if f.error]
    if problems:
        lines += ["Figures that could not be drawn:", ""]
        lines += [f"- {f.name}: {f.error}" for f in problems]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- entry point


def write_report(directory: Path, records: list[dict] | None = None) -> dict[str, Path]:
    """Write figures, `report.md` and `report.html` for a results folder.

    Returns the written paths: "markdown", "html", and one entry per figure under its
    name (e.g. "loss", "trajectory-double_pendulum").  `records` default to the folder's
    records.jsonl.
    """
    directory = Path(directory)
    if records is None:
        records = load_records(directory)
    results = build_figures(records, directory)
    env = provenance(directory, records)
    md = _atomic_write(directory / "report.md", render_markdown(directory, records, results))
    page = _atomic_write(directory / "report.html", render_html(directory, records, results, env))
    paths = {"markdown": md, "html": page}
    paths.update({f.name: f.path for f in results if f.path is not None})
    return paths
