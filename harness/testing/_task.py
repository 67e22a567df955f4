"""`check_task`: a task class checked as a third party would, first failure raised."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.core.models import AbstractMap, AbstractModel, AbstractVectorField, Composite, Params, flatten
from harness.core.protocols import AbstractTask, Dataset, HasEnergy
from harness.testing._numerics import (
    directional_difference,
    loss_at,
    numpy_predictor,
    param_direction,
    shift,
    solve,
)
from harness.testing._static import (
    TASK_CHECKS,
    Fail,
    check_data,
    check_init_params,
    check_metadata,
    check_options,
    tolerance,
    tolerances,
)

__all__ = ["TASK_CHECKS", "check_task", "task_checks", "tolerance", "tolerances"]

#: finite-difference step along a unit direction (fourth-order stencil: truncation ~h^4)
FD_STEP = 1e-3
#: random directions per parameter array / state / loss (each costs 4 evaluations)
N_DIRECTIONS = 2
#: directions of the reference gradient's check (each costs 2 independent solves)
N_REFERENCE_DIRECTIONS = 3
#: its step: second-order central differences, truncation ~h^2 = 1e-8 and solver noise
#: ~1e-12 / h = 1e-8, relative
REFERENCE_STEP = 1e-4
#: at most this many states (rows) of the data at which the VJP is checked
N_VJP_STATES = 6


# ----------------------------------------------------------------------------- derivatives


def _compare(
    fail: Fail, check: str, what: str, exact: float, fd: float, scale: float, tol: float, reason: str
) -> None:
    error = abs(exact - fd)
    bound = tol * max(scale, abs(fd)) + 1e-300
    fail(
        check,
        error <= bound,
        lambda: (
            f"{what}: {exact:.10g} (hand-written) against {fd:.10g} (finite differences), error "
            f"{error:.3g} > {tol:g} x {max(scale, abs(fd)):.3g} (tolerance: {reason})"
        ),
    )


def _vjp_states(data: Dataset) -> np.ndarray:
    """A few states of the data: the first rows of y0 and of the middle and last observations."""
    y = np.asarray(data.y, dtype=float)
    rows = [np.asarray(data.y0, dtype=float)[:2], y[len(y) // 2, :2], y[-1, :2]]
    return np.concatenate(rows)[:N_VJP_STATES]


def _check_vjp_of(
    fail: Fail,
    check: str,
    what: str,
    fn: Callable[[Params, np.ndarray], Any],
    vjp: Callable[[Params, np.ndarray, np.ndarray], tuple[np.ndarray, Params]],
    params: Params,
    y: np.ndarray,
    tol: tuple[float, str],
    rng: np.random.Generator,
    step: float = FD_STEP,
) -> None:
    """`vjp(params, y, a) = (a^T dfn/dy, a^T dfn/dparams)` against finite differences of
    phi = sum(a * fn(params, y)) at `step`: random unit directions in y and in each
    parameter array."""
    out = np.asarray(fn(params, y), dtype=float)
    a = rng.normal(size=out.shape)
    a_y, a_p = vjp(params, y, a)
    a_y = np.asarray(a_y)
    fail(check, a_y.shape == y.shape, f"{what}: a^T df/dy has shape {a_y.shape}, expected {y.shape}")
    fail(
        check,
        isinstance(a_p, Mapping) and list(a_p) == list(params),
        f"{what}: a^T df/dparams must have the keys of params in order {list(params)}, not {list(a_p)}",
    )
    for key in params:
        fail(
            check,
            np.shape(a_p[key]) == np.shape(params[key]),
            f"{what}: a^T df/d{key} has shape {np.shape(a_p[key])}, expected {np.shape(params[key])}",
        )
    value, reason = tol
    for _ in range(N_DIRECTIONS):
        v = rng.normal(size=y.shape)
        v /= np.linalg.norm(v)
        fd = directional_difference(lambda yy: float(np.sum(a * fn(params, yy))), y, v, step)
        _compare(
            fail,
            check,
            f"{what}: a^T df/dy . v",
            float(np.sum(a_y * v)),
            fd,
            float(np.linalg.norm(a_y)),
            value,
            reason,
        )
    # each parameter's error against the whole parameter cotangent: a parameter whose exact
    # cotangent is 0 (a conv bias that a GroupNorm removes) leaves only rounding to compare
    whole = float(np.sqrt(sum(np.sum(np.square(a_p[key])) for key in params)))
    for key, p in params.items():
        for _ in range(N_DIRECTIONS):
            v = rng.normal(size=np.shape(p))
            v /= np.linalg.norm(v)

            def phi(pk: np.ndarray, key: str = key) -> float:
                return float(np.sum(a * fn({**params, key: pk}, y)))

            fd = directional_difference(phi, np.asarray(p, dtype=float), v, step)
            exact = float(np.sum(np.asarray(a_p[key]) * v))
            _compare(
                fail,
                check,
                f"{what}: a^T df/d{key} . v",
                exact,
                fd,
                whole,
                value,
                reason,
            )


def _check_vjp(task: AbstractTask, model: AbstractModel, params: Params, data: Dataset, fail: Fail) -> None:
    rng = np.random.default_rng(1)
    tol = tolerances(task)["vjp"]
    y = None if isinstance(model, Composite) else _vjp_states(data)
    if isinstance(model, Composite):  # each part on its own inputs: images, encoded states
        x = np.asarray(data.y0, dtype=float)[:2]
        encoder_params, core_params, decoder_params = model.split(params)
        h = np.asarray(model.encoder.apply(encoder_params, x, np), dtype=float)
        for layer, p, inputs in ((model.encoder, encoder_params, x), (model.decoder, decoder_params, h)):
            fn = lambda p, xx, layer=layer: layer.apply(p, xx, np)
            what = f"{layer.label}.vjp_numpy"
            _check_vjp_of(fail, "vjp", what, fn, layer.vjp_numpy, p, inputs, tol, rng, task.checks.fd_step)
        core_data = Dataset(t=data.t, y=h[None], y0=h, y_true=h[None])
        _check_vjp(task, model.core, core_params, core_data, fail)
        return
    assert y is not None
    if isinstance(model, AbstractVectorField):
        f = np.asarray(model.rhs(params, y, np))
        fail("vjp", f.shape == y.shape, f"rhs of a batch {y.shape} has shape {f.shape}")
        fn = lambda p, yy: model.rhs(p, yy, np)
        what = f"{model.label}.vjp_numpy"
        _check_vjp_of(fail, "vjp", what, fn, model.vjp_numpy, params, y, tol, rng, task.checks.fd_step)
    elif isinstance(model, AbstractMap):
        fail("vjp", model.n_evaluations > 0, "a discrete model's n_evaluations must be positive")
        states = np.asarray(model.states(params, y, 2, np))
        fail(
            "vjp",
            states.shape == (2, *y.shape),
            f"states(.., 2) has shape {states.shape}, expected {(2, *y.shape)}",
        )
        fail("vjp", bool(np.array_equal(states[0], y)), "states(..)[0] must be y0")
        if model.has_numpy_vjp:  # the discrete analogue of vjp_numpy, where the model has one
            fn = lambda p, yy: model.apply(p, yy, np)
            what = f"{model.label}.apply_vjp_numpy"
            _check_vjp_of(
                fail, "vjp", what, fn, model.apply_vjp_numpy, params, y, tol, rng, task.checks.fd_step
            )
    else:
        fail(
            "vjp",
            False,
            f"model is a {type(model).__name__}: neither an AbstractVectorField nor an AbstractMap",
        )


def _check_loss_cotangent(task: AbstractTask, pred: np.ndarray, data: Dataset, fail: Fail) -> None:
    rng = np.random.default_rng(2)
    obs = np.asarray(data.y, dtype=float)
    cot = np.asarray(task.loss_cotangent(pred, obs))
    fail(
        "loss_cotangent",
        cot.shape == pred.shape,
        f"loss_cotangent has shape {cot.shape}, expected {pred.shape}",
    )
    value, reason = tolerances(task)["loss_cotangent"]
    for _ in range(N_DIRECTIONS):
        v = rng.normal(size=pred.shape)
        v /= np.linalg.norm(v)
        fd = directional_difference(lambda p: float(task.loss(p, obs)), pred, v, FD_STEP)
        _compare(
            fail,
            "loss_cotangent",
            "dL/dpred . v",
            float(np.sum(cot * v)),
            fd,
            float(np.linalg.norm(cot)),
            value,
            reason,
        )


def _check_reference(
    task: AbstractTask, model: AbstractModel, params: Params, data: Dataset, loss: float, fail: Fail
) -> None:
    ref_loss, ref_grad, how = task.reference_gradient(params, data)
    fail(
        "reference_gradient",
        isinstance(how, str) and how.strip(),
        "reference_gradient must say how (3rd item)",
    )
    fail(
        "reference_gradient",
        isinstance(ref_grad, Mapping) and list(ref_grad) == list(params),
        lambda: f"the reference gradient's keys {list(ref_grad)} are not the parameters' {list(params)}",
    )
    for key in params:
        fail(
            "reference_gradient",
            np.shape(ref_grad[key]) == np.shape(params[key]),
            f"reference gradient of {key} has shape {np.shape(ref_grad[key])}, "
            f"expected {np.shape(params[key])}",
        )
    value, reason = tolerances(task)["reference_loss"]
    fail(
        "reference_gradient",
        abs(float(ref_loss) - loss) <= value * abs(loss),
        lambda: (
            f"reference loss {float(ref_loss):.12g} ({how}) against {loss:.12g} by an independent "
            f"DOP853 solve at 1e-12: relative error {abs(float(ref_loss) - loss) / abs(loss):.3g} > "
            f"{value:g} (tolerance: {reason})"
        ),
    )
    value, reason = tolerances(task)["reference_gradient"]
    rng = np.random.default_rng(3)
    g = flatten(ref_grad)
    for _ in range(N_REFERENCE_DIRECTIONS):
        v = param_direction(params, rng)
        phi = lambda s, v=v: loss_at(task, model, shift(params, v, s), data)
        fd = (phi(REFERENCE_STEP) - phi(-REFERENCE_STEP)) / (2 * REFERENCE_STEP)
        _compare(
            fail,
            "reference_gradient",
            f"reference gradient ({how}) . v against finite differences of the "
            "loss through an independent DOP853 solve",
            float(g @ v),
            fd,
            float(np.linalg.norm(g)),
            value,
            reason,
        )


def _check_metrics(
    task: AbstractTask, model: AbstractModel, params: Params, data: Dataset, fail: Fail
) -> None:
    predict = numpy_predictor(model, params)
    metrics = task.metrics(predict, data, params)
    fail(
        "metrics",
        isinstance(metrics, dict) and all(isinstance(k, str) for k in metrics),
        "metrics must return a dict with string keys",
    )
    available = set(metrics) | set(task.protocol.fit_metrics)
    for claim in task.claims:
        for metric in (claim.metric, claim.ratio_to):
            fail(
                "metrics",
                metric is None or metric in available,
                lambda metric=metric, claim=claim: (
                    f"claim {claim.id!r} tests metric {metric!r}, which metrics(...) does not return"
                    f" (it returns {sorted(metrics)};"
                    f" `protocol.fit_metrics` adds {list(task.protocol.fit_metrics)})"
                ),
            )
    drawn = task.trajectories(predict, data)
    fail(
        "metrics",
        isinstance(drawn, dict) and all(isinstance(v, np.ndarray) for v in drawn.values()),
        "trajectories must return a dict of arrays",
    )
    if drawn:
        missing = {"t_obs", "y_obs", "t", "y_true", "y_pred"} - set(drawn)
        fail("metrics", not missing, f"trajectories lacks {sorted(missing)}")
    if isinstance(task, HasEnergy):
        energy = np.asarray(task.hamiltonian(np.asarray(data.y0), np))
        fail("metrics", energy.shape == np.shape(data.y0)[:-1], f"hamiltonian of y0 has shape {energy.shape}")


def task_checks(task_cls: type[AbstractTask], **options: Any) -> Callable[[str], None]:
    """`run(check)`: one named check of `TASK_CHECKS` at a time, on the task built with its
    `checks.options` updated by `options` (earlier checks' results are reused)."""
    fail = Fail(getattr(task_cls, "name", task_cls.__name__))
    state: dict[str, Any] = {}

    def task() -> AbstractTask:
        if "task" not in state:
            state["task"] = task_cls(**{**task_cls.checks.options, **options})
            fail(
                "options", isinstance(state["task"].model, AbstractModel), "`model` must be an AbstractModel"
            )
        return state["task"]

    def data() -> Dataset:
        if "data" not in state:
            state["data"] = check_data(task(), fail)
        return state["data"]

    def params() -> Params:
        if "params" not in state:
            state["params"] = check_init_params(task(), fail)
        return state["params"]

    def pred() -> np.ndarray:
        if "pred" not in state:
            state["pred"] = solve(task().model, params(), data().y0, data().t)
        return state["pred"]

    def run(check: str) -> None:
        if check == "metadata":
            check_metadata(task_cls, fail)
        elif check == "options":
            check_options(task_cls, options, fail)
            task()
        elif check == "data":
            data()
        elif check == "init_params":
            params()
        elif check == "vjp":
            _check_vjp(task(), task().model, params(), data(), fail)
        elif check == "loss_cotangent":
            _check_loss_cotangent(task(), pred(), data(), fail)
        elif check == "reference_gradient":
            loss = float(task().loss(pred(), data().y))
            _check_reference(task(), task().model, params(), data(), loss, fail)
        elif check == "metrics":
            _check_metrics(task(), task().model, params(), data(), fail)
        else:
            raise ValueError(f"unknown check {check!r}; choose from {', '.join(TASK_CHECKS)}")

    return run


def check_task(task_cls: type[AbstractTask], **options: Any) -> None:
    """Check a task class as a third party would; AssertionError on the first failure.

    The task is built with its `checks.options` (small options for a fast check) updated by
    `options`.  In order (`TASK_CHECKS`): name, source and docstring; options, training and
    solver defaults, claims and `checks.tolerances` well-formed; `make_data` deterministic
    and shaped as `Dataset` documents; `init_params` deterministic; the model's hand-written
    `vjp_numpy` (a discrete model's `apply_vjp_numpy`) against finite differences in both
    outputs at the initial parameters and states of the data; `loss_cotangent` against
    finite differences of `loss`; the reference gradient against finite differences of the
    loss through an independent DOP853 solve of `model.rhs` (never through the VJP); and
    `metrics` of the untrained model (through that solve) returning every metric the
    claims test.  Tolerances are the task's `checks.tolerances` (`tolerances`).
    """
    run = task_checks(task_cls, **options)
    for check in TASK_CHECKS:
        run(check)
