"""Metrics shared by trajectory tasks: fit in the window, extrapolation outside it."""

from __future__ import annotations

import numpy as np

from harness.core.protocols import Dataset, Predictor

__all__ = [
    "FOLLOW_TOLERANCE",
    "extrapolate",
    "followed_windows",
    "rmse",
    "trajectories",
    "trajectory_metrics",
]

#: `followed_windows`: a prediction follows the truth while its error is at most this
#: fraction of the truth's RMS over the training window
FOLLOW_TOLERANCE = 0.1


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root of the mean over times and batch of the squared state error."""
    diff = np.asarray(pred) - np.asarray(true)
    return float(np.sqrt(np.mean(np.sum(diff * diff, axis=-1))))


def _predict_or_nan(predict: Predictor, times: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """An extrapolation may blow up (000 §3.1: backward in time it is expected to fail):
    a solver that gives up yields NaN states, which the metrics report, not a crash."""
    try:
        return np.asarray(predict(times, y0), dtype=float)
    except (RuntimeError, FloatingPointError, OverflowError, ValueError):
        return np.full((len(times), *np.shape(y0)), np.nan)


def extrapolate(predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
    """Predictions over the training window plus the forward window, and over the backward one."""
    out = {"fit": predict(data.t, data.y0)}
    if data.t_forward.size:
        times = np.concatenate([data.t, data.t_forward])
        out["forward"] = _predict_or_nan(predict, times, data.y0)[data.n_obs :]
    if data.t_backward.size:
        times = np.concatenate([data.t[:1], data.t_backward])
        out["backward"] = _predict_or_nan(predict, times, data.y0)[1:]
    return out


def followed_windows(
    pred: np.ndarray, true: np.ndarray, times: np.ndarray, start: float, window: float, scale: float
) -> float:
    """How many training-window lengths past `start` the prediction stays within
    `FOLLOW_TOLERANCE` x `scale` of the truth (the error at each time: the RMS over the batch
    of the state error): the distance to the last time before the first larger error, in
    units of `window`; the whole extrapolation window when it never errs more.  Says how
    far a Fig. 9-style "extrapolates" claim holds (000 §3.4)."""
    err = np.sqrt(np.mean(np.sum((np.asarray(pred) - np.asarray(true)) ** 2, axis=-1), axis=-1)) / scale
    bad = np.flatnonzero(~(err <= FOLLOW_TOLERANCE))  # NaN (a blown-up solve) is an error too
    last = len(times) if bad.size == 0 else int(bad[0])
    reach = abs(float(times[last - 1]) - start) if last > 0 else 0.0
    return reach / window


def trajectory_metrics(predict: Predictor, data: Dataset) -> dict[str, float]:
    """`fit_rmse` against the noise-free truth in the training window (and relative to the
    truth's RMS), `extrap_forward_rmse` / `extrap_backward_rmse` in the extrapolation windows
    (and relative to the truth's RMS in that window: `..._relative`), and how many window
    lengths each extrapolation follows the truth (`followed_windows`)."""
    pred = extrapolate(predict, data)
    scale = rmse(data.y_true, 0.0 * data.y_true)
    metrics = {"fit_rmse": rmse(pred["fit"], data.y_true)}
    # 1.0 is no better than predicting zero: a model stuck at the equilibrium shows here
    metrics["fit_rmse_relative"] = metrics["fit_rmse"] / scale
    for side, true in (("forward", data.y_forward), ("backward", data.y_backward)):
        if side in pred:
            metrics[f"extrap_{side}_rmse"] = rmse(pred[side], true)
            metrics[f"extrap_{side}_rmse_relative"] = metrics[f"extrap_{side}_rmse"] / rmse(true, 0.0 * true)
            times = data.t_forward if side == "forward" else data.t_backward
            start = float(data.t[-1] if side == "forward" else data.t[0])
            window = float(data.t[-1] - data.t[0])
            metrics[f"extrap_{side}_windows_followed"] = followed_windows(
                pred[side], true, times, start, window, scale
            )
    return metrics


def trajectories(predict: Predictor, data: Dataset) -> dict[str, np.ndarray]:
    """The trained model and the truth over backward window + training window + forward
    window (increasing times), and the observations: what the trajectory figures draw."""
    pred = extrapolate(predict, data)
    parts_t, parts_true, parts_pred = [data.t], [data.y_true], [pred["fit"]]
    if "backward" in pred:
        parts_t.insert(0, data.t_backward[::-1])
        parts_true.insert(0, data.y_backward[::-1])
        parts_pred.insert(0, pred["backward"][::-1])
    if "forward" in pred:
        parts_t.append(data.t_forward)
        parts_true.append(data.y_forward)
        parts_pred.append(pred["forward"])
    return {
        "t_obs": data.t,
        "y_obs": data.y,
        "t": np.concatenate(parts_t),
        "y_true": np.concatenate(parts_true),
        "y_pred": np.concatenate(parts_pred),
    }
