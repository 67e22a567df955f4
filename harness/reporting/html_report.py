"""The report of a results folder (SPEC "Reports"): figures in `<dir>/figures/`, a
markdown summary `<dir>/report.md` and a self-contained `<dir>/report.html` (figures as
base64 data URIs, CSS inline: one file to mail or archive).

The figures are the registered ones (`harness.reporting.figures.FIGURES`, each with its
caption). A figure that fails is one line in the report; the others and the tables still
come out. The claims' verdicts are computed once per report, from the records (see
`harness.reporting.tables.Verdicts`). Every file is written atomically.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError, one_line
from harness.reporting import figures
from harness.reporting.answer import answer_html, answer_lines
from harness.reporting.html_parts import CSS, cell_number, html_table
from harness.reporting.markdown import markdown_table
from harness.reporting.retarget import step_time_s
from harness.reporting.settings import varying_settings
from harness.reporting.tables import (
    ClaimsByTask,
    Verdicts,
    format_records,
    metrics_by_task,
    metrics_reference,
    text_metrics,
)
from harness.store.atomic import write_text_atomic
from harness.store.paths import read_regular
from harness.store.results import load_env, load_records, records_frame

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
    ("time_median_trained_s", "vg ms at trained", 1e3),
    ("nfe_forward_trained", "NFE fwd at trained", None),
    ("nfe_backward_trained", "NFE bwd at trained", None),
    ("grad_rel_error_trained", "grad rel err at trained", None),
    ("peak_rss_first_call_bytes", "RSS first MB", 1e-6),
    ("peak_rss_bytes", "RSS steady MB", 1e-6),
    ("peak_framework_bytes", "framework MB", 1e-6),
    ("loss_init", "loss init", None),
    ("train_loss_final", "loss final", None),
    ("train_time_s", "train s (warm)", None),
    ("train_step_s", "train step ms", 1e3),
)


@dataclass
class FigureResult:
    """One figure of the report: the file, or why it could not be drawn."""

    name: str
    caption: str
    path: Path | None = None
    error: str | None = None


# --------------------------------------------------------------------------- figures


def _plotting_missing() -> str | None:
    """Why no figure can be drawn here, or None."""
    missing = [m for m in ("matplotlib", "seaborn") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: pip install -e '.[report]'"
    return None


def build_figures(records: Sequence[Record], directory: Path) -> list[FigureResult]:
    """Draw every registered figure that applies into `<directory>/figures/`; a figure
    without data is left out, a failing one becomes a FigureResult with its error (and a
    log line)."""
    out = Path(directory) / "figures"
    if reason := _plotting_missing():
        return [FigureResult("figures", "", error=reason)]
    results = []
    for planned in figures.figure_plan(records, Path(directory), out):
        try:
            path = planned.draw()
        except Exception as exc:  # one broken figure must not stop the report
            log.warning("figure %s failed: %s", planned.name, one_line(exc))
            results.append(FigureResult(planned.name, planned.caption, error=one_line(exc)))
            continue
        if path is not None:
            results.append(FigureResult(planned.name, planned.caption, path=Path(path)))
    return results


# --------------------------------------------------------------------------- numbers


def summary_table(records: Sequence[Record]) -> Any:
    """The HTML summary as a DataFrame of strings: one row per record, units in headers;
    the parameters that vary between records follow the back-end."""
    import pandas as pd

    frame = records_frame(records)
    frame["train_step_s"] = [step_time_s(r) for r in records]  # from the stored time history
    table = pd.DataFrame(index=frame.index)
    for field, header, scale in SUMMARY_COLUMNS:
        if field not in frame:
            continue
        column: Any = frame[field]
        if scale is not None:
            numeric: Any = pd.to_numeric(column, errors="coerce")
            column = numeric * scale
        if field == "time_iqr_s" and "repeats" in frame:  # one call has no spread
            repeats: Any = pd.to_numeric(frame["repeats"], errors="coerce")
            column = column.where(repeats > 1)
        table[header] = [cell_number(v) for v in column]
        if field == "impl":
            for name, values in varying_settings(records).items():
                table[name] = [cell_number(v) for v in values]
    if "seed" in table and frame["seed"].nunique(dropna=False) <= 1:
        table = table.drop(columns="seed")
    return table


def metrics_tables(records: Sequence[Record]) -> list[Any]:
    """Task metrics, one table per task (its numeric metrics), as strings."""
    import pandas as pd

    def row(r: Record, keys: list[str]) -> dict[str, str]:
        return {
            "task": r["task"],
            "back-end": r["impl"],
            **{k: cell_number(r["metrics"].get(k)) for k in keys},
        }

    return [pd.DataFrame([row(r, keys) for r in rows]) for _, rows, keys in metrics_by_task(records)]


# --------------------------------------------------------------------------- HTML


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
    env = load_env(directory)  # a corrupt env.json: one line naming it
    if env is not None:
        return env
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
    directory: Path,
    records: Sequence[Record],
    results: Sequence[FigureResult],
    env: Mapping[str, Any],
    verdicts: Verdicts | None = None,
) -> str:
    """The whole report as one HTML document with everything inline (`verdicts`: those
    of the records, computed already)."""
    verdicts = verdicts if verdicts is not None else Verdicts.of(records)
    title = f"Neural-ODE benchmark report: {Path(directory).resolve().name}"
    metrics = metrics_tables(records)
    found = text_metrics(records)
    exponents = _exponents_rows(records)
    import pandas as pd

    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(_counts(records))}. '
        f"Folder <code>{html.escape(str(directory))}</code>.</p>",
        *_reproduction_html(verdicts),
        *answer_html(records),
        *_study_claims_html(directory),
        "<h2>Results</h2>",
        "<p>One row per cell (task, back-end, seed, options). vg = value-and-grad call; RSS over the "
        "baseline in an isolated process; framework = the framework's own figure.</p>",
        html_table(summary_table(records)),
    ]
    if metrics:
        sections += [
            f"<h3>Metrics after training (task metrics; RMSEs against {metrics_reference(records)})</h3>",
            *[html_table(table) for table in metrics],
        ]
    if found:
        items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in found)
        sections += ["<h3>What the fits found</h3>", f"<ul>{items}</ul>"]
    if exponents:
        sections += [
            "<h3>Memory exponents k (memory ~ t1^k)</h3>",
            html_table(pd.DataFrame(exponents).fillna("–")),
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
    "FAIL (on a converged model), KNOWN FAIL (the harness measures the opposite of the "
    "document on a converged model: a finding, stated below), NOT CONVERGED (the claim fails "
    "but training did not converge, so the model is no evidence: how far it got is stated "
    "below), NO RESULT (the cell failed), SKIPPED. Over several seeds a cell shows the shared "
    "verdict or MIXED, how many seeds passed, and the measured median [min, max]."
)


#: a study's verdicts on claims about the methods (not about one task), in its folder:
#: a JSON list of rows {"verdict", "claim", "source", "test", "measured", ...}
STUDY_CLAIMS_FILE = "study_claims.json"
STUDY_CLAIMS_NOTE = (
    "Claims of the source documents about the gradient methods themselves, judged by the "
    "study that wrote this folder from all of its cells (thresholds fixed before the run)."
)
_STUDY_CLAIM_COLUMNS = ("verdict", "claim", "source", "test", "measured")


def study_claims(directory: Path) -> list[dict[str, str]]:
    """The rows of the folder's `STUDY_CLAIMS_FILE` (none without one), measured values
    written with three significant digits."""
    path = Path(directory) / STUDY_CLAIMS_FILE
    if not (path.exists() or path.is_symlink()):
        return []
    try:
        found = json.loads(read_regular(path, "study claims file"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UsageError(f"corrupt study claims file '{path}': it is not JSON") from None
    if not isinstance(found, list) or not all(isinstance(row, dict) for row in found):
        raise UsageError(f"corrupt study claims file '{path}': it is not a list of objects")
    rows = []
    for row in found:
        value = row.get("measured")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UsageError(f"corrupt study claims file '{path}': a measured value is not a number")
        rows.append(
            {k: str(row.get(k, "")) for k in _STUDY_CLAIM_COLUMNS}
            | {"measured": "-" if value is None else format(float(value), ".3g")}
        )
    return rows


def _study_claims_html(directory: Path) -> list[str]:
    import pandas as pd

    rows = study_claims(directory)
    if not rows:
        return []
    return [
        "<h2>Claims about the methods</h2>",
        f"<p>{html.escape(STUDY_CLAIMS_NOTE)}</p>",
        html_table(pd.DataFrame(rows), text_columns=_STUDY_CLAIM_COLUMNS),
    ]


def _reproduction_html(verdicts: Verdicts) -> list[str]:
    """The report's first section: the claims' verdicts, task x claim x back-end."""
    import pandas as pd

    rows, impls = verdicts.wide(), verdicts.impls
    if not rows:
        return []
    notes = "".join(f"<li>{html.escape(line[2:])}</li>" for line in verdicts.notes())
    return [
        "<h2>Does it reproduce the source?</h2>",
        f"<p>{html.escape(REPRODUCTION_NOTE)}</p>",
        html_table(
            pd.DataFrame(rows),
            text_columns=("task", "claim", "source", "document", "test", *impls),
            wrap={"claim": "wrap-s", "source": "wrap-s", "document": "wrap-m", "test": "wrap-m"}
            | {impl: "wrap-xs" for impl in impls},  # the verdicts in view at 1400 px
        ),
        f"<ul>{notes}</ul>" if notes else "",
    ]


# --------------------------------------------------------------------------- markdown


def render_markdown(
    directory: Path,
    records: Sequence[Record],
    results: Sequence[FigureResult],
    verdicts: Verdicts | None = None,
) -> str:
    """The claims' verdicts, the summary table of `format_records`, memory exponents and
    the list of figures (`verdicts`: those of the records, computed already)."""
    verdicts = verdicts if verdicts is not None else Verdicts.of(records)
    lines = [
        f"# Neural-ODE benchmark report: {Path(directory).resolve().name}",
        "",
        _counts(records) + ".",
        "",
    ]
    if table := verdicts.table():
        notes = verdicts.notes()
        lines += ["## Does it reproduce the source?", "", REPRODUCTION_NOTE, "", table, ""]
        lines += [*notes, ""] if notes else []
    if answer := answer_lines(records):
        lines += ["## Which back-end?", "", *answer[1:], ""]
    if rows := study_claims(directory):
        lines += [
            "## Claims about the methods",
            "",
            STUDY_CLAIMS_NOTE,
            "",
            markdown_table(rows, headers="keys", tablefmt="github"),
            "",
        ]
    lines += ["## Results", "", format_records(records, verdicts=False)]
    exponents = _exponents_rows(records)
    if exponents:
        lines += [
            "",
            "## Memory exponents k (memory ~ t1^k)",
            "",
            markdown_table(exponents, headers="keys", tablefmt="github"),
        ]
    lines += ["", "## Figures", ""]
    drawn = [(f, f.path) for f in results if f.path is not None]
    for number, (fig, path) in enumerate(drawn, start=1):
        rel = path.relative_to(directory) if path.is_relative_to(directory) else path
        lines += [f"![{fig.name}]({rel.as_posix()})", "", f"*Figure {number}.* {fig.caption}", ""]
    if not drawn:
        lines += ["No figure applies to these records.", ""]
    problems = [f for f in results if f.error]
    if problems:
        lines += ["Figures that could not be drawn:", ""]
        lines += [f"- {f.name}: {f.error}" for f in problems]
    return "\n".join(_markdown_text(line) for line in lines).rstrip() + "\n"


def _markdown_text(line: str) -> str:
    """A line of the markdown report with `&`, `<` and `>` as entities (names, reasons and
    options are user input, and markdown passes raw HTML through); image lines as they are."""
    if line.startswith("!["):
        return line
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- entry point


def write_report(
    directory: Path,
    records: Sequence[Record] | None = None,
    *,
    claims: ClaimsByTask | None = None,
    verdicts: Verdicts | None = None,
) -> dict[str, Path]:
    """Write figures, `report.md` and `report.html` for a results folder.

    Returns the written paths: "markdown", "html", and one entry per figure under its
    name (e.g. "loss", "trajectory-double_pendulum").  `records` default to the folder's
    records.jsonl.  The claims' verdicts are `verdicts` when given, else computed once
    from the records, re-judged with `claims` (task name -> claims as declared now) for
    the tasks it names (see `harness.reporting.tables.Verdicts.of`).
    """
    directory = Path(directory)
    if records is None:
        records = load_records(directory)
    verdicts = verdicts if verdicts is not None else Verdicts.of(records, claims)
    results = build_figures(records, directory)
    env = provenance(directory, records)
    md = write_text_atomic(directory / "report.md", render_markdown(directory, records, results, verdicts))
    page = write_text_atomic(
        directory / "report.html", render_html(directory, records, results, env, verdicts)
    )
    paths = {"markdown": md, "html": page}
    paths.update({f.name: f.path for f in results if f.path is not None})
    return paths
