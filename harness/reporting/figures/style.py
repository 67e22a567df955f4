"""Styling and saving shared by the figures: seaborn's whitegrid style applied locally,
one colour per back-end, constrained-layout figures, a legend below the panels, and
atomic PNG files.

pyplot is never used (no global figure state, no interactive back-end); matplotlib and
seaborn are imported inside the functions, so the harness works without the `report`
extra.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.reporting.figures.records import GroupKey, unique
from harness.store.atomic import write_with_atomic

__all__ = ["DPI", "group_colours", "legend_below", "new_figure", "palette", "save_figure", "slug", "style"]

#: resolution of the PNG files
DPI = 110


@contextlib.contextmanager
def style() -> Iterator[None]:
    """seaborn's whitegrid style, locally (rcParams are restored afterwards), every text
    drawn as it is (`text.parse_math` off: a `$` in a back-end name or option value is
    not matplotlib math text, which dropped figures)."""
    import matplotlib as mpl
    import seaborn as sns

    rc: dict[Any, Any] = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    rc.update({"axes.titlesize": 11, "legend.fontsize": 8.5, "legend.title_fontsize": 9})
    # names, options and reasons are user text: plain text, never math (`$...$`)
    rc["text.parse_math"] = False
    with mpl.rc_context(rc):
        yield


#: the built-in back-ends, each with its own colour of seaborn's colour-blind palette, so a
#: back-end has the same colour in every report whatever else ran beside it
KNOWN_BACKENDS = (
    "jax-checkpoint",
    "numpy-adjoint",
    "rk4-unrolled",
    "torch-adjoint",
    "torch-direct",
    "jax-backsolve",
)


def palette(impls: Iterable[str]) -> dict[str, Any]:
    """One colour per back-end, the same in every figure and every report: a built-in
    back-end's is fixed (`KNOWN_BACKENDS`), another's (a plugin's) is picked from a second
    palette by a hash of its name, the next free one when two would collide."""
    import hashlib

    import seaborn as sns

    fixed = sns.color_palette("colorblind", 10)
    others = sns.color_palette("husl", 16)
    colours: dict[str, Any] = {}
    taken: set[int] = set()
    for name in sorted(set(impls)):
        if name in KNOWN_BACKENDS:
            colours[name] = fixed[KNOWN_BACKENDS.index(name)]
            continue
        slot = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(others)
        while slot in taken and len(taken) < len(others):
            slot = (slot + 1) % len(others)
        taken.add(slot)
        colours[name] = others[slot]
    return colours


def _shade(colour: Any, index: int, count: int) -> tuple[float, float, float]:
    """`colour` lightened for the `index`-th of `count` groups of one back-end."""
    rgb = np.asarray(colour[:3], dtype=float)
    mix = 0.0 if count <= 1 else 0.6 * index / (count - 1)
    r, g, b = (float(c) for c in rgb * (1 - mix) + mix)
    return r, g, b


def group_colours(keys: Sequence[GroupKey], base: Mapping[str, Any]) -> dict[GroupKey, Any]:
    """Back-end colour per group, lighter for each further group of the same (task,
    back-end)."""
    colours = {}
    for task, impl in unique((k[0], k[1]) for k in keys):
        members = [k for k in keys if (k[0], k[1]) == (task, impl)]
        for i, key in enumerate(members):
            colours[key] = _shade(base.get(impl, (0.3, 0.3, 0.3)), i, len(members))
    return colours


def new_figure(
    n_panels: int, ncols: int, width: float, height: float, **kwargs: Any
) -> tuple[Any, list[Any]]:
    """A constrained-layout Figure with `n_panels` axes on a grid (surplus axes removed)."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False, **kwargs).ravel())
    for ax in axes[n_panels:]:
        fig.delaxes(ax)
    return fig, axes[:n_panels]


def save_figure(fig: Any, path: Path) -> Path:
    """Write `fig` as PNG to `path` atomically (a temporary file, fsync, os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_with_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI))


def legend_below(fig: Any, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """One legend under the panels, with as many columns as the figure's width holds."""
    if not handles:
        return
    width_pt = fig.get_figwidth() * 72
    entry_pt = 30 + 5.2 * max(len(str(label)) for label in labels)
    ncols = max(1, min(len(handles), int(width_pt // entry_pt)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)


def slug(name: str) -> str:
    """`name` with every character other than letters, digits, `-_.` replaced by `_`."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
