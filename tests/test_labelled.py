"""A classifier's data (`harness.core.labelled`): labelled examples, their subsets and
mini-batches, and the measured batch that back-ends see as a `Dataset`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness import ClassificationData, Examples


def examples(n: int, d: int = 12) -> Examples:
    """`n` examples whose first input is their index and whose label is index mod 10."""
    x = np.zeros((n, d))
    x[:, 0] = np.arange(n)
    return Examples(x, np.arange(n) % 10)


def test_examples_need_one_label_per_input() -> None:
    with pytest.raises(ValueError, match="3 inputs but 2 labels"):
        Examples(np.zeros((3, 4)), np.zeros(2, dtype=int))


def test_a_subset_is_seeded_ordered_and_draws_nothing_when_it_keeps_all() -> None:
    ex = examples(50)
    rng = np.random.default_rng(0)
    assert ex.subset(rng, 0) is ex and ex.subset(rng, 50) is ex and ex.subset(rng, 80) is ex
    assert rng.bit_generator.state == np.random.default_rng(0).bit_generator.state  # nothing drawn
    picked = ex.subset(rng, 7)
    index = picked.x[:, 0].astype(int)
    assert len(picked) == 7 and np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(picked.labels, index % 10)
    again = ex.subset(np.random.default_rng(0), 7)
    np.testing.assert_array_equal(again.x, picked.x)


def test_batches_cover_an_epoch_once_and_keep_the_pairs() -> None:
    ex = examples(23)
    seen = np.concatenate([b.x[:, 0] for b in ex.batches(5, np.random.default_rng(1))])
    assert len(seen) == 20 and len(np.unique(seen)) == 20  # the partial batch of 3 dropped
    first = [b.x[:, 0] for b in ex.batches(5, np.random.default_rng(1))]
    other = [b.x[:, 0] for b in ex.batches(5, np.random.default_rng(2))]
    assert not np.array_equal(np.concatenate(first), np.concatenate(other))
    with pytest.raises(ValueError, match="batch size 0 must be between 1 and the 23 examples"):
        next(ex.batches(0, np.random.default_rng(0)))


def test_the_measured_batch_is_the_first_training_examples_one_hot_at_the_read_out() -> None:
    train, test = examples(30), examples(8)
    data = ClassificationData.of(train, test, t1=2.0, measured=6, width=12)
    np.testing.assert_array_equal(data.t, [0.0, 2.0])
    np.testing.assert_array_equal(data.y0, train.x[:6])
    assert data.y.shape == (2, 6, 12) and np.all(data.y[0] == 0) and np.all(data.y[-1, :, 10:] == 0)
    np.testing.assert_array_equal(np.argmax(data.y[-1], axis=1), train.labels[:6])
    np.testing.assert_array_equal(data.y_true, data.y)
    assert data.problems(_Bare()) == []  # a well-formed Dataset
    everything = ClassificationData.of(train, test, t1=1.0, measured=0, width=10)
    assert everything.y0.shape == (30, 12) and everything.y.shape == (2, 30, 10)
    batch = train.take(slice(3, 9))
    np.testing.assert_array_equal(data.observe(batch)[-1].argmax(axis=1), batch.labels)
    moved = dataclasses.replace(data, y0=batch.x)  # the typed sets travel with a replaced view
    assert moved.train is train and moved.test is test


def test_bad_widths_and_labels_are_one_line() -> None:
    with pytest.raises(ValueError, match="output width 8 is less than the 10 classes"):
        ClassificationData.of(examples(5), examples(5), t1=1.0, measured=0, width=8)
    bad = Examples(np.zeros((2, 12)), np.array([3, 10]))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.9"):
        ClassificationData.of(bad, examples(5), t1=1.0, measured=0, width=12)


class _Bare:
    """A stand-in model for `Dataset.problems`: not a Composite, so N is y0's width."""
