"""EventBatch: construction, validation and views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventprop import EventBatch


def test_from_dense_round_trip_with_counts() -> None:
    x = torch.zeros(2, 5, 3)
    x[0, 1, 2] = 1
    x[1, 4, 0] = 2  # two spikes in one bin
    x[1, 0, 1] = 1
    ev = EventBatch.from_dense(x, dt=0.5)
    assert len(ev) == 4
    assert ev.dt == 0.5 and ev.duration == 2.5
    assert torch.equal(ev.to_dense(), x)
    assert ev.counts_per_sample().tolist() == [1, 3]


def test_from_spike_times_bins_and_keeps_offsets() -> None:
    ev = EventBatch.from_spike_times(
        [np.array([2.25, 0.0]), np.array([9.99])],
        [np.array([1, 0]), np.array([3])],
        n_steps=5,
        n_channels=4,
        dt=2.0,
    )
    assert ev.sample.tolist() == [0, 0, 1]
    assert ev.step.tolist() == [0, 1, 4]
    assert ev.channel.tolist() == [0, 1, 3]
    np.testing.assert_allclose(ev.times().numpy(), [0.0, 2.25, 9.99])
    assert float(ev.offset.max()) < 1.0


def test_step_pointers_slice_each_step() -> None:
    ev = EventBatch.from_arrays(
        [1, 0, 1, 1], [2, 0, 2, 0], [0, 1, 2, 3], batch_size=2, n_steps=3, n_channels=4
    )
    p = ev.step_pointers().tolist()
    assert len(p) == 2 * 3 + 1
    # sample 1, step 2 holds two events
    assert p[1 * 3 + 3] - p[1 * 3 + 2] == 2
    assert p[0 * 3 + 1] - p[0 * 3 + 0] == 1


def test_select_reorders_samples() -> None:
    x = (torch.rand(3, 6, 4, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    ev = EventBatch.from_dense(x)
    sub = ev.select([2, 0])
    assert torch.equal(sub.to_dense(), x[[2, 0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": [0, 7]}, "channel: value 7"),
        ({"channel": [0, -1]}, "channel: value -1"),
        ({"step": [0, 10]}, "step: value 10"),
        ({"sample": [0, 2]}, "sample: value 2"),
        ({"channel": [0.5, 1.0]}, "channel: expected integers"),
        ({"channel": [[0, 1]]}, "channel: expected a 1-D array"),
        ({"step": [0]}, "step: has 1 entries"),
    ],
)
def test_from_arrays_rejects_bad_fields(kwargs: dict, message: str) -> None:
    fields = {"sample": [0, 1], "step": [0, 1], "channel": [0, 1]}
    fields.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        EventBatch.from_arrays(**fields, batch_size=2, n_steps=10, n_channels=5)


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([-1.0], "negative spike time"),
        ([np.nan], "non-finite"),
        ([np.inf], "non-finite"),
        ([10.0], "beyond the trial"),
    ],
)
def test_from_spike_times_rejects_bad_times(times: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventBatch.from_spike_times([np.array(times)], [np.array([0])], n_steps=10, n_channels=2)


def test_from_dense_rejects_bad_tensors() -> None:
    with pytest.raises(ValueError, match="expected shape"):
        EventBatch.from_dense(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="non-negative"):
        EventBatch.from_dense(-torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="whole spike counts"):
        EventBatch.from_dense(torch.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="dt"):
        EventBatch.from_dense(torch.zeros(1, 2, 2), dt=0.0)
