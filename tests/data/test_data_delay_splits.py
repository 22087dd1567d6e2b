"""Delay-line input (against a dense reference) and train/validation splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventprop.data.collate import event_batch_from_data
from eventprop.data.delay import DelayLine, expand_delays, expand_delays_batch
from eventprop.data.spikes import SpikeData
from eventprop.data.splits import leave_one_speaker_out, random_split


def _data(n=5, T=60, C=7, seed=0, offsets=False) -> SpikeData:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 40, n)
    p = np.concatenate([[0], np.cumsum(counts)])
    e = int(p[-1])
    return SpikeData.from_arrays(
        rng.integers(0, T, e),
        rng.integers(0, C, e),
        p,
        np.arange(n),
        n_steps=T,
        n_channels=C,
        dt=0.5,
        offset=rng.uniform(0, 1, e).astype(np.float32) if offsets else None,
    )


def _dense_reference(d: SpikeData, n_delays: int, delay_steps: int) -> np.ndarray:
    dense = np.zeros((len(d), d.n_steps, d.n_channels))
    np.add.at(dense, (d.sample_ids(), d.step, d.channel), 1)
    out = np.zeros((len(d), d.n_steps, d.n_channels * (n_delays + 1)))
    for k in range(n_delays + 1):
        sh = k * delay_steps
        if sh < d.n_steps:
            out[:, sh:, k * d.n_channels : (k + 1) * d.n_channels] = dense[:, : d.n_steps - sh]
    return out


@pytest.mark.parametrize(("n_delays", "delay_ms"), [(10, 3.0), (3, 10.0), (0, 5.0), (4, 40.0)])
def test_delay_line_matches_dense_reference(n_delays, delay_ms):
    d = _data()
    line = DelayLine(n_delays, delay_ms)
    steps = line.delay_steps(d.dt)
    batch = event_batch_from_data(d, np.arange(len(d)), delay=line)
    assert batch.n_channels == d.n_channels * (n_delays + 1)
    ref = _dense_reference(d, n_delays, steps)
    np.testing.assert_array_equal(batch.to_dense(torch.float64).numpy(), ref)
    # the batch is sorted the way EventBatch promises
    key = batch.sample.long() * batch.n_steps + batch.step.long()
    assert torch.all(key[1:] >= key[:-1])
    # whole-dataset form agrees
    expanded = line(d)
    assert expanded.n_channels == batch.n_channels
    np.testing.assert_array_equal(
        event_batch_from_data(expanded, np.arange(len(d))).to_dense().numpy(), ref
    )


def test_batch_and_generic_expansion_agree():
    d = _data(n=8, seed=3)
    sample = d.sample_ids()
    perm = np.random.default_rng(0).permutation(d.n_spikes)  # any input order
    s1, t1, c1 = expand_delays_batch(
        sample[perm], d.step[perm], d.channel[perm],
        batch_size=8, n_steps=d.n_steps, n_channels=d.n_channels, n_delays=6, delay_steps=7,
    )  # fmt: skip
    t2, c2, (s2,) = expand_delays(
        d.step, d.channel, n_steps=d.n_steps, n_channels=d.n_channels, n_delays=6,
        delay_steps=7, extra=(sample,),
    )  # fmt: skip
    a = sorted(zip(s1.tolist(), t1.tolist(), c1.tolist(), strict=True))
    b = sorted(zip(s2.tolist(), t2.tolist(), c2.tolist(), strict=True))
    assert a == b
    assert s1.dtype == t1.dtype == c1.dtype == np.int32
    assert np.all(np.diff(s1.astype(np.int64) * d.n_steps + t1) >= 0)
    with pytest.raises(ValueError, match="outside the batch"):
        expand_delays_batch(
            np.array([0]), np.array([60]), np.array([0]),
            batch_size=1, n_steps=60, n_channels=7, n_delays=1, delay_steps=1,
        )  # fmt: skip


def test_delay_line_keeps_offsets():
    d = _data(offsets=True)
    line = DelayLine(2, 5.0)
    batch = event_batch_from_data(d, np.arange(len(d)), delay=line)
    base = event_batch_from_data(d, np.arange(len(d)))
    t0 = np.sort(base.times().numpy())
    # every delayed copy is the original time + k * 5 ms (cropped at the trial end)
    shifted = np.concatenate([t0 + k * 5.0 for k in range(3)])
    want = np.sort(shifted[shifted < d.duration])
    np.testing.assert_allclose(np.sort(batch.times().numpy()), want, atol=1e-4)


def test_delay_line_validation():
    with pytest.raises(ValueError, match="whole number of steps"):
        DelayLine(10, 30.0).delay_steps(0.7)
    with pytest.raises(ValueError, match="n_delays"):
        DelayLine(-1, 30.0)
    assert DelayLine(10, 30.0).n_channels(700) == 7700


# ---------------------------------------------------------------------------- splits


def test_random_split():
    tr, va = random_split(1000, 0.2, seed=3)
    assert va.size == 200 and tr.size == 800
    assert np.intersect1d(tr, va).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    tr2, va2 = random_split(1000, 0.2, seed=3)
    np.testing.assert_array_equal(va, va2)
    np.testing.assert_array_equal(tr, tr2)
    assert not np.array_equal(va, random_split(1000, 0.2, seed=4)[1])
    with pytest.raises(ValueError, match="fraction"):
        random_split(10, 1.5, seed=0)


def test_stratified_split():
    labels = np.repeat(np.arange(4), [100, 50, 20, 10])
    tr, va = random_split(labels.size, 0.1, seed=0, labels=labels)
    assert np.bincount(labels[va], minlength=4).tolist() == [10, 5, 2, 1]
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == labels.size


def test_leave_one_speaker_out():
    speakers = np.array([0, 1, 2, 1, 0, 5, -1, 2, 5])
    folds = leave_one_speaker_out(speakers)
    assert [f.speaker for f in folds] == [0, 1, 2, 5]
    seen = np.concatenate([f.validation for f in folds])
    np.testing.assert_array_equal(np.sort(seen), np.flatnonzero(speakers >= 0))
    for f in folds:
        assert np.all(speakers[f.validation] == f.speaker)
        assert not np.any(speakers[f.train] == f.speaker)
        assert 6 in f.train  # unknown speaker always trains
        assert f.train.size + f.validation.size == speakers.size
    with pytest.raises(ValueError, match="no speaker ids"):
        leave_one_speaker_out(np.array([-1, -1]))
