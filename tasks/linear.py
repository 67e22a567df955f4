"""A linear system learnt by an MLP neural ODE from a batch of initial conditions."""

from __future__ import annotations

import numpy as np

from harness import (
    MLP,
    CheckSettings,
    Dataset,
    TrainingProtocol,
    TrajectoryTask,
    fit_claim,
    integer,
    non_negative,
    positive,
    register_task,
    trajectory_dataset,
)
from tasks._common.physics import linear_field
from tasks.linear_adjoint import A_TRUE


@register_task
class Linear(TrajectoryTask):
    """000 §3.1 (Example: linear system): du/dt = A u with A = [[-0.1, 2], [-2, -0.1]]
    (eq. 3.2) on [0, 1], 11 uniformly spaced observations of a batch of initial
    conditions u0 ~ N(0, 4^2); the neural ODE is an MLP 2-64-2 with tanh (000 §3).

    The report does not say how many initial conditions: `batch`, default 64.  Forward
    extrapolation follows the decaying truth; backward, the amplitude grows, the tanh
    units saturate and the neural ODE cannot follow (Fig. 2): `extrap_backward_rmse` shows
    it.  Adam with lr 1e-2 (the report names no optimiser), to the target loss 0.02
    (fit error about 3%) or 500 iterations, then the L-BFGS polish (at most 3000
    evaluations) to convergence.  Converged, the model follows backward too (a finding):
    at the target alone (2.7% fit) the backward error was 24%, on converged models of seeds
    0 and 1 (jax-checkpoint, fit 0.01%) 1.2% and 4.3%.  The extrapolation window is not sized in the
    report: `extrap` = 3 (at 1 time unit the backward error is only 1.3x the forward one,
    at 3 it is 5x, as Fig. 2 shows).
    """

    name = "linear"
    #: `harness.testing.check_task`: a smaller batch and MLP, the same checks
    checks = CheckSettings(options={"batch": 8, "hidden": 16})
    source = "000 §3.1"
    options = {"t1": 1.0, "n_obs": 11, "batch": 64, "sigma0": 4.0, "extrap": 3.0, "hidden": 64}
    option_ranges = {
        "t1": positive(),
        "n_obs": integer(2),
        "batch": integer(1),
        "sigma0": positive(),
        "extrap": non_negative(),
        "hidden": integer(1),
    }
    protocol = TrainingProtocol(
        defaults={"iters": 500, "lr": 1e-2, "target": 0.02, "polish": 3000, "budget": 600.0}
    )
    claims = (
        fit_claim(
            "fit",
            "000 §3.1, Fig. 1",
            "follows the true solution quite well inside [0, 1]",
            "Fig. 1: curves on top of each other",
            0.05,
            "5% of the signal's RMS is indistinguishable at the scale of Fig. 1",
        ),
        fit_claim(
            "extrapolates-forward",
            "000 §3.1, Fig. 2",
            "keeps up with the decaying truth forward in time",
            "Fig. 2: forward branch follows",
            0.1,
            "10% of the window's RMS: the curves still overlap visibly",
        ),
        fit_claim(
            "fails-backward",
            "000 §3.1, Fig. 2",
            "cannot follow backward in time, where the amplitude grows",
            "Fig. 2: backward branch departs",
            0.2,
            "a fifth of the signal is visibly off, against under a tenth forward",
            finding=(
                "a converged model follows the truth backward too (1.2% and 4.3% of the "
                "signal over [-3, 0], jax-checkpoint, seeds 0 and 1): the departing branch of "
                "Fig. 2 is that of a loosely trained model (24% at a 2.7% fit)"
            ),
        ),
    )

    @property
    def model(self) -> MLP:
        return MLP(sizes=(2, self.hidden, 2), activation="tanh")

    def make_data(self, seed: int) -> Dataset:
        rng = np.random.default_rng(seed)
        y0 = rng.normal(0.0, self.sigma0, size=(self.batch, 2))
        t = np.linspace(0.0, self.t1, self.n_obs)
        n_ext = max(2, round((self.n_obs - 1) * self.extrap / self.t1))
        field = lambda y: linear_field(y, A_TRUE, np)
        return trajectory_dataset(field, y0, t, extrap=self.extrap, n_extrap=n_ext, truth={"A": A_TRUE})
