"""Figure: test accuracy after every epoch, one line per task and back-end (`accuracy.png`).

For classifiers trained on mini-batches (`odenet_mnist`, `resnet_mnist`: 003 §4, Figs. 3-4,
"Testing Accuracy by Epoch"); drawn from the records' `metrics.epoch_test_accuracy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.reporting.figures.catalog import FigureInput, FigureSpec, register
from harness.reporting.figures.records import Record, finite, ok_records
from harness.reporting.figures.style import legend_below, new_figure, palette, save_figure, style

__all__ = ["CAPTION", "accuracy_figure"]

CAPTION = (
    "Test accuracy after every epoch of mini-batch training, one line per task and back-end "
    "(solid: ODE block, dashed: discrete model); the dotted lines are the source's final "
    "accuracies where the records carry them (003 §4: 0.9958 ODENet, 0.9952 ResNet on full MNIST)."
)


def accuracy_figure(records: Sequence[Record], out_dir: Path) -> Path | None:
    """Per-epoch test accuracy against epoch for every record that has it."""
    rows = [
        r for r in ok_records(records) if len((r.get("metrics") or {}).get("epoch_test_accuracy") or []) >= 1
    ]
    if not rows:
        return None
    colours = palette(r["impl"] for r in rows)
    with style():
        fig, axes = new_figure(1, 1, 7.0, 4.2)
        ax = axes[0]
        handles, labels, reported = [], [], {}
        for rec in rows:
            metrics = rec["metrics"]
            curve = [finite(v) for v in metrics["epoch_test_accuracy"]]
            epochs = np.arange(1, len(curve) + 1)
            dashed = "resnet" in str(rec["task"])
            (line,) = ax.plot(
                epochs, curve, marker="o", ms=3, color=colours[rec["impl"]], ls="--" if dashed else "-"
            )
            handles.append(line)
            labels.append(f"{rec['task']} / {rec['impl']} (final {curve[-1]:.4f})")
            if finite(metrics.get("test_accuracy_003")) is not None:
                reported[str(rec["task"])] = float(metrics["test_accuracy_003"])
        for task, value in reported.items():
            handles.append(ax.axhline(value, color="0.3", ls=":", lw=1))
            labels.append(f"{task}: the source's {value:.4f}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        fig.suptitle("Test accuracy by epoch")
        legend_below(fig, handles, labels)
        return save_figure(fig, Path(out_dir) / "accuracy.png")


def _draw(data: FigureInput) -> Path | None:
    return accuracy_figure(data.records, data.out_dir)


register(FigureSpec("accuracy", CAPTION, _draw, order=15))
