"""Datasets, collate and DataLoader integration; the fast EventBatch builder; named loaders."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from eventprop.data.collate import (
    EventCollate,
    build_event_batch,
    collate_events,
    event_batch_from_data,
    iter_batches,
)
from eventprop.data.datasets import SpikeDataset, dataset_file, load_shd, load_ssc
from eventprop.data.delay import DelayLine
from eventprop.data.hdf5 import write_hdf5
from eventprop.data.randman import randman
from eventprop.data.spikes import SpikeData
from eventprop.data.yinyang import yin_yang
from eventprop.events import EventBatch


def _data(n=40, seed=0, offsets=False) -> SpikeData:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 60, n)
    p = np.concatenate([[0], np.cumsum(counts)])
    e = int(p[-1])
    return SpikeData.from_arrays(
        rng.integers(0, 100, e),
        rng.integers(0, 30, e),
        p,
        rng.integers(0, 5, n),
        n_steps=100,
        n_channels=30,
        dt=1.0,
        offset=rng.uniform(0, 1, e).astype(np.float32) if offsets else None,
        speakers=rng.integers(0, 3, n),
    )


def _same_batch(a: EventBatch, b: EventBatch) -> None:
    assert (a.batch_size, a.n_steps, a.n_channels, a.dt) == (
        b.batch_size,
        b.n_steps,
        b.n_channels,
        b.dt,
    )
    for name in ("sample", "step", "channel", "offset"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
    key_a = a.sample.long() * a.n_steps + a.step.long()
    assert torch.all(key_a[1:] >= key_a[:-1])
    # same multiset of events (order within a step is free without offsets)
    ea = sorted(
        zip(a.sample.tolist(), a.step.tolist(), a.channel.tolist(), a.offset.tolist(), strict=True)
    )
    eb = sorted(
        zip(b.sample.tolist(), b.step.tolist(), b.channel.tolist(), b.offset.tolist(), strict=True)
    )
    assert ea == eb
    assert torch.equal(a.step_pointers(), b.step_pointers())


@pytest.mark.parametrize("offsets", [False, True])
@pytest.mark.parametrize(("batch", "steps"), [(8, 100), (700, 100), (3, 70000)])
def test_build_event_batch_equals_from_arrays(offsets, batch, steps):
    rng = np.random.default_rng(batch)
    e = 5000
    s, t, c = rng.integers(0, batch, e), rng.integers(0, steps, e), rng.integers(0, 9, e)
    off = rng.uniform(0, 1, e) if offsets else None
    fast = build_event_batch(s, t, c, off, batch_size=batch, n_steps=steps, n_channels=9, dt=0.5)
    ref = EventBatch.from_arrays(
        s, t, c, batch_size=batch, n_steps=steps, n_channels=9, dt=0.5, offset=off
    )
    _same_batch(fast, ref)
    if offsets:  # fully determined order
        assert torch.equal(fast.offset, ref.offset) and torch.equal(fast.channel, ref.channel)


def test_build_event_batch_validates():
    with pytest.raises(ValueError, match="channel"):
        build_event_batch(
            np.array([0]),
            np.array([0]),
            np.array([9]),
            None,
            batch_size=1,
            n_steps=5,
            n_channels=9,
            dt=1.0,
        )
    with pytest.raises(ValueError, match="step"):
        build_event_batch(
            np.array([0]),
            np.array([5]),
            np.array([0]),
            None,
            batch_size=1,
            n_steps=5,
            n_channels=9,
            dt=1.0,
        )


def test_event_batch_from_data_matches_from_spike_times():
    d = _data(offsets=True)
    idx = np.array([5, 0, 17, 3])
    got = event_batch_from_data(d, idx)
    times, units = [], []
    for i in idx:
        s, c, o = d.spikes(i)
        times.append((s + o.astype(np.float64)) * d.dt)
        units.append(c)
    ref = EventBatch.from_spike_times(
        times, units, n_steps=d.n_steps, n_channels=d.n_channels, dt=d.dt
    )
    assert torch.equal(got.sample, ref.sample) and torch.equal(got.channel, ref.channel)
    assert torch.equal(got.step, ref.step)
    torch.testing.assert_close(got.offset, ref.offset, atol=1e-6, rtol=0)


def test_dataset_items_and_collate():
    d = _data()
    ds = SpikeDataset(d)
    ev, label = ds[7]
    s, c, _ = d.spikes(7)
    np.testing.assert_array_equal(ev.step, s)
    np.testing.assert_array_equal(ev.channel, c)
    assert label == int(d.labels[7]) and (ev.n_steps, ev.n_channels, ev.dt) == (100, 30, 1.0)
    batch, labels = ds.collate_fn([ds[i] for i in (7, 2, 9)])
    assert labels.dtype == torch.long and labels.tolist() == d.labels[[7, 2, 9]].tolist()
    _same_batch(batch, event_batch_from_data(d, [7, 2, 9]))
    assert batch.counts_per_sample().tolist() == d.counts()[[7, 2, 9]].tolist()
    with pytest.raises(ValueError, match="empty batch"):
        collate_events([])


def test_collate_rejects_mixed_items():
    a, b = SpikeDataset(_data()), SpikeDataset(yin_yang(10, seed=1))
    with pytest.raises(ValueError, match="item 1"):
        collate_events([a[0], b[0]])


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_epoch(workers):
    d = _data(n=50)
    ds = SpikeDataset(
        d, augment=[{"name": "shift", "max_shift": 3}], seed=4, delay=DelayLine(2, 10.0)
    )
    assert ds.n_channels == 90
    loader = DataLoader(
        ds, batch_size=16, shuffle=False, num_workers=workers, collate_fn=ds.collate_fn
    )
    batches = list(loader)
    assert [b.batch_size for b, _ in batches] == [16, 16, 16, 2]
    assert all(isinstance(b, EventBatch) and b.n_channels == 90 for b, _ in batches)
    labels = torch.cat([lbl for _, lbl in batches])
    assert labels.tolist() == ds.data.labels.tolist()
    # workers see this epoch's augmented data: identical to the in-process batch
    _same_batch(batches[1][0], event_batch_from_data(ds.data, np.arange(16, 32), delay=ds.delay))


def test_set_epoch_redraws_augmentation():
    d = _data(n=30)
    ds = SpikeDataset(
        d, augment=[{"name": "blend", "fraction": 1.0}, {"name": "shift", "max_shift": 5}], seed=1
    )
    assert len(ds) == 60
    first = ds.data.channel.copy()
    ds.set_epoch(1)
    assert not np.array_equal(first, ds.data.channel)
    ds.set_epoch(0)
    np.testing.assert_array_equal(first, ds.data.channel)
    assert ds.base is d and SpikeDataset(d).data is d


def test_everything_pickles():
    ds = SpikeDataset(_data(), augment=[{"name": "dropout", "p": 0.5}], delay=DelayLine(1, 5.0))
    back = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(back.data.step, ds.data.step)
    collate = pickle.loads(pickle.dumps(ds.collate_fn))
    assert isinstance(collate, EventCollate) and collate.delay == DelayLine(1, 5.0)
    item = pickle.loads(pickle.dumps(ds[3]))
    np.testing.assert_array_equal(item[0].channel, ds[3][0].channel)


def test_iter_batches():
    d = _data(n=45)
    got = list(iter_batches(d, 10, shuffle=True, seed=3, epoch=2))
    assert [b.batch_size for b, _ in got] == [10, 10, 10, 10, 5]
    labels = torch.cat([lbl for _, lbl in got]).numpy()
    assert sorted(labels.tolist()) == sorted(d.labels.tolist())
    again = list(iter_batches(d, 10, shuffle=True, seed=3, epoch=2))
    assert all(torch.equal(a.channel, b.channel) for (a, _), (b, _) in zip(got, again, strict=True))
    assert len(list(iter_batches(d, 10, drop_last=True))) == 4


@pytest.mark.parametrize(
    "make",
    [
        lambda: yin_yang(50, seed=3),
        lambda: randman(nb_classes=3, nb_units=12, nb_steps=40, nb_samples=8, seed=2),
    ],
)
def test_generated_sets_share_the_interface(make):
    d = make()
    ds = SpikeDataset(d)
    batch, labels = next(iter(DataLoader(ds, batch_size=8, collate_fn=ds.collate_fn)))
    assert isinstance(batch, EventBatch) and batch.batch_size == 8 and labels.shape == (8,)
    assert batch.n_channels == d.n_channels and batch.n_steps == d.n_steps
    # exact spike times survive: offsets are carried into the batch
    assert batch.offset.abs().sum() > 0


def test_named_loaders(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"shd_train\.h5: not found. Run `eventprop data download shd`"
    ):
        dataset_file("shd", "train", tmp_path)
    with pytest.raises(ValueError, match="splits train, test"):
        dataset_file("shd", "valid", tmp_path)
    with pytest.raises(ValueError, match="dataset"):
        dataset_file("mnist", "train", tmp_path)
    rng = np.random.default_rng(0)
    for name in ("shd_test.h5", "ssc_valid.h5"):
        times = [np.sort(rng.uniform(0, 1.3, 40)) for _ in range(6)]
        write_hdf5(
            tmp_path / name, times, [rng.integers(0, 700, 40) for _ in times], np.arange(6) % 3
        )
    shd = load_shd("test", directory=tmp_path, dt=2.0)
    assert shd.n_steps == 500 and len(shd) == 6 and shd.n_channels == 700
    ssc = load_ssc("valid", directory=tmp_path, pool=2)
    assert ssc.n_channels == 350
    assert len(list((tmp_path / "preprocessed").iterdir())) == 2
