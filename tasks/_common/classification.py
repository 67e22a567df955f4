"""The classifiers' one task family (003 §3.2, §4; Chen et al. 2018, Table 1): an image
data set, features made from its images, a model (an ODE block or residual blocks, with or
without convolutional encoder and head), the cross-entropy of the logits at the read-out
time, test and train accuracy, and training by full-batch Adam or by mini-batch SGD with
momentum.  The four registered tasks (`odenet_digits`, `resnet_digits`, `odenet_mnist`,
`resnet_mnist`) are members that choose these parts; a plugin makes another the same way
(e.g. its own data, by overriding `packaged`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_compat
import numpy as np

from harness import (
    AbstractBackend,
    AbstractMap,
    AbstractTask,
    AbstractVectorField,
    ClassificationData,
    Composite,
    Dataset,
    Examples,
    Params,
    Predictor,
    StepDecay,
    TrainCallback,
    TrainResult,
    adam,
    adjoint_reference_gradient,
    composite_reference_gradient,
    flatten,
    minibatch_sgd,
    unflatten,
)
from tasks._common.idx import DataDirError, check_data_dir
from tasks._common.images import idx_folder

__all__ = [
    "CHEN_2018",
    "N_CLASSES",
    "REPORTED_003",
    "ImageClassification",
    "cross_entropy",
    "cross_entropy_cotangent",
]

#: the classes of every data set (digits 0-9): the logits are the first 10 coordinates
N_CLASSES = 10
#: 003 §4: test accuracy after the last of 50 epochs on MNIST ("Epoch 0049 ... Test Acc")
REPORTED_003 = {"odenet": 0.9958, "resnet": 0.9952}
#: Chen et al. (2018), Table 1: parameters and MNIST test error
CHEN_2018 = {"odenet": (0.22e6, 0.0042), "resnet": (0.60e6, 0.0041)}


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


class ImageClassification(AbstractTask):
    """A classifier of images (003): labelled images from a data set (`packaged`, or MNIST's
    IDX files in the option `data_dir`), seeded subsets of `n_train` / `n_test` of them,
    features made by `features`; the model's logits are the first 10 coordinates of its
    output at `t1`; the cross-entropy loss; metrics from the test and training sets; no
    extrapolation and no trajectory.

    A member sets the options `data_dir`, `n_train`, `n_test` and `t1` among its own, and
    `model`, `packaged` and `features`.  It trains by the driver's full-batch Adam, or with
    `protocol.needs_batches` by mini-batch SGD with momentum (options `batch_size` and `momentum`,
    the learning rate `lr` x batch / 128 with torchdiffeq's step decay, `iters` counting
    epochs), measuring the gradient of the first `measured_batch` training images.
    """

    #: which of the reports' figures the metrics compare with ("odenet" or "resnet")
    reported_key: ClassVar[str] = "odenet"
    #: images per call of `predict` when a trained model is evaluated (0: all at once)
    eval_batch: ClassVar[int] = 0
    #: the relative and absolute tolerance of the reference gradient's DOP853
    reference_tol: ClassVar[float] = 1e-12

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        if self.data_dir:  # a bad folder is one line before any cell runs
            try:
                check_data_dir(self.data_dir)
            except DataDirError as exc:
                raise DataDirError(f"{self.name}: {exc}") from None

    # -- data ---------------------------------------------------------------------------

    def packaged(self, seed: int) -> tuple[Examples, Examples]:
        """The training and test images (M, H, W) of the data set that ships with a package,
        used when `data_dir` is empty."""
        raise NotImplementedError(f"{self.name} has no packaged data set: set data_dir")

    def features(self, images: np.ndarray) -> np.ndarray:
        """The model's inputs (M, D) of images (M, H, W)."""
        raise NotImplementedError

    @property
    def train_size(self) -> int:
        """The training images kept (0: all); `n_train` unless a member says otherwise."""
        return int(self.n_train)

    def measured_batch(self) -> int:
        """The training images whose gradient every back-end measures (0: all)."""
        return 0

    def examples(self, seed: int) -> tuple[Examples, Examples]:
        """The training and test sets for `seed`: images from `data_dir` or `packaged`,
        seeded random subsets of `train_size` and `n_test` (0: all), as features."""
        train, test = idx_folder(self.data_dir) if self.data_dir else self.packaged(seed)
        rng = np.random.default_rng(seed)
        train, test = train.subset(rng, self.train_size), test.subset(rng, int(self.n_test))
        return train.with_inputs(self.features), test.with_inputs(self.features)

    def make_data(self, seed: int) -> ClassificationData:
        """The training and test sets, and as the batch every back-end solves from t = [0,
        t1] the first `measured_batch` training images with their one-hot labels at t1 (in
        observations of the model's output width).  No extrapolation windows: a classifier
        has none."""
        train, test = self.examples(seed)
        model = self.model
        width = int(model.decoder.out_dim) if isinstance(model, Composite) else int(train.x.shape[1])
        return ClassificationData.of(
            train, test, t1=float(self.t1), measured=self.measured_batch(), width=width, n_classes=N_CLASSES
        )

    # -- loss and reference -----------------------------------------------------------------

    def loss(self, pred: Any, obs: Any) -> Any:
        return cross_entropy(pred, obs)

    def loss_cotangent(self, pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
        return cross_entropy_cotangent(pred, obs)

    def reference_gradient(self, params: Params, data: Dataset) -> tuple[float, Params, str]:
        """By the model's kind: a `Composite` by the core's continuous adjoint (or exact
        backpropagation) between its encoder's and decoder's hand-written VJPs; an ODE block
        by the continuous adjoint over the whole batch (forward sensitivities would solve B
        (1 + M) N equations, about 10^9 for the digits), both with DOP853 at `reference_tol`;
        residual blocks by exact backpropagation, hand-written NumPy."""
        model, tol = self.model, self.reference_tol
        common: dict[str, Any] = {
            "rtol": tol,
            "atol": tol,
            "loss": self.loss,
            "cotangent": self.loss_cotangent,
        }
        if isinstance(model, Composite):
            return composite_reference_gradient(model, params, data, **common)
        if isinstance(model, AbstractVectorField):
            return adjoint_reference_gradient(model, params, data, **common)
        if not isinstance(model, AbstractMap) or not model.has_numpy_vjp:
            raise TypeError(f"{self.name}: no reference gradient for {model.label}")
        pred = np.stack([data.y0, model.apply(params, data.y0, np)])
        _, grad = model.apply_vjp_numpy(params, data.y0, self.loss_cotangent(pred, data.y)[-1])
        how = (
            f"exact backpropagation through {model.label} ({model.n_evaluations} blocks), hand-written NumPy"
        )
        return float(self.loss(pred, data.y)), unflatten(flatten(grad), params), how

    # -- training -------------------------------------------------------------------------------

    def fit(
        self,
        impl: AbstractBackend,
        params: Params,
        *,
        iters: int,
        lr: float,
        callback: TrainCallback | None = None,
        curriculum: int = 0,
    ) -> TrainResult:
        """Full-batch Adam on the measured batch (the driver's), or with `protocol.needs_batches`
        `iters` epochs of mini-batch SGD with momentum on the training set
        (`harness.numerics.minibatch.minibatch_sgd`), the learning rate `lr` x batch / 128
        with torchdiffeq's step decay, test accuracy after every epoch and NFE per batch at
        the trained weights."""
        if curriculum > 0:
            raise ValueError(f"task {self.name} does not train by continuum learning (curriculum=0)")
        if not self.protocol.needs_batches:
            return adam(impl, params, iters=iters, lr=lr, callback=callback)
        data = classification_data(impl.data)

        def on_epoch(epoch: int, p: Params) -> dict[str, float]:
            return {"test_accuracy": self.accuracy(lambda t, x: impl.predict(p, t, x), data, data.test)}

        result = minibatch_sgd(
            impl,
            params,
            data=data,
            epochs=iters,
            batch_size=int(self.batch_size),
            schedule=StepDecay(lr * self.batch_size / 128),
            momentum=float(self.momentum),
            seed=0,
            callback=callback,
            on_epoch=on_epoch,
        )
        nfe_forward, nfe_backward = impl.count_nfe(result.params)
        result.info.update(nfe_forward_trained=nfe_forward, nfe_backward_trained=nfe_backward)
        result.info["time_per_epoch_s"] = float(np.median(result.info["epoch_time_s"]))
        return result

    # -- evaluation -----------------------------------------------------------------------------

    def logits(self, predict: Predictor, data: ClassificationData, examples: Examples) -> np.ndarray:
        """The logits (M, 10) of `examples` at `t[-1]`, `eval_batch` images per call."""
        t, size = np.asarray(data.t), self.eval_batch or max(len(examples), 1)
        parts = [
            np.asarray(predict(t, examples.x[start : start + size]), dtype=float)[-1, :, :N_CLASSES]
            for start in range(0, len(examples), size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, N_CLASSES))

    def accuracy(self, predict: Predictor, data: ClassificationData, examples: Examples) -> float:
        """The fraction of `examples` whose largest logit is their label."""
        hits = np.argmax(self.logits(predict, data, examples), axis=1) == examples.labels
        return float(np.mean(hits)) if len(examples) else 0.0

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        """Test accuracy and error, train accuracy (argmax of the logits), the numbers of
        parameters and of training and test images, and the member's `reported_metrics`."""
        data = classification_data(data)
        test_logits = self.logits(predict, data, data.test)
        test_accuracy = float(np.mean(np.argmax(test_logits, axis=1) == data.test.labels))
        return {
            "test_accuracy": test_accuracy,
            "test_error": 1.0 - test_accuracy,
            "train_accuracy": self.accuracy(predict, data, data.train),
            "n_params": int(flatten(params).size),
            "n_train": len(data.train),
            "n_test": len(data.test),
            **self.reported_metrics(test_logits, data),
        }

    def reported_metrics(self, test_logits: np.ndarray, data: ClassificationData) -> dict[str, float]:
        """A member's further metrics: the reports' numbers to compare with, and its own."""
        return {}

    def trajectories(self, predict: Predictor, data: Any) -> dict[str, np.ndarray]:
        """Nothing: a classifier has no trajectory to draw (the report skips the figure)."""
        return {}


def classification_data(data: Dataset) -> ClassificationData:
    """`data` as the classifier's data it must be (a one-line error otherwise)."""
    if not isinstance(data, ClassificationData):
        raise TypeError(f"a classifier needs its ClassificationData, not {type(data).__name__}")
    return data
