"""The public API: everything a task or back-end author needs, in one namespace (#27).

Import it from `harness` itself (`from harness import TrajectoryTask, register_task`); the
names load on first use, so that `import harness` alone loads no numerical library (thread
counts are set before NumPy, PyTorch or JAX load: `harness.execution.environment`).  In-tree
tasks and the example plugin import only from here; every other module of the package is
private and may change.  Writing a task or a back-end: docs/plugins.md.
"""

from __future__ import annotations

from harness.core.check_settings import CheckSettings
from harness.core.claims import Claim, CrossClaim, fit_claim
from harness.core.data import Dataset, Predictor, TrainCallback, TrainResult, mse_loss, mse_loss_cotangent
from harness.core.errors import UsageError, choices
from harness.core.labelled import ClassificationData, Examples
from harness.core.models import (
    MLP,
    AbstractMap,
    AbstractModel,
    AbstractVectorField,
    Composite,
    InputTransformed,
    Parametric,
    Params,
    TimeScaled,
    flatten,
    unflatten,
)
from harness.core.protocols import AbstractBackend, AbstractTask, HasEnergy
from harness.core.ranges import Range, flag, integer, non_negative, one_of, positive, probability, text
from harness.core.registry import register_backend, register_task
from harness.core.training_protocol import Phase, TrainingProtocol, default_phases
from harness.numerics.datasets import solve_truth, trajectory_dataset
from harness.numerics.driver import adam
from harness.numerics.metrics import extrapolate, rmse, trajectories, trajectory_metrics
from harness.numerics.minibatch import minibatch_sgd
from harness.numerics.optim import StepDecay
from harness.numerics.reference import (
    adjoint_reference_gradient,
    composite_reference_gradient,
    forward_sensitivity_gradient,
)
from harness.numerics.training import curriculum_stages
from harness.numerics.trajectory_task import TrajectoryTask
from harness.zoo.convnets import ConvDownsampling, ConvODEField, ConvResBlocks, PoolLinearHead

__all__ = [
    "MLP",
    "AbstractBackend",
    "AbstractMap",
    "AbstractModel",
    "AbstractTask",
    "AbstractVectorField",
    "CheckSettings",
    "Claim",
    "ClassificationData",
    "Composite",
    "ConvDownsampling",
    "ConvODEField",
    "ConvResBlocks",
    "CrossClaim",
    "Dataset",
    "Examples",
    "HasEnergy",
    "InputTransformed",
    "Parametric",
    "Params",
    "Phase",
    "PoolLinearHead",
    "Predictor",
    "Range",
    "StepDecay",
    "TimeScaled",
    "TrainCallback",
    "TrainResult",
    "TrainingProtocol",
    "TrajectoryTask",
    "UsageError",
    "adam",
    "adjoint_reference_gradient",
    "choices",
    "composite_reference_gradient",
    "curriculum_stages",
    "default_phases",
    "extrapolate",
    "fit_claim",
    "flag",
    "flatten",
    "forward_sensitivity_gradient",
    "integer",
    "minibatch_sgd",
    "mse_loss",
    "mse_loss_cotangent",
    "non_negative",
    "one_of",
    "positive",
    "probability",
    "register_backend",
    "register_task",
    "rmse",
    "solve_truth",
    "text",
    "trajectories",
    "trajectory_dataset",
    "trajectory_metrics",
    "unflatten",
]
