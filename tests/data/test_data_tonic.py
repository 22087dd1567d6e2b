"""tonic's structured event layout (t in microseconds, x, p) without tonic installed."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from eventprop.data.datasets import SpikeDataset, TonicDataset
from eventprop.data.preprocess import BinningConfig, bin_spikes
from eventprop.data.tonic_interop import TONIC_DTYPE, from_tonic, spike_data_from_tonic, to_tonic
from eventprop.events import EventBatch


def _tonic_sample(t_us, x, p=None):
    ev = np.zeros(len(t_us), dtype=TONIC_DTYPE)
    ev["t"], ev["x"], ev["p"] = t_us, x, 1 if p is None else p
    return ev


def test_from_tonic_units_and_round_trip():
    ev = _tonic_sample([1500, 250_000, 999_999], [3, 699, 0])
    t, c = from_tonic(ev)
    np.testing.assert_allclose(t, [1.5, 250.0, 999.999])
    assert c.tolist() == [3, 699, 0]
    back = to_tonic(t, c)
    assert back.dtype == TONIC_DTYPE
    np.testing.assert_array_equal(back, ev)


def test_2d_sensor_and_polarity():
    dt = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<f8"), ("p", "?")])
    ev = np.array([(1, 2, 10.0, True), (3, 0, 20.0, False)], dtype=dt)
    _, c = from_tonic(ev, sensor_size=(4, 3, 2))
    assert c.tolist() == [1 + 2 * 4, 3]
    _, c2 = from_tonic(ev, sensor_size=(4, 3, 2), split_polarity=True)
    assert c2.tolist() == [9 * 2 + 1, 3 * 2 + 0]
    with pytest.raises(ValueError, match="sensor_size"):
        from_tonic(ev)


def test_from_tonic_errors():
    with pytest.raises(TypeError, match="structured array"):
        from_tonic(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="missing field 'x'"):
        from_tonic(np.zeros(2, dtype=[("t", "<i8"), ("p", "<i8")]))
    with pytest.raises(ValueError, match="'t' must be finite and >= 0"):
        from_tonic(_tonic_sample([-5], [0]))


def test_spike_data_from_tonic_bins_like_shd():
    rng = np.random.default_rng(0)
    samples, times, units = [], [], []
    for _ in range(6):
        t_us = np.sort(rng.integers(0, 1_200_000, 300))
        x = rng.integers(0, 700, 300)
        samples.append(_tonic_sample(t_us, x))
        times.append(t_us / 1000.0)
        units.append(x)
    d = spike_data_from_tonic(samples, np.arange(6), n_channels=700)
    ptr = np.concatenate([[0], np.cumsum([len(t) for t in times])])
    ref = bin_spikes(
        np.concatenate(times),
        np.concatenate(units),
        ptr,
        np.arange(6),
        BinningConfig(),
        time_scale=1.0,
    )
    np.testing.assert_array_equal(d.step, ref.step)
    np.testing.assert_array_equal(d.channel, ref.channel)
    np.testing.assert_array_equal(d.pointers, ref.pointers)
    assert d.step.max() < 1000  # cropped at 1 s
    with pytest.raises(ValueError, match=r"samples\[0\]: channel \d+ >= n_channels = 100"):
        spike_data_from_tonic(samples[:1], [0], n_channels=100)


def test_dataset_accepts_tonic_samples():
    samples = [
        _tonic_sample([1000 * k for k in range(1, 6)], [k, k + 1, k + 2, k + 3, k + 4])
        for k in range(8)
    ]
    labels = [k % 2 for k in range(8)]
    ds = SpikeDataset.from_tonic(samples, labels, n_channels=20, dt=1.0, duration_ms=10.0)
    assert len(ds) == 8 and ds.n_steps == 10
    batch, lbl = ds.collate_fn([ds[i] for i in range(8)])
    assert isinstance(batch, EventBatch) and lbl.tolist() == labels
    assert batch.counts_per_sample().tolist() == [5] * 8


class _FakeTonicDataset:
    """Stands in for a tonic dataset: indexable, returns (structured events, int label)."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(n)
        self.items = [
            (_tonic_sample(np.sort(rng.integers(0, 50_000, 40)), rng.integers(0, 32, 40)), i % 3)
            for i in range(n)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def test_lazy_tonic_dataset_in_dataloader():
    source = _FakeTonicDataset(10)
    ds = TonicDataset(source, n_channels=32, dt=1.0, duration_ms=50.0)
    loader = DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)
    batches = list(loader)
    assert [b.batch_size for b, _ in batches] == [4, 4, 2]
    eager = spike_data_from_tonic(
        [ev for ev, _ in source.items],
        [lbl for _, lbl in source.items],
        n_channels=32,
        duration_ms=50.0,
    )
    assert sum(int(b.counts_per_sample().sum()) for b, _ in batches) == eager.n_spikes
