"""A task's evaluation role (#27): the metrics of a trained model, the arrays its figures
draw, and the source's results it is judged against (`claims`, `cross_claims`), one of the
roles `harness.core.protocols.AbstractTask` composes.  `TrajectoryTask` and the classifiers'
family supply the two methods; a task only states its claims."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from harness.core.data import Dataset, Predictor
from harness.core.models import Params

if TYPE_CHECKING:
    from harness.core.claims import Claim, CrossClaim

__all__ = ["Evaluation"]


class Evaluation(abc.ABC):
    """How a trained model is judged: `metrics` (through the back-end's `predict`), the
    arrays of the trajectory figure, and the source's claims over those metrics."""

    #: the source's results this task reproduces, judged after every training run
    claims: ClassVar[tuple[Claim, ...]] = ()
    #: results of the source that compare this task with another (e.g. the ODENet's accuracy
    #: against the ResNet's), judged when both tasks' records are present
    cross_claims: ClassVar[tuple[CrossClaim, ...]] = ()

    @abc.abstractmethod
    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        """Task metrics of a trained model, computed through the back-end's `predict`."""

    @abc.abstractmethod
    def trajectories(self, predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
        """What the trajectory figure draws (arrays `t_obs, y_obs, t, y_true, y_pred`), or
        nothing (`{}`) where there is no trajectory (a classifier)."""
