"""Lotka-Volterra parameter recovery from consecutive pairs of random observations (002 §3)."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from harness import (
    AbstractVectorField,
    CheckSettings,
    Claim,
    Dataset,
    Parametric,
    Params,
    Predictor,
    TimeScaled,
    TrainingProtocol,
    TrajectoryTask,
    integer,
    positive,
    register_task,
    rmse,
    solve_truth,
)
from tasks._common.physics import lotka_volterra_field, lotka_volterra_vjp
from tasks.lotka_volterra_short import LV_002, X0_002

__all__ = ["LotkaVolterraParams", "PairsTask", "lotka_volterra_pairs"]

LV_KEYS = ("alpha", "beta", "delta", "gamma")
#: 002 §3.3, the report's recovered parameters (800 epochs of gradient descent, lr 1e-4)
REPORTED_002 = {"alpha": 1.096, "beta": 0.399, "delta": 0.101, "gamma": 0.419}


def _lv_field(params: Params, y: Any, xp: Any) -> Any:
    return lotka_volterra_field(y, params, xp)


def lotka_volterra_pairs(seed: int, n_times: int, t1: float) -> tuple[np.ndarray, np.ndarray, Dataset]:
    """002 §2 data as 002 §3.2 trains on it: the LV system of 002 §2 from x0 = (0.8, 0.4),
    observed at `n_times` uniformly random times in [0, t1] (sorted; t = 0, the known initial
    state, is prepended), cut into consecutive pairs.

    **Returns:** `(times, states, data)`: the sorted times (n_times + 1,), the true states
    there (n_times + 1, 2), and the pairs as a `Dataset` for a `TimeScaled` model: s in
    [0, 1], y0 = (x(t_i), T_i) and y[1] = (x(t_{i+1}), T_i) with T_i = t_{i+1} - t_i.
    """
    rng = np.random.default_rng(seed)
    times = np.concatenate([[0.0], np.sort(rng.uniform(0.0, t1, n_times))])
    field = lambda y: lotka_volterra_field(y, LV_002, np)
    states = solve_truth(field, X0_002[None], times)[:, 0]
    durations = np.diff(times)[:, None]
    y0 = np.concatenate([states[:-1], durations], axis=1)
    y1 = np.concatenate([states[1:], durations], axis=1)
    y = np.stack([y0, y1])
    truth = {**LV_002, "times": times, "states": states}
    data = Dataset(t=np.array([0.0, 1.0]), y=y, y0=y0, y_true=y.copy(), truth=truth)
    return times, states, data


class PairsTask(TrajectoryTask):
    """The shared part of the 002 §3 tasks: data as consecutive pairs of 500 random
    observations in [0, 100], every pair integrated over its own duration T_i in one batch
    (a `TimeScaled` model), 100 RK4 steps per pair for `rk4-unrolled` (dt = 0.01 in s).

    Metrics: the one-step error over the pairs, and a rollout of the trained model from x0
    over all observation times (the report's Figs. 2-3), RMSE against the truth.
    """

    options: dict[str, Any] = {"n_times": 500, "t1": 100.0}
    option_ranges = {"n_times": integer(1), "t1": positive()}
    solver_defaults = {"rtol": 1e-7, "atol": 1e-7, "dt": 0.01}
    #: `harness.testing.check_task`: 10 pairs over [0, 2] instead of 500 over [0, 100] (the
    #: same pair durations; the reference solves one system per pair)
    checks = CheckSettings(options={"n_times": 10, "t1": 2.0})

    @property
    @abc.abstractmethod
    def inner(self) -> AbstractVectorField:
        """The vector field learnt from the pairs (in real time)."""

    @property
    def model(self) -> TimeScaled:
        return TimeScaled(self.inner)

    def make_data(self, seed: int) -> Dataset:
        return lotka_volterra_pairs(seed, self.n_times, self.t1)[2]

    def _rollout(self, predict: Predictor, data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, true states, predicted states) from x0 over the observation times, T = 1."""
        times, states = data.truth["times"], data.truth["states"]
        y0 = np.concatenate([states[:1], [[1.0]]], axis=1)
        try:
            pred = np.asarray(predict(times, y0), dtype=float)[:, 0, :2]
        except (RuntimeError, FloatingPointError, OverflowError, ValueError):
            pred = np.full_like(states, np.nan)
        return times, states, pred

    def pair_metrics(self, predict: Predictor, data: Dataset) -> dict[str, float]:
        one_step = np.asarray(predict(data.t, data.y0))[-1, :, :2]
        _, states, pred = self._rollout(predict, data)
        scale = rmse(states, 0.0 * states)
        return {
            "pair_rmse": rmse(one_step, data.y_true[-1, :, :2]),
            "rollout_rmse": rmse(pred, states),
            "rollout_rmse_relative": rmse(pred, states) / scale,
        }

    def trajectories(self, predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
        """The rollout from x0 (batch of one) against the truth and the observations."""
        times, states, pred = self._rollout(predict, data)
        return {
            "t_obs": times,
            "y_obs": states[:, None],
            "t": times,
            "y_true": states[:, None],
            "y_pred": pred[:, None],
        }


@register_task
class LotkaVolterraParams(PairsTask):
    """002 §3 (Backpropagating through RK4 Solver), §3.2 (Training), §3.3 (Results): the
    parameters of the LV model (002 §2) (alpha, beta, delta, gamma) = (1.1, 0.4, 0.1, 0.4)
    are recovered from consecutive pairs of 500 uniformly random observations in [0, 100]
    of the trajectory from x0 = (0.8, 0.4); each pair integrated over its own interval with
    a constant 100 RK4 steps; parameters initialised U(0, 1); MSE loss.

    The report trains with gradient descent at lr 1e-4 for 800 epochs and recovers
    (1.096, 0.399, 0.101, 0.419) (§3.3 table): gamma 4.75% off.  The default here is Adam,
    lr 0.05, 400 full-batch iterations (noise-free data: the optimum is the truth), which
    brings every parameter within 1% on every back-end (metric `max_param_rel_error`).
    """

    name = "lotka_volterra_params"
    source = "002 §3"
    protocol = TrainingProtocol(
        defaults={"iters": 400, "lr": 0.05, "target": 1e-10, "polish": 200, "budget": 120.0}
    )
    claims = (
        Claim(
            "recovers-parameters",
            "002 §3.3, table",
            "backpropagation through RK4 recovers the LV parameters",
            "(1.096, 0.399, 0.101, 0.419): gamma 4.75% off",
            "max_param_rel_error",
            "<=",
            0.01,
            "1%: the issue's bar; noise-free data make the truth the optimum",
        ),
    )

    @property
    def inner(self) -> Parametric:
        return Parametric(
            name="Lotka-Volterra (002 §2)",
            field=_lv_field,
            vjp=lotka_volterra_vjp,
            initial=lambda seed: dict(
                zip(LV_KEYS, np.random.default_rng(seed).uniform(0.0, 1.0, 4), strict=True)
            ),
        )

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        metrics = self.pair_metrics(predict, data)
        errors = {k: abs(float(params[k]) - LV_002[k]) / LV_002[k] for k in LV_KEYS}
        for k in LV_KEYS:
            metrics[k] = float(params[k])
            metrics[f"{k}_rel_error"] = errors[k]
        metrics["max_param_rel_error"] = max(errors.values())
        metrics["report_max_param_rel_error"] = max(
            abs(REPORTED_002[k] - LV_002[k]) / LV_002[k] for k in LV_KEYS
        )
        return metrics
