"""`harness.numerics.metrics.followed_windows`: how far an extrapolation follows the truth."""

from __future__ import annotations

import numpy as np

from harness.numerics.metrics import followed_windows


def test_followed_windows_counts_window_lengths_to_the_first_larger_error() -> None:
    """Window [0, 2] (length 2), forward times 2.5 ... 8: the error is 5% of the scale up to
    t = 6 and 20% from t = 6.5 on, so the prediction follows (6 - 2) / 2 = 2 windows."""
    times = np.arange(2.5, 8.01, 0.5)
    true = np.zeros((len(times), 1, 2))
    pred = true.copy()
    pred[:, 0, 0] = np.where(times <= 6.0, 0.05, 0.2)
    assert followed_windows(pred, true, times, start=2.0, window=2.0, scale=1.0) == 2.0
    # never off by more than 10%: the whole extrapolation window, (8 - 2) / 2
    assert followed_windows(true + 0.01, true, times, start=2.0, window=2.0, scale=1.0) == 3.0
    # off from the first point (or NaN, a blown-up solve): 0
    assert followed_windows(true + 1.0, true, times, start=2.0, window=2.0, scale=1.0) == 0.0
    assert followed_windows(true * np.nan, true, times, start=2.0, window=2.0, scale=1.0) == 0.0


def test_backward_windows_count_from_the_start() -> None:
    times = -np.arange(0.5, 4.01, 0.5)  # decreasing, before t0 = 0
    true = np.ones((len(times), 2, 1))
    pred = true.copy()
    pred[times < -1.0] += 0.5  # |error| 0.5 = 50% of the scale 1 from t = -1.5 on
    assert followed_windows(pred, true, times, start=0.0, window=1.0, scale=1.0) == 1.0
