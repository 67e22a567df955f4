"""Merge several results folders into one table and one figure, with the package versions
of each run as columns: the comparison across library versions (`tox -m compare`).

    python -m harness.store.merge DIR [DIR ...] --out FILE.csv [--figure FILE.png]

A DIR is a results folder (it holds `records.jsonl`) or a folder of results folders.
Every record keeps its `env.versions`; each package becomes a `version.<name>` column,
and `versions` names the packages whose versions differ between the merged runs (the
hue of the figure).  The markdown table goes to standard output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import OneLineParser, UsageError, error_line
from harness.store.atomic import write_text_atomic, write_with_atomic
from harness.store.paths import check_output_file, path_argument

__all__ = ["find_runs", "main", "merge_figure", "merge_runs", "merge_table"]

#: columns of the printed table, in order (a missing one is left out)
TABLE_COLUMNS = (
    "source",
    "task",
    "impl",
    "versions",
    "status",
    "grad_rel_error",
    "time_first_s",
    "time_median_ms",
    "nfe_forward",
    "nfe_backward",
    "peak_rss_mb",
)


def find_runs(paths: Iterable[Path | str]) -> list[Path]:
    """Results folders under `paths`: each path itself if it holds `records.jsonl`, else
    its subfolders that do (sorted).  A path with none is a one-line UsageError."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if (path / "records.jsonl").exists():  # load_records says what is wrong with it
            runs.append(path)
            continue
        found = sorted(p.parent for p in path.glob("*/records.jsonl")) if path.is_dir() else []
        if not found:
            raise UsageError(f"no results folder at '{path}' (no records.jsonl in it or its subfolders)")
        runs += found
    return list(dict.fromkeys(runs))


def _varying(versions: Sequence[dict[str, str]]) -> list[str]:
    """Packages installed at more than one version among `versions` (a package missing
    from a run, such as torch in a JAX-only environment, does not count)."""
    names = sorted({name for v in versions for name in v})
    return [name for name in names if len({v[name] for v in versions if name in v}) > 1]


def _labels(impls: Sequence[str], versions: Sequence[dict[str, str]]) -> list[str]:
    """For each record, the "name version" pairs of the packages whose versions differ
    between the records of the same back-end, else "same versions"."""
    varying = {
        impl: _varying([v for i, v in zip(impls, versions, strict=True) if i == impl]) for impl in impls
    }
    return [
        ", ".join(f"{name} {v[name]}" for name in varying[impl] if name in v) or "same versions"
        for impl, v in zip(impls, versions, strict=True)
    ]


def merge_runs(dirs: Iterable[Path | str]) -> Any:
    """One pandas DataFrame of every record of every results folder in `dirs`.

    **Arguments:** `dirs`: results folders, or folders of results folders.

    **Returns:** the flat table of `harness.store.results.records_frame` plus `source` (the
    folder name), `version.<package>` for every package a record names, `versions` (the
    packages whose versions differ between the runs of the same back-end, as "name
    version" pairs, else "same versions") and the derived `time_median_ms` and
    `peak_rss_mb`.
    """
    import pandas as pd

    from harness.store.results import load_records, records_frame

    frames, run_versions = [], []
    for run in find_runs(dirs):
        records = load_records(run)
        if not records:
            continue
        frame = records_frame(records)
        frame.insert(0, "source", run.name)
        versions = [dict((r.get("env") or {}).get("versions") or {}) for r in records]
        for name in sorted({n for v in versions for n in v}):
            frame[f"version.{name}"] = [v.get(name) for v in versions]
        frames.append(frame)
        run_versions += versions
    if not frames:
        raise UsageError("the results folders hold no records")
    merged = pd.concat(frames, ignore_index=True, sort=False)
    merged["versions"] = _labels(list(merged["impl"]), run_versions)
    for column, source, scale in (
        ("time_median_ms", "time_median_s", 1e3),
        ("peak_rss_mb", "peak_rss_bytes", 1e-6),
    ):
        if source in merged:
            numbers: Any = pd.to_numeric(merged[source], errors="coerce")  # a Series of a Series
            merged[column] = numbers * scale
    return merged


def merge_table(frame: Any) -> str:
    """The main columns of a merged frame as a markdown table."""
    from tabulate import tabulate

    columns = [c for c in TABLE_COLUMNS if c in frame]
    view = frame[columns].sort_values([c for c in ("task", "impl", "versions") if c in columns])
    return tabulate(view, headers="keys", tablefmt="github", showindex=False, floatfmt=".3g")


def merge_figure(frame: Any, path: Path | str) -> Path:
    """One row of panels per back-end: steady-state value-and-grad time (linear) and
    gradient error (log) per task, one bar per version set (per run where all versions
    agree).  seaborn
    on matplotlib's Agg canvas, no pyplot state; returns the PNG path.  Names are drawn
    as plain text (`text.parse_math` off: a `$` in a name is not math)."""
    import matplotlib as mpl

    with mpl.rc_context({"text.parse_math": False}):
        return _draw_merge_figure(frame, path)


def _draw_merge_figure(frame: Any, path: Path | str) -> Path:
    import seaborn as sns
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = frame[frame["status"] == "ok"].copy()
    if ok.empty:
        raise UsageError("no successful record to draw")
    panels = [
        (column, label)
        for column, label in (
            ("time_median_ms", "value-and-grad median (ms)"),
            ("grad_rel_error", "gradient relative error"),
        )
        if column in ok and ok[column].notna().any()
    ]
    groups = [(impl, group.copy()) for impl, group in ok.groupby("impl", sort=True)]
    heights = [1.2 + 0.3 * g["task"].nunique() * g["source"].nunique() for _, g in groups]
    fig = Figure(figsize=(5.5 * len(panels) + 3.5, sum(heights) + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), len(panels), squeeze=False, gridspec_kw={"height_ratios": heights})
    for row, (impl, group) in enumerate(groups):
        hue = "versions" if group["versions"].nunique() > 1 else "source"
        order = sorted(group[hue].unique())
        for col, (column, label) in enumerate(panels):
            ax = axes[row][col]
            sns.barplot(
                data=group, y="task", x=column, hue=hue, hue_order=order, ax=ax, errorbar=None, orient="h"
            )
            if column == "grad_rel_error":  # spans orders of magnitude; times are compared within a row
                ax.set_xscale("log")
                label += " (log scale)"
            ax.set_xlabel(label)
            ax.set_ylabel(impl if col == 0 else "")
            if col == len(panels) - 1:
                sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", title=hue)
            elif ax.get_legend() is not None:
                ax.get_legend().remove()
    fig.suptitle("Across library versions (one row per back-end)")
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_with_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    except OSError as exc:
        raise UsageError(f"cannot write --figure '{path}': {exc.strerror or exc}") from None
    return path


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m harness.store.merge", description="Merge results folders into one table and figure."
    )
    parser.add_argument("dirs", nargs="+", type=path_argument, help="results folders, or folders of them")
    parser.add_argument("--out", type=path_argument, required=True, help="merged table (CSV)")
    parser.add_argument(
        "--figure", type=path_argument, default=None, help="figure (PNG; default: --out with .png)"
    )
    args = parser.parse_args(argv)
    try:
        import importlib.util

        drawn = importlib.util.find_spec("seaborn") is not None
        figure = args.figure or args.out.with_suffix(".png")
        check_output_file(args.out, "--out")  # before anything is read
        if drawn:
            check_output_file(figure, "--figure")
        frame = merge_runs(args.dirs)
        try:
            write_text_atomic(args.out, frame.to_csv(index=False))
        except OSError as exc:
            raise UsageError(f"cannot write --out '{args.out}': {exc.strerror or exc}") from None
        print(merge_table(frame))
        written = [str(args.out)]
        if drawn:
            written.append(str(merge_figure(frame, figure)))
        else:
            print("figure skipped: seaborn is not installed (pip install -e '.[report]')", file=sys.stderr)
    except UsageError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    print(f"\nmerged {frame['source'].nunique()} run(s), {len(frame)} record(s): {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
