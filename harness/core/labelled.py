"""A classifier's data, shaped for it (#27): labelled examples split into training,
validation and test sets, drawn in mini-batches (003 §3.2: "Stochastic Gradient Descent
(SGD) with momentum" over mini-batches of MNIST).

Back-ends still see a `Dataset` (what one solve needs): `ClassificationData` is one, whose
`t`, `y0` and `y` are the measured batch, the first examples of the training set with their
one-hot labels at the read-out time.  Everything else a classifier needs (its training,
test and validation sets) is a typed field, not an entry of `Dataset.truth`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from harness.core.data import Dataset

if TYPE_CHECKING:  # shape annotations for readers and pyright, no import at run time
    from jaxtyping import Float, Int

__all__ = ["ClassificationData", "Examples"]


@dataclasses.dataclass(frozen=True)
class Examples:
    """Labelled examples: inputs `x` of shape `(M, ...)` (images `(M, H, W)`, or features
    `(M, D)`) and integer labels of shape `(M,)`."""

    x: Float[np.ndarray, "M ..."]
    labels: Int[np.ndarray, " M"]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.labels):
            raise ValueError(f"{len(self.x)} inputs but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> Examples:
        """The examples at `index` (an index array or a slice), in its order."""
        return Examples(self.x[index], self.labels[index])

    def with_inputs(self, transform: Callable[[np.ndarray], np.ndarray]) -> Examples:
        """The same labels with inputs `transform(x)` (e.g. images to features)."""
        return Examples(transform(self.x), self.labels)

    def subset(self, rng: np.random.Generator, n: int) -> Examples:
        """A seeded random subset of `n` examples, in their order (all of them, and no draw
        from `rng`, when `n` is 0 or at least their number)."""
        if n <= 0 or n >= len(self):
            return self
        return self.take(np.sort(rng.choice(len(self), size=n, replace=False)))

    def batches(self, size: int, rng: np.random.Generator) -> Iterator[Examples]:
        """One epoch of mini-batches of `size` examples in an order drawn from `rng`; the
        last, partial batch is dropped (torchdiffeq's example: `drop_last=True`), so that
        every batch has the same shape and a compiled back-end compiles once."""
        if not 0 < size <= len(self):
            raise ValueError(f"batch size {size} must be between 1 and the {len(self)} examples")
        order = rng.permutation(len(self))
        for start in range(0, len(self) - size + 1, size):
            yield self.take(order[start : start + size])


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassificationData(Dataset):
    """A classifier's data: `train`, `test` and optionally `validation` examples, and as a
    `Dataset` the measured batch (`observe`: the first examples of `train`).

    The logits are the first `n_classes` coordinates of the model's output at `t[-1]`;
    `observe` writes one-hot labels there, in observations of the model's output width.
    """

    train: Examples
    test: Examples
    validation: Examples | None = None
    n_classes: int = 10

    @classmethod
    def of(
        cls,
        train: Examples,
        test: Examples,
        *,
        t1: float,
        measured: int,
        width: int,
        validation: Examples | None = None,
        n_classes: int = 10,
    ) -> ClassificationData:
        """The data with the first `measured` training examples (0: all) as the batch every
        back-end solves from `t = [0, t1]`, observations of `width` (the model's output
        width, at least `n_classes`)."""
        if width < n_classes:
            raise ValueError(f"output width {width} is less than the {n_classes} classes")
        batch = train.take(slice(0, measured or len(train)))
        y = one_hot(batch.labels, n_classes, width)
        return cls(
            t=np.array([0.0, t1]),
            y=y,
            y0=batch.x,
            y_true=y.copy(),
            train=train,
            test=test,
            validation=validation,
            n_classes=n_classes,
        )

    def observe(self, examples: Examples) -> Float[np.ndarray, "2 B W"]:
        """Observations of `examples` at `t`: their one-hot labels at `t[-1]` in the first
        `n_classes` coordinates, zeros elsewhere and at `t[0]` (the loss reads `t[-1]` only)."""
        return one_hot(examples.labels, self.n_classes, self.y.shape[-1])


def one_hot(labels: np.ndarray, n_classes: int, width: int) -> np.ndarray:
    """Observations (2, B, `width`) of labels (B,): zero at t0, the one-hot label in the
    first `n_classes` coordinates at the read-out time."""
    if labels.size and not (0 <= labels.min() and labels.max() < n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    obs = np.zeros((2, len(labels), width))
    obs[-1, np.arange(len(labels)), labels] = 1.0
    return obs
