"""Figure of `harness study solver-claims` (`solver_claims_steps.png`): the steps of joint
and per-sample step control against batch size on Van der Pol (the torchode paper's claim),
and, where measured, the PID controller's saving over the integral controller against mu."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.reporting.figures.style import new_figure, save_figure, style

__all__ = ["solver_claims_figure"]

#: batch-panel lines: (field of a row, label, marker)
_LINES = (
    ("torchdiffeq_joint_steps", "torchdiffeq, batch as one system", "o-"),
    ("torchode_joint_steps", "torchode, batch flattened into one sample", "s--"),
    ("torchode_per_sample_steps_max", "torchode per-sample, slowest sample", "^-"),
    ("torchode_per_sample_steps_mean", "torchode per-sample, mean", "v:"),
)


def solver_claims_figure(
    batch: Sequence[Mapping[str, Any]], controller: Sequence[Mapping[str, Any]], out_dir: Path, *, title: str
) -> Path | None:
    """Steps against batch size (log batch axis), one line per kind of step control; beside it the
    PID's saving ``1 - PID steps / integral steps`` against mu, where measured.  None when
    neither was measured."""
    from matplotlib.ticker import NullFormatter

    panels = int(bool(batch)) + int(bool(controller))
    if not panels:
        return None
    with style():
        fig, axes = new_figure(panels, 2, 5.6, 4.0)
        if batch:
            ax = axes[0]
            sizes = [r["batch"] for r in batch]
            for field, label, marker in _LINES:
                ax.plot(sizes, [r[field] for r in batch], marker, lw=1.6, ms=5, label=label)
            ax.set(xscale="log", xlabel="batch size", ylabel="solver steps (accepted + rejected)")
            ax.set_ylim(bottom=0)
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(title)
            ax.legend(loc="upper left", fontsize="small")
        if controller:
            ax = axes[-1]
            mus = [r["mu"] for r in controller]
            ax.plot(mus, [100 * r["pid_saving"] for r in controller], "o-", lw=1.6, ms=5, color="C4")
            ax.axhline(0.0, color="0.4", lw=0.8)
            ax.set(xscale="log", xlabel="mu", ylabel="PID saving over integral, % of steps")
            ax.set_xticks(mus, [f"{m:g}" for m in mus])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title("torchode: PID against integral controller")
        return save_figure(fig, Path(out_dir) / "solver_claims_steps.png")
