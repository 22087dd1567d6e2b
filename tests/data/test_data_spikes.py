"""The flat dataset container and its vectorised helpers."""

from __future__ import annotations

import numpy as np
import pytest

from eventprop.data.spikes import (
    SpikeData,
    gather_segments,
    index_dtype,
    iter_segment_chunks,
    segment_sum,
    split_steps,
)


def _d(offsets=False) -> SpikeData:
    return SpikeData.from_arrays(
        np.array([0, 5, 1, 2, 3, 9]),
        np.array([1, 2, 3, 4, 0, 0]),
        np.array([0, 2, 2, 5, 6]),  # sample 1 is empty
        np.array([0, 1, 0, 2]),
        n_steps=10,
        n_channels=5,
        dt=0.5,
        offset=np.linspace(0, 0.9, 6) if offsets else None,
        speakers=np.array([7, 7, 8, 9]),
        class_names=["a", "b", "c"],
    )


def test_from_arrays_validates():
    with pytest.raises(ValueError, match=r"step: value 10 at spike 1 is outside 0\.\.9"):
        SpikeData.from_arrays([0, 10], [0, 0], [0, 2], [0], n_steps=10, n_channels=2, dt=1.0)
    with pytest.raises(ValueError, match="channel: value -1"):
        SpikeData.from_arrays([0, 1], [0, -1], [0, 2], [0], n_steps=10, n_channels=2, dt=1.0)
    with pytest.raises(ValueError, match="pointers: must rise"):
        SpikeData.from_arrays([0, 1], [0, 1], [0, 3], [0], n_steps=10, n_channels=2, dt=1.0)
    with pytest.raises(ValueError, match="pointers: expected 3 entries"):
        SpikeData.from_arrays([0, 1], [0, 1], [0, 2], [0, 1], n_steps=10, n_channels=2, dt=1.0)
    with pytest.raises(ValueError, match=r"offset: values must be finite and lie in \[0, 1\)"):
        SpikeData.from_arrays([0], [0], [0, 1], [0], n_steps=10, n_channels=2, dt=1.0, offset=[1.0])
    with pytest.raises(TypeError, match="integers"):
        SpikeData.from_arrays([0.5], [0], [0, 1], [0], n_steps=10, n_channels=2, dt=1.0)
    d = _d()
    assert d.step.dtype == np.int16 and d.channel.dtype == np.int16 and len(d) == 4


def test_views_and_times():
    d = _d(offsets=True)
    s, c, _ = d.spikes(2)
    assert s.tolist() == [1, 2, 3] and c.tolist() == [3, 4, 0]
    assert d.spikes(1)[0].size == 0 and d.spikes(-1)[0].tolist() == [9]
    assert d.counts().tolist() == [2, 0, 3, 1]
    assert d.sample_ids().tolist() == [0, 0, 2, 2, 2, 3]
    np.testing.assert_allclose(d.times_ms(), (d.step + d.offset) * 0.5, rtol=1e-6)
    assert d.duration == 5.0
    with pytest.raises(IndexError):
        d.spikes(4)


def test_subset_concatenate_filter():
    d = _d(offsets=True)
    sub = d.subset([3, 0, 0, -2])
    assert sub.counts().tolist() == [1, 2, 2, 3]
    assert sub.labels.tolist() == [2, 0, 0, 0] and sub.speakers.tolist() == [9, 7, 7, 8]
    assert sub.step.tolist() == [9, 0, 5, 0, 5, 1, 2, 3]
    np.testing.assert_array_equal(sub.offset[:1], d.offset[5:6])
    both = SpikeData.concatenate([d, sub])
    assert len(both) == 8 and both.n_spikes == 14
    assert both.pointers.tolist() == [0, 2, 2, 5, 6, 7, 9, 11, 14]
    with pytest.raises(ValueError, match="part 1"):
        SpikeData.concatenate(
            [d, SpikeData.from_arrays([], [], [0], [], n_steps=3, n_channels=5, dt=0.5)]
        )
    kept = d.filter_spikes(d.channel > 0)
    assert kept.counts().tolist() == [2, 0, 2, 0]
    assert kept.channel.tolist() == [1, 2, 3, 4]
    with pytest.raises(IndexError):
        d.subset([4])


def test_from_spike_times():
    d = SpikeData.from_spike_times(
        [np.array([0.0, 2.5, 4.99]), np.array([])],
        [np.array([0, 1, 2]), np.array([], int)],
        [1, 0],
        n_steps=5,
        n_channels=3,
        dt=1.0,
    )
    assert d.step.tolist() == [0, 2, 4]
    np.testing.assert_allclose(d.offset, [0, 0.5, 0.99], atol=1e-6)
    with pytest.raises(ValueError, match=r"times\[0\]: spike time 5.0 ms is not in \[0, 5.0\)"):
        SpikeData.from_spike_times(
            [np.array([5.0])], [np.array([0])], [0], n_steps=5, n_channels=1, dt=1.0
        )


def test_split_steps_tolerance():
    step, off = split_steps(np.array([2.9999999999999996, 0.9999999999, 2.5, 1.99999]))
    assert step.tolist() == [3, 1, 2, 1]  # within 1e-9 below a boundary counts as on it
    assert off[0] == 0 and off[1] == 0 and off[2] == np.float32(0.5)
    assert 0.9999 < off[3] < 1.0


def test_helpers():
    assert index_dtype(700) == np.int16 and index_dtype(20000) == np.int32
    assert index_dtype(2**31) == np.int64
    p = np.array([0, 2, 2, 5, 5])
    assert segment_sum(np.array([1, 1, 2, 2, 2]), p).tolist() == [2, 0, 6, 0]
    assert segment_sum(np.array([True, False, True, True, False]), p).tolist() == [1, 0, 2, 0]
    pos, ptr = gather_segments(p, np.array([2, 0, 2]))
    assert pos.tolist() == [2, 3, 4, 0, 1, 2, 3, 4] and ptr.tolist() == [0, 3, 5, 8]
    big = np.concatenate([[0], np.cumsum([3, 100, 0, 4, 4, 4])])
    runs = [r.tolist() for r in iter_segment_chunks(big, np.arange(6), max_spikes=8)]
    assert runs == [
        [0],
        [1],
        [2, 3, 4],
        [5],
    ]  # whole segments, at most 8 spikes unless one is larger
