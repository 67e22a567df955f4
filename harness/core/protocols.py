"""The two interfaces of the harness: a Task (a problem, its training and its evaluation)
and a Backend.

A task knows everything about a problem and nothing about a framework; a back-end
knows everything about a framework and nothing about a problem.  They meet through
`Dataset`, a declarative model spec (`harness.core.models`) and NumPy parameter dictionaries.
The task's roles live in their own modules (`problem`, `training_protocol`, `evaluation`,
`check_settings`); `AbstractTask` composes them.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.core.check_settings import DEFAULT_TOLERANCES, CheckSettings
from harness.core.composed import compose
from harness.core.data import Dataset, Predictor, TrainCallback, TrainResult, mse_loss
from harness.core.devices import parse_device
from harness.core.evaluation import Evaluation
from harness.core.models import AbstractModel, Params
from harness.core.problem import Problem
from harness.core.ranges import Range
from harness.core.training_protocol import TRAIN_BASE, Phase, TrainingProtocol

if TYPE_CHECKING:  # shape annotations for readers and pyright, no import at run time
    from jaxtyping import Float

__all__ = [
    "TRAIN_BASE",
    "AbstractBackend",
    "AbstractTask",
    "Dataset",
    "HasEnergy",
    "Predictor",
    "TrainCallback",
    "TrainResult",
    "Training",
    "mse_loss",
]


class Training:
    """The training role of a task: its `protocol` and, where the source trains otherwise
    than by the driver's Adam on the loss, its own `fit`."""

    #: how it trains (`TrainingProtocol`)
    protocol: ClassVar[TrainingProtocol] = TrainingProtocol()

    def phases(self) -> tuple[Phase, ...]:
        """The phases this instance trains by (an option may choose them)."""
        return self.protocol.phases

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
        """Train from `params` on back-end `impl`, for tasks whose source trains otherwise
        than by Adam on `loss` (several phases, frozen parameters, a growing window, a fit
        without ODE solves, mini-batches), building further back-ends of the same class with
        `impl.rebuild(task, data)` and training through the driver
        (`harness.numerics.driver`).  The returned parameters are those of the task's model;
        `TrainResult.info` carries what else the fit found.

        A task that does not override it is trained by the driver's Adam on `loss`
        (`harness.numerics.training.fit`, which calls this method only when overridden).
        """
        name = getattr(self, "name", type(self).__name__)
        raise NotImplementedError(
            f"task {name} trains by the driver's Adam: call harness.numerics.training.fit"
        )


class AbstractTask(Problem, Training, Evaluation):
    """A task: the roles it composes (#27), each in its own module.

    - the problem (`harness.core.problem.Problem`): `name`, `source` (and a docstring that
      cites the source document and section), `options`, `make_data`, `model`, `loss`,
      `reference_gradient`;
    - its training (`harness.core.training_protocol.Training`): `protocol`, a
      `TrainingProtocol`, and its own `fit` where the source trains otherwise than by Adam;
    - its evaluation (`harness.core.evaluation.Evaluation`): `metrics`, `trajectories`,
      `claims`, `cross_claims`;
    - its test settings: `checks`, a `CheckSettings`.

    `harness.numerics.trajectory_task.TrajectoryTask` supplies all but the problem's data
    and model for a vector field observed along trajectories.
    """

    #: how `harness.testing` checks the task: small options, solver settings, the
    #: finite-difference step and the tolerances, each with its reason (`CheckSettings`)
    checks: ClassVar[CheckSettings] = CheckSettings(tolerances=DEFAULT_TOLERANCES)


class HasEnergy(abc.ABC):
    """Capability of a task whose system conserves an energy (000 §4: the Hamiltonian).

    The runner saves the energy of the truth and of the trained model along the trajectory
    figure's times (arrays `H_true`, `H_pred` of the first batch member), so that reports draw
    the energy figure from the results folder without importing the task.
    """

    @abc.abstractmethod
    def hamiltonian(self, y: Any, xp: Any = None) -> Any:
        """The energy of states `y` of shape (..., N), shape (...)."""


class AbstractBackend(abc.ABC):
    """A back-end: builds a task's model natively and differentiates through a solve.

    The timing contract follows benchopt: `load` converts NumPy parameters to native
    ones (not timed), `value_and_grad_native` is the only timed region, `block` waits
    for the device before the clock is read, and `to_numpy` fetches results after.
    Framework imports happen inside methods, so that the registry can list back-ends
    whose libraries are missing.
    """

    name: ClassVar[str]
    framework: ClassVar[str]
    #: importable modules this back-end needs
    requires: ClassVar[tuple[str, ...]]
    #: the command that installs what is missing
    install: ClassVar[str]
    #: the core model classes (abstract bases) this back-end builds: it builds every
    #: subclass of them, so a new model that subclasses one needs no back-end edit; the
    #: harness composes a `Composite`'s encoder and decoder around the core
    #: (`harness.core.composed`), so no back-end lists `Composite`
    builds: ClassVar[tuple[type[AbstractModel], ...]]
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: which solver options (keys of `AbstractTask.solver_defaults`) this back-end reads
    solver_options: ClassVar[tuple[str, ...]] = ("rtol", "atol")
    #: back-end-only options and their defaults
    options: ClassVar[dict[str, Any]] = {}
    #: the valid values of every back-end option (`harness.core.ranges`)
    option_ranges: ClassVar[dict[str, Range]] = {}
    #: one line on what `framework_peak_bytes` measures
    framework_memory: ClassVar[str] = ""
    #: for an optimise-then-discretise back-end, the back-end whose gradient is the exact
    #: gradient of this one's discrete forward solution (the same solver taking the same
    #: steps, held fixed): each cell also records its gradient's error against that one
    #: (`grad_rel_error_discrete`, 004's "only gives approximate gradients"); None: no such twin
    discrete_twin: ClassVar[str | None] = None

    #: what a back-end may report after `count_nfe` (the record's `solver_steps` and
    #: `solver_checkpoints`): solver steps, accepted and rejected, of the last counted call,
    #: and the checkpoints its backward pass keeps; None where it has no such figure
    n_steps: int | None = None
    n_checkpoints: int | None = None

    @classmethod
    def trains_on_batches(cls) -> bool:
        """Whether this back-end implements `load_batch` and `value_and_grad_batch`."""
        return cls.value_and_grad_batch is not AbstractBackend.value_and_grad_batch

    @classmethod
    def missing(cls) -> list[str]:
        """Modules of `requires` that cannot be imported here."""
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    @classmethod
    def available(cls) -> bool:
        return not cls.missing()

    @classmethod
    def skip(cls, task: AbstractTask, device: str) -> str | None:
        """A one-line reason why this back-end cannot run `task` on `device`, else None."""
        composed = compose(task.model)  # the harness composes encoder and decoder around the core
        core, bases = composed.core, ", ".join(b.__name__ for b in cls.builds)
        if not isinstance(core, cls.builds):
            what = core.label if composed.composite is None else f"the core {core.label}"
            return f"{cls.name} does not build {what} (it builds subclasses of {bases})"
        if task.protocol.needs_batches and not cls.trains_on_batches():
            return f"{cls.name} does not train on mini-batches, which {task.name} needs"
        if parse_device(device)[0] not in cls.devices:
            return f"{cls.name} runs on {', '.join(cls.devices)} only, not {device}"
        return None

    def __init__(
        self,
        task: AbstractTask,
        data: Dataset,
        *,
        device: str = "cpu",
        dtype: str = "float64",
        solver: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.task = task
        self.data = data
        self.device = device
        self.dtype = dtype
        self.solver = {**task.solver_defaults, **(solver or {})}
        unknown = set(options) - set(self.options)
        if unknown:
            raise KeyError(f"unknown option(s) {sorted(unknown)} for back-end {self.name}")
        self.config = {**self.options, **options}
        #: the task's model as encoder -> core -> decoder (`harness.core.composed`)
        self.composed = compose(task.model)
        self.setup()

    def rebuild(self, task: AbstractTask, data: Dataset | None = None) -> AbstractBackend:
        """A fresh back-end of this class, device, dtype, solver settings and options for
        another `task` (e.g. a variant with frozen parameters) or other `data`."""
        return type(self)(
            task,
            self.data if data is None else data,
            device=self.device,
            dtype=self.dtype,
            solver=self.solver,
            **self.config,
        )

    @abc.abstractmethod
    def setup(self) -> None:
        """Build the native model, loss and solver (not timed)."""

    @abc.abstractmethod
    def load(self, params: Params) -> Any:
        """NumPy parameters to native parameters on the device."""

    @abc.abstractmethod
    def value_and_grad_native(self, native: Any) -> Any:
        """Loss and gradient at native parameters: the timed region."""

    def block(self, out: Any) -> Any:
        """Wait until `out` is computed on the device; the default does nothing."""
        return out

    @abc.abstractmethod
    def to_numpy(self, out: Any) -> tuple[float, Params]:
        """The result of `value_and_grad_native` as `(loss, grad)` in NumPy."""

    def load_batch(self, y0: np.ndarray, y: np.ndarray) -> Any:
        """A mini-batch as native arrays: initial states `y0` (b, ...) and observations `y`
        (P, b, ...) at the data's times, with the shapes of every other batch of its size
        (a compiled back-end reuses its compiled gradient; not timed)."""
        raise NotImplementedError(f"{self.name} does not train on mini-batches")

    def value_and_grad_batch(self, native: Any, batch: Any) -> Any:
        """`value_and_grad_native` on the mini-batch `batch` (from `load_batch`) instead of
        the data's `y0` and `y`; `to_numpy` reads its result."""
        raise NotImplementedError(f"{self.name} does not train on mini-batches")

    def value_and_grad(self, params: Params) -> tuple[float, Params]:
        """Loss and gradient at NumPy parameters (convenience: load, compute, fetch)."""
        return self.to_numpy(self.block(self.value_and_grad_native(self.load(params))))

    @abc.abstractmethod
    def predict(
        self, params: Params, times: Float[np.ndarray, " T"], y0: Float[np.ndarray, "B N"]
    ) -> Float[np.ndarray, "T B N"]:
        """States at `times` (monotonic, starting at the time of `y0`), shape (len(times), B, N)."""

    def count_nfe(self, params: Params) -> tuple[int, int]:
        """Right-hand-side evaluations of one value-and-grad call: (forward, backward).

        Backward counts every right-hand-side evaluation or vector-Jacobian product of the
        backward pass (recomputation included).  A discrete core's work is its blocks
        (`ComposedModel.fixed_nfe`); a vector field's is counted by `count_solver_nfe`.
        """
        fixed = self.composed.fixed_nfe
        return fixed if fixed is not None else self.count_solver_nfe(params)

    @abc.abstractmethod
    def count_solver_nfe(self, params: Params) -> tuple[int, int]:
        """`count_nfe` for a core vector field: the back-end counts its solver's calls."""

    def framework_peak_bytes(self, params: Params) -> int | None:
        """A framework-level memory figure of one value-and-grad call (see `framework_memory`)."""
        return None

    def reset_device_peak(self) -> None:  # noqa: B027 (optional hook, CPU back-ends need none)
        """Reset the accelerator allocator's peak counter (on a GPU device)."""

    def device_peak_bytes(self) -> int | None:
        """The accelerator allocator's peak since `reset_device_peak`, or None on the CPU."""
        return None
