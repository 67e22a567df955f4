"""What the classification tasks share (003 §3.2, §4; Chen et al. 2018, Table 1): the
reports' numbers, one-hot targets at the read-out time, the cross-entropy and its cotangent,
MNIST's folder of IDX files, seeded subsets, batched accuracy, and the base class of the
four tasks (`odenet_digits`, `resnet_digits`, `odenet_mnist`, `resnet_mnist`): their loss,
their `data_dir` check and no trajectory to draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from harness import AbstractTask, Predictor, UsageError
from tasks._common.idx import MNIST_FILES, DataDirError, check_data_dir, read_idx

__all__ = [
    "CHEN_2018",
    "N_CLASSES",
    "REPORTED_003",
    "ClassificationTask",
    "accuracy",
    "cross_entropy",
    "cross_entropy_cotangent",
    "one_hot_targets",
    "read_mnist_folder",
    "seeded_subset",
]

#: the classes of every data set (digits 0-9): the logits are the first 10 coordinates
N_CLASSES = 10
#: 003 §4: test accuracy after the last of 50 epochs on MNIST ("Epoch 0049 ... Test Acc")
REPORTED_003 = {"odenet": 0.9958, "resnet": 0.9952}
#: Chen et al. (2018), Table 1: parameters and MNIST test error
CHEN_2018 = {"odenet": (0.22e6, 0.0042), "resnet": (0.60e6, 0.0041)}


def one_hot_targets(labels: np.ndarray, n_features: int) -> np.ndarray:
    """Observations (2, B, N) for labels (B,): zero at t0, the one-hot label in the first
    10 coordinates at T (the read-out), zeros elsewhere."""
    obs = np.zeros((2, len(labels), n_features))
    obs[-1, np.arange(len(labels)), labels] = 1.0
    return obs


def cross_entropy(pred: Any, obs: Any) -> Any:
    """Mean cross-entropy of softmax(logits) against one-hot targets, the logits being the
    first 10 coordinates of the final state: `pred[-1, :, :10]` against `obs[-1, :, :10]`.
    log-sum-exp with the maximum subtracted; written against the array API, so NumPy,
    PyTorch and JAX evaluate the same expression.  (The maximum's own derivative cancels:
    d/dz [m + log sum exp(z - m)] = softmax(z) for any m(z).)

    **Arguments:** `pred`, `obs` of shape `(P, B, N)`, N >= 10.
    """
    xp = array_api_compat.array_namespace(pred, obs)
    logits, target = pred[-1, :, :N_CLASSES], obs[-1, :, :N_CLASSES]
    top = xp.max(logits, axis=1, keepdims=True)
    log_norm = top[:, 0] + xp.log(xp.sum(xp.exp(logits - top), axis=1))
    return xp.mean(log_norm - xp.sum(target * logits, axis=1))


def cross_entropy_cotangent(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """d `cross_entropy` / d pred in NumPy: (softmax(logits) - target) / B at the last time
    and the first 10 coordinates, zero elsewhere."""
    logits, target = pred[-1, :, :N_CLASSES], obs[-1, :, :N_CLASSES]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    out = np.zeros_like(pred, dtype=np.float64)
    out[-1, :, :N_CLASSES] = (exp / exp.sum(axis=1, keepdims=True) - target) / pred.shape[1]
    return out


def read_mnist_folder(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's four IDX files in `data_dir`: `(images_train, labels_train, images_test,
    labels_test)` as stored (images (M, H, W)); a pair whose shapes do not match is a
    one-line `UsageError` naming the folder."""
    paths = check_data_dir(data_dir)
    arrays = [read_idx(paths[name]) for name in MNIST_FILES]
    for images, labels in (arrays[:2], arrays[2:]):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UsageError(
                f"MNIST files in '{data_dir}': images {images.shape} and labels {labels.shape} do not match"
            )
    images_train, labels_train, images_test, labels_test = arrays
    return images_train, labels_train.astype(np.int64), images_test, labels_test.astype(np.int64)


def seeded_subset(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of `n` examples, in their order (all of them when n is 0 or
    at least their number)."""
    if n <= 0 or n >= len(x):
        return x, y
    keep = np.sort(rng.choice(len(x), size=n, replace=False))
    return x[keep], y[keep]


def accuracy(predict: Predictor, t: np.ndarray, x: np.ndarray, labels: np.ndarray, batch: int) -> float:
    """The fraction of `x` whose largest logit (the first 10 coordinates of the state at
    `t[-1]`) is the label, `batch` examples per call of `predict`."""
    hits = 0
    for start in range(0, len(x), batch):
        logits = np.asarray(predict(t, x[start : start + batch]), dtype=float)[-1, :, :N_CLASSES]
        hits += int(np.sum(np.argmax(logits, axis=1) == labels[start : start + batch]))
    return hits / max(len(x), 1)


class ClassificationTask(AbstractTask):
    """A classifier of images (003): the cross-entropy of the logits at the read-out time,
    no extrapolation and no trajectory; `data_dir` (an option of every such task) checked
    when the task is built, so a bad folder is one line before any cell runs."""

    #: which of the reports' figures the metrics compare with ("odenet" or "resnet")
    reported_key: ClassVar[str] = "odenet"

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        if self.data_dir:
            try:
                check_data_dir(self.data_dir)
            except DataDirError as exc:
                raise DataDirError(f"{self.name}: {exc}") from None

    def loss(self, pred: Any, obs: Any) -> Any:
        return cross_entropy(pred, obs)

    def loss_cotangent(self, pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
        return cross_entropy_cotangent(pred, obs)

    def trajectories(self, predict: Predictor, data: Any) -> dict[str, np.ndarray]:
        """Nothing: a classifier has no trajectory to draw (the report skips the figure)."""
        return {}
