"""Linear dynamics f(z) = W z with W trainable: the gradient is known in closed form."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import expm, expm_frechet

from harness import (
    CheckSettings,
    Claim,
    Dataset,
    Parametric,
    Params,
    Predictor,
    TrainingProtocol,
    TrajectoryTask,
    fit_claim,
    integer,
    mse_loss,
    mse_loss_cotangent,
    non_negative,
    positive,
    register_task,
)
from tasks._common.physics import linear_field

#: the true matrix, A of 000 §3.1 eq. (3.2)
A_TRUE = np.array([[-0.1, 2.0], [-2.0, -0.1]])


def _field(params: Params, y: Any, xp: Any) -> Any:
    return linear_field(y, params["W"], xp)


def _vjp(params: Params, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
    # f = y W^T: a^T df/dy = a W, a^T df/dW = a^T y (001, "Gradient with respect to weights")
    return a @ params["W"], {"W": a.T @ y}


@register_task
class LinearAdjoint(TrajectoryTask):
    """The worked example of 001 ("Example: adjoint computation of dynamics f"): f(z) = W z
    with the entries of W as the parameters theta.  Since z(t) = expm(W t) z0, the loss and
    its gradient are known in closed form (the Frechet derivative of the matrix
    exponential), so every back-end's gradient error is exact.

    001 gives no numbers; the data come from the linear system of 000 §3.1 (A of eq. 3.2,
    t in [0, 1], 11 uniform observations, a batch of u0 ~ N(0, 4^2)).  The initial W is
    N(0, 1) entry-wise.  Tight default tolerances (rtol = atol = 1e-10) because this task is
    the exact oracle.
    """

    name = "linear_adjoint"
    source = "001 (worked example f(z) = W z); data of 000 §3.1"
    options = {"t1": 1.0, "n_obs": 11, "batch": 8, "sigma0": 4.0, "extrap": 1.0}
    option_ranges = {
        "t1": positive(),
        "n_obs": integer(2),
        "batch": integer(1),
        "sigma0": positive(),
        "extrap": non_negative(),
    }
    solver_defaults = {"rtol": 1e-10, "atol": 1e-10, "dt": 0.001}
    checks = CheckSettings(
        tolerances={
            "gradient": (
                1e-8,
                "against the closed form at the default rtol = atol = 1e-10: the adaptive solvers'"
                " local errors are ~1e-10 and the gradient inherits a few times that",
            ),
        }
    )
    protocol = TrainingProtocol(defaults={"iters": 200, "lr": 0.05, "target": 1e-5, "budget": 120.0})
    claims = (
        Claim(
            "recovers-W",
            "001 (f(z) = W z)",
            "gradient descent through the adjoint recovers the linear dynamics W",
            "the worked example's W = A",
            "W_rel_error",
            "<=",
            0.01,
            "1% of |A|: W is learnt, not merely a fit of 11 points",
        ),
        fit_claim(
            "fit",
            "001; data of 000 §3.1",
            "the learnt linear ODE follows the observations",
            "exact model class: a perfect fit is possible",
            0.01,
            "1%: the model class contains the truth",
        ),
    )

    @property
    def model(self) -> Parametric:
        return Parametric(
            name="f(z) = W z",
            field=_field,
            vjp=_vjp,
            initial=lambda seed: {"W": np.random.default_rng(seed + 1).normal(size=(2, 2))},
        )

    def make_data(self, seed: int) -> Dataset:
        rng = np.random.default_rng(seed)
        y0 = rng.normal(0.0, self.sigma0, size=(self.batch, 2))
        t = np.linspace(0.0, self.t1, self.n_obs)
        n_ext = max(2, round(self.n_obs * self.extrap / self.t1))
        t_fwd = t[-1] + np.linspace(0.0, self.extrap, n_ext + 1)[1:]
        t_bwd = t[0] - np.linspace(0.0, self.extrap, n_ext + 1)[1:]

        def exact(times: np.ndarray) -> np.ndarray:
            return np.stack([y0 @ expm(A_TRUE * (s - t[0])).T for s in times])

        y = exact(t)
        return Dataset(
            t=t,
            y=y,
            y0=y0,
            y_true=y,
            t_forward=t_fwd,
            y_forward=exact(t_fwd),
            t_backward=t_bwd,
            y_backward=exact(t_bwd),
            truth={"W": A_TRUE},
        )

    def reference_gradient(self, params: Params, data: Dataset) -> tuple[float, Params, str]:
        """Closed form: L = mean_i,b |expm(W t_i) z0_b - y_ib|^2, and with G_i = sum_b
        dL/dz(t_i)_b z0_b^T, dL/dW = sum_i t_i L_expm(t_i W^T, G_i)."""
        W = params["W"]
        taus = data.t - data.t[0]
        pred = np.stack([data.y0 @ expm(W * tau).T for tau in taus])
        cot = mse_loss_cotangent(pred, data.y)
        grad = np.zeros_like(W)
        for i, tau in enumerate(taus):
            G = cot[i].T @ data.y0
            grad += tau * expm_frechet(W.T * tau, G, compute_expm=False)
        return float(mse_loss(pred, data.y)), {"W": grad}, "closed form (expm Frechet derivative)"

    def metrics(self, predict: Predictor, data: Dataset, params: Params) -> dict[str, float]:
        from harness import trajectory_metrics

        W = np.asarray(params["W"])
        rel = float(np.linalg.norm(W - A_TRUE) / np.linalg.norm(A_TRUE))
        return {**trajectory_metrics(predict, data), "W_rel_error": rel}
