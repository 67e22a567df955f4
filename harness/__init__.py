"""Neural ODE benchmark and reproducibility harness.

Light on purpose: importing `harness` imports no numerical framework, so that thread
counts can be set before NumPy, PyTorch or JAX load (see `harness.execution.environment`).
The public API (`harness.api`: the interfaces, registration, models, claims, options) loads
on first use of one of its names: ``from harness import TrajectoryTask, register_task``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the names for readers and type checkers; loaded lazily at run time
    from harness.api import MLP as MLP
    from harness.api import AbstractBackend as AbstractBackend
    from harness.api import AbstractMap as AbstractMap
    from harness.api import AbstractModel as AbstractModel
    from harness.api import AbstractTask as AbstractTask
    from harness.api import AbstractVectorField as AbstractVectorField
    from harness.api import Claim as Claim
    from harness.api import ClassificationData as ClassificationData
    from harness.api import Composite as Composite
    from harness.api import ConvDownsampling as ConvDownsampling
    from harness.api import ConvODEField as ConvODEField
    from harness.api import ConvResBlocks as ConvResBlocks
    from harness.api import CrossClaim as CrossClaim
    from harness.api import Dataset as Dataset
    from harness.api import Examples as Examples
    from harness.api import HasEnergy as HasEnergy
    from harness.api import InputTransformed as InputTransformed
    from harness.api import Parametric as Parametric
    from harness.api import Params as Params
    from harness.api import Phase as Phase
    from harness.api import PoolLinearHead as PoolLinearHead
    from harness.api import Predictor as Predictor
    from harness.api import Range as Range
    from harness.api import StepDecay as StepDecay
    from harness.api import TimeScaled as TimeScaled
    from harness.api import TrainCallback as TrainCallback
    from harness.api import TrainingProtocol as TrainingProtocol
    from harness.api import TrainResult as TrainResult
    from harness.api import TrajectoryTask as TrajectoryTask
    from harness.api import UsageError as UsageError
    from harness.api import adam as adam
    from harness.api import adjoint_reference_gradient as adjoint_reference_gradient
    from harness.api import choices as choices
    from harness.api import composite_reference_gradient as composite_reference_gradient
    from harness.api import curriculum_stages as curriculum_stages
    from harness.api import default_phases as default_phases
    from harness.api import extrapolate as extrapolate
    from harness.api import fit_claim as fit_claim
    from harness.api import flag as flag
    from harness.api import flatten as flatten
    from harness.api import forward_sensitivity_gradient as forward_sensitivity_gradient
    from harness.api import integer as integer
    from harness.api import minibatch_sgd as minibatch_sgd
    from harness.api import mse_loss as mse_loss
    from harness.api import mse_loss_cotangent as mse_loss_cotangent
    from harness.api import non_negative as non_negative
    from harness.api import one_of as one_of
    from harness.api import positive as positive
    from harness.api import probability as probability
    from harness.api import register_backend as register_backend
    from harness.api import register_task as register_task
    from harness.api import rmse as rmse
    from harness.api import solve_truth as solve_truth
    from harness.api import text as text
    from harness.api import trajectories as trajectories
    from harness.api import trajectory_dataset as trajectory_dataset
    from harness.api import trajectory_metrics as trajectory_metrics
    from harness.api import unflatten as unflatten


#: public names that #27 renamed (one word for the back-end, one for the phases), and
#: their new names: still importable, with a DeprecationWarning, until a release drops them
RENAMED = {
    "AbstractImplementation": "AbstractBackend",
    "register_implementation": "register_backend",
    "default_protocol": "default_phases",
}


def __getattr__(name: str) -> Any:
    """A name of the public API, imported from `harness.api` on first use (PEP 562)."""
    api = importlib.import_module("harness.api")
    if name in api.__all__:
        return getattr(api, name)
    if name in RENAMED:
        import warnings

        new = RENAMED[name]
        warnings.warn(f"harness.{name} is now harness.{new} (#27)", DeprecationWarning, stacklevel=2)
        return getattr(api, new)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *importlib.import_module("harness.api").__all__])
