"""The task of most examples: a vector field observed along trajectories.

It adds the defaults that rest on numerics to `AbstractTask`: the reference gradient by
forward sensitivities (000 §2: the sensitivity equations, solved with SciPy's DOP853 at
rtol = atol = 1e-12), continuum learning (001 §"continuum learning"), and the trajectory
figure's fit window with the extrapolation windows either side.
"""

from __future__ import annotations

import numpy as np

from harness.core.models import AbstractVectorField, Params
from harness.core.protocols import (
    AbstractBackend,
    AbstractTask,
    Dataset,
    Predictor,
    TrainCallback,
    TrainResult,
)
from harness.numerics import driver
from harness.numerics.metrics import trajectories, trajectory_metrics
from harness.numerics.reference import forward_sensitivity_gradient
from harness.numerics.training import curriculum_fit

__all__ = ["TrajectoryTask"]


class TrajectoryTask(AbstractTask):
    """A task whose model is solved from `data.y0` and compared with `data.y` at `data.t`."""

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
        """The back-end's Adam on `loss`, with continuum learning over `curriculum`,
        2 `curriculum`, ... observations when `curriculum` > 0 (`curriculum_fit`)."""
        if curriculum > 0:
            return curriculum_fit(self, impl, params, iters=iters, lr=lr, step=curriculum, callback=callback)
        return driver.adam(impl, params, iters=iters, lr=lr, callback=callback)

    def reference_gradient(self, params: Params, data: Dataset) -> tuple[float, Params, str]:
        """Forward sensitivities with DOP853 at rtol = atol = 1e-12."""
        model = self.model
        if not isinstance(model, AbstractVectorField):
            raise TypeError(f"{self.name}: forward sensitivities need a vector field, not {model.label}")
        return forward_sensitivity_gradient(
            model, params, data, rtol=1e-12, atol=1e-12, loss=self.loss, cotangent=self.loss_cotangent
        )

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        """Fit and extrapolation RMSEs, absolute and relative, and the window lengths an
        extrapolation follows (`harness.numerics.metrics.trajectory_metrics`)."""
        return trajectory_metrics(predict, data)

    def trajectories(self, predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
        return trajectories(predict, data)
