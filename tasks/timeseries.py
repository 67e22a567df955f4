"""A neural ODE fitted to the user's own time series, read from a CSV file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness import (
    MLP,
    CheckSettings,
    Dataset,
    TrainingProtocol,
    TrajectoryTask,
    UsageError,
    flag,
    integer,
    probability,
    register_task,
    text,
)
from tasks._common.csv_series import Series, read_series

#: the data when no `path` is given: Hudson's Bay Company hare and lynx pelts, 1900-1920
EXAMPLE = Path(__file__).resolve().parent / "data" / "hudson_bay_lynx_hare.csv"


@register_task
class TimeSeries(TrajectoryTask):
    """Your data: `--set path=FILE.csv`, a header row, time in the first column and one
    state per other column (their names label figures and tables).  The model is the one
    of 000 §3's examples, an MLP N-`hidden`-N with tanh, trained on the rows up to
    `t_split` (default: the first `train_fraction` of the rows) from the first row's
    state, and extrapolated forward over the rest, where it is compared with the data it
    did not see.  With `standardise` (default) each state is centred and scaled by the
    mean and standard deviation of its training rows, and every figure and metric is in
    those units.  Real data has no noise-free truth: the metrics are against the
    observations (records say `truth: observations`).  No document makes claims about
    your data, so there is nothing to judge: the answer section says which back-end suits
    it.  Adam with lr 1e-2 as in 000 §3.2's example, at most 2000 steps, then the L-BFGS
    polish.  Without `path`: 21 yearly hare and lynx counts of the Hudson's Bay Company
    (1900-1920, `tasks/data/README.md`), the classic Lotka-Volterra data (000 §3.2).
    """

    name = "timeseries"
    source = "user data (model: 000 §3)"
    noise_free_truth = False
    options = {"path": "", "t_split": "", "train_fraction": 0.75, "hidden": 64, "standardise": True}
    option_ranges = {
        "path": text(),
        "t_split": text(),
        "train_fraction": probability(),
        "hidden": integer(1),
        "standardise": flag(),
    }
    checks = CheckSettings(options={"hidden": 8})
    protocol = TrainingProtocol(defaults={"iters": 2000, "lr": 1e-2, "polish": 2000, "budget": 600.0})

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        self.split_index()  # reads and checks the file now, when the run is planned: one line, exit 2

    @cached_property
    def series(self) -> Series:
        return read_series(self.path or EXAMPLE)

    def split_index(self) -> int:
        """How many leading rows train (at least 2; the rest is the forward window)."""
        t = self.series.t
        if self.t_split:
            try:
                split = float(self.t_split)
            except ValueError:
                raise UsageError(f"{self.name}: t_split must be a time, not '{self.t_split}'") from None
            n = int(np.searchsorted(t, split, side="right"))
        else:
            n = round(self.train_fraction * t.size)
        if n < 2:
            raise UsageError(
                f"{self.name}: {n} row(s) up to the split; the training window needs at least 2 of the "
                f"{t.size} rows ({self.series.time_name} {t[0]:g} to {t[-1]:g})"
            )
        return min(n, t.size)

    @property
    def state_names(self) -> tuple[str, ...]:
        suffix = " (standardised)" if self.standardise else ""
        return tuple(f"{name}{suffix}" for name in self.series.state_names)

    @property
    def model(self) -> MLP:
        n = self.series.y.shape[1]
        return MLP(sizes=(n, self.hidden, n), activation="tanh")

    def make_data(self, seed: int) -> Dataset:
        """The same data for every seed (the seed draws the initial weights only)."""
        series, n = self.series, self.split_index()
        y = series.y
        if self.standardise:
            mean, std = y[:n].mean(axis=0), y[:n].std(axis=0)
            if np.any(std == 0):
                name = series.state_names[int(np.argmin(std))]
                raise UsageError(f"{self.name}: column '{name}' is constant in the training rows")
            y = (y - mean) / std
        observed = y[:, None, :]  # (R, 1, N): one trajectory
        extra = {"t_forward": series.t[n:], "y_forward": observed[n:]} if n < series.t.size else {}
        return Dataset(t=series.t[:n], y=observed[:n], y0=observed[0], y_true=observed[:n], truth={}, **extra)
