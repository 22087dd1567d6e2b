"""Augmentations: exact agreement with per-sample reference loops, ranges, labels, seeds."""

from __future__ import annotations

import numpy as np
import pytest

import eventprop.data.spikes as spikes_mod
from eventprop.data.augment import (
    Blend,
    ChannelJitter,
    ChannelShift,
    Compose,
    SpikeDropout,
    TimeDilation,
    augment_epoch,
    build_augmentations,
    epoch_rng,
    sample_means,
)
from eventprop.data.spikes import SpikeData

C, T = 100, 200


def make_data(n: int = 60, seed: int = 0, offsets: bool = False, n_classes: int = 4) -> SpikeData:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 120, n)
    counts[3] = 0  # an empty sample must survive everything
    pointers = np.concatenate([[0], np.cumsum(counts)])
    e = int(pointers[-1])
    return SpikeData.from_arrays(
        rng.integers(0, T, e),
        rng.integers(0, C, e),
        pointers,
        rng.integers(0, n_classes, n),
        n_steps=T,
        n_channels=C,
        dt=1.0,
        offset=rng.uniform(0, 1, e).astype(np.float32) if offsets else None,
        speakers=rng.integers(0, 5, n),
    )


def samples(d: SpikeData) -> list[list[tuple]]:
    out = []
    for i in range(len(d)):
        s, c, o = d.spikes(i)
        cols = [s.tolist(), c.tolist()] + ([] if o is None else [np.round(o, 5).tolist()])
        out.append(list(zip(*cols, strict=True)))
    return out


def assert_valid(d: SpikeData) -> None:
    assert d.pointers[0] == 0 and d.pointers[-1] == d.n_spikes
    assert np.all(np.diff(d.pointers) >= 0)
    if d.n_spikes:
        assert 0 <= d.step.min() and d.step.max() < d.n_steps
        assert 0 <= d.channel.min() and d.channel.max() < d.n_channels
    if d.offset is not None and d.n_spikes:
        assert 0 <= d.offset.min() and d.offset.max() < 1


def test_shift_matches_reference_loop():
    d = make_data()
    out = ChannelShift(max_shift=40)(d, np.random.default_rng(5))
    shifts = np.random.default_rng(5).integers(-40, 41, len(d))  # the same stream
    for i, got in enumerate(samples(out)):
        st, ch, _ = d.spikes(i)
        ref = [(int(s), int(c) + int(shifts[i])) for s, c in zip(st, ch, strict=True)]
        assert got == [e for e in ref if 0 <= e[1] < C]
    assert_valid(out)
    np.testing.assert_array_equal(out.labels, d.labels)
    np.testing.assert_array_equal(out.speakers, d.speakers)
    assert np.abs(shifts).max() <= 40


def test_shift_range_is_inclusive_and_uniform():
    d = make_data(n=4000, seed=1)
    rng = np.random.default_rng(0)
    ChannelShift(3)(d, rng)
    draws = np.random.default_rng(0).integers(-3, 4, 4000)
    assert set(draws.tolist()) == set(range(-3, 4))  # what the augmentation drew


def test_chunking_does_not_change_results(monkeypatch):
    d = make_data(n=80, seed=2, offsets=True)
    pipeline = build_augmentations(
        [
            {"name": "blend", "n": 30},
            {"name": "shift", "max_shift": 10},
            {"name": "dilate"},
            {"name": "jitter", "sigma": 2.0},
            {"name": "dropout", "p": 0.2},
        ]
    )
    big = pipeline(d, np.random.default_rng(9))
    monkeypatch.setattr(spikes_mod, "CHUNK_SPIKES", 37)  # many tiny chunks
    small = pipeline(d, np.random.default_rng(9))
    for name in ("step", "channel", "pointers", "labels", "offset", "speakers"):
        np.testing.assert_array_equal(getattr(big, name), getattr(small, name))


def test_dropout_counts_and_subset():
    d = make_data(n=300, seed=3)
    out = SpikeDropout(p=0.25)(d, np.random.default_rng(0))
    kept = out.n_spikes / d.n_spikes
    sd = np.sqrt(0.25 * 0.75 / d.n_spikes)
    assert abs(kept - 0.75) < 5 * sd
    for a, b in zip(samples(d), samples(out), strict=True):
        # survivors keep their order and values
        it = iter(a)
        assert all(any(x == y for y in it) for x in b)
    assert SpikeDropout(0.0)(d, np.random.default_rng(0)).n_spikes == d.n_spikes
    assert SpikeDropout(1.0)(d, np.random.default_rng(0)).n_spikes == 0


def test_jitter_matches_reference_and_statistics():
    d = make_data(n=400, seed=4)
    out = ChannelJitter(sigma=5.0)(d, np.random.default_rng(11))
    noise = np.rint(np.random.default_rng(11).standard_normal(d.n_spikes, dtype=np.float32) * 5)
    new = d.channel.astype(int) + noise.astype(int)
    keep = (new >= 0) & (new < C)
    np.testing.assert_array_equal(out.channel, new[keep])
    np.testing.assert_array_equal(out.step, d.step[keep])
    assert abs(noise.std() - 5.0) < 0.1 and abs(noise.mean()) < 0.1
    assert_valid(out)


def test_time_dilation_factors_and_reference():
    d = make_data(n=200, seed=5)
    out = TimeDilation(0.9, 1.1)(d, np.random.default_rng(2))
    f = np.exp(np.random.default_rng(2).uniform(np.log(0.9), np.log(1.1), len(d)))
    assert f.min() >= 0.9 and f.max() <= 1.1
    for i, got in enumerate(samples(out)):
        st, ch, _ = d.spikes(i)
        t = np.floor(st.astype(np.float32) * np.float32(f[i]))
        ref = [(int(a), int(c)) for a, c in zip(t, ch, strict=True) if a < T]
        assert got == ref
    assert_valid(out)


def test_time_dilation_is_log_uniform():
    n = 4000
    d = SpikeData.from_arrays(
        np.full(n, 1000), np.zeros(n, int), np.arange(n + 1), np.zeros(n, int),
        n_steps=2000, n_channels=1, dt=1.0,
    )  # fmt: skip
    f = TimeDilation(0.9, 1.1)(d, np.random.default_rng(4)).step / 1000.0
    assert f.min() >= 0.9 and f.max() < 1.1
    lo, hi = np.log(0.9), np.log(1.1)
    # uniform in log space: mean and the share below 1 match the log-uniform law
    assert abs(np.log(f).mean() - (lo + hi) / 2) < 0.003
    assert abs((f < 1.0).mean() - (-lo) / (hi - lo)) < 0.03


def test_time_dilation_with_offsets_scales_exact_times():
    d = make_data(n=30, seed=6, offsets=True)
    out = TimeDilation(1.05, 1.05)(d, np.random.default_rng(0))
    t_in = d.times_ms() * 1.05
    np.testing.assert_allclose(out.times_ms(), t_in[t_in < T], atol=2e-3)


def test_blend_properties():
    d = make_data(n=50, seed=7)
    blend = Blend(n=40, probs=(0.5, 0.5))
    out = blend(d, np.random.default_rng(1))
    assert len(out) == 90
    assert_valid(out)
    # the original samples are untouched and come first
    assert samples(out)[:50] == samples(d)
    np.testing.assert_array_equal(out.speakers[50:], -1)
    pairs = blend.partners(d.labels, 40, np.random.default_rng(1))
    a, b = pairs[:, 0], pairs[:, 1]
    np.testing.assert_array_equal(d.labels[a], d.labels[b])
    np.testing.assert_array_equal(out.labels[50:], d.labels[a])
    sizes = np.bincount(d.labels)
    assert np.all((a != b) | (sizes[d.labels[a]] == 1))
    mean_c, mean_t = sample_means(d)
    total_parent = 0
    for k in range(40):
        sa, sb = (
            int(np.trunc((mean_c[b[k]] - mean_c[a[k]]) / 2)),
            int(np.trunc((mean_t[b[k]] - mean_t[a[k]]) / 2)),
        )
        st_a, ch_a, _ = d.spikes(a[k])
        st_b, ch_b, _ = d.spikes(b[k])
        parent = {(int(s) + sb, int(c) + sa) for s, c in zip(st_a, ch_a, strict=True)} | {
            (int(s) - sb, int(c) - sa) for s, c in zip(st_b, ch_b, strict=True)
        }
        child = samples(out)[50 + k]
        assert set(child) <= parent  # every spike comes from an aligned parent
        total_parent += len(st_a) + len(st_b)
    kept = out.n_spikes - d.n_spikes
    assert abs(kept / total_parent - 0.5) < 0.1


def test_blend_alignment_of_means():
    # two samples of one class, far apart: after alignment both sit at the midpoint
    d = SpikeData.from_arrays(
        np.array([10, 12, 100, 102]),
        np.array([20, 22, 60, 62]),
        np.array([0, 2, 4]),
        np.array([1, 1]),
        n_steps=T,
        n_channels=C,
        dt=1.0,
    )
    out = Blend(n=1, probs=(1.0, 1.0))(d, np.random.default_rng(0))
    child = sorted(samples(out)[2])
    # means a=(t 11, c 21) and b=(t 101, c 61): each parent moves half-way (45 steps, 20
    # channels), so both land on the same spikes, whichever of the two was drawn as 'a'
    assert child == [(55, 40), (55, 40), (57, 42), (57, 42)]


def test_blend_probabilities():
    d = make_data(n=200, seed=8)
    only_a = Blend(n=100, probs=(1.0, 0.0))(d, np.random.default_rng(3))
    pairs = Blend(n=100, probs=(1.0, 0.0)).partners(d.labels, 100, np.random.default_rng(3))
    counts = d.counts()
    # with probs (1, 0) a child is parent a shifted: same count unless spikes left the range
    assert np.all(only_a.counts()[200:] <= counts[pairs[:, 0]])
    assert only_a.counts()[200:].sum() >= 0.9 * counts[pairs[:, 0]].sum()


def test_blend_fraction_doubles():
    d = make_data(n=64)
    assert len(Blend(fraction=1.0)(d, np.random.default_rng(0))) == 128
    assert len(Blend(fraction=0.0)(d, np.random.default_rng(0))) == 64


def test_offsets_are_carried():
    d = make_data(n=40, seed=9, offsets=True)
    out = Compose((ChannelShift(5), Blend(n=10), SpikeDropout(0.3)))(d, np.random.default_rng(0))
    assert out.offset is not None and out.offset.shape == out.step.shape
    assert_valid(out)


def test_determinism_by_seed_and_epoch():
    d = make_data(n=100, seed=10)
    cfg = [{"name": "blend", "fraction": 0.5}, {"name": "shift", "max_shift": 40}]
    e0 = augment_epoch(d, cfg, seed=1, epoch=0)
    again = augment_epoch(d, cfg, seed=1, epoch=0)
    e1 = augment_epoch(d, cfg, seed=1, epoch=1)
    other = augment_epoch(d, cfg, seed=2, epoch=0)
    np.testing.assert_array_equal(e0.channel, again.channel)
    np.testing.assert_array_equal(e0.pointers, again.pointers)
    assert not np.array_equal(e0.channel, e1.channel)
    assert not np.array_equal(e0.channel, other.channel)
    assert epoch_rng(1, 0).random() == epoch_rng(1, 0).random()
    assert augment_epoch(d, None, seed=0, epoch=0) is d


def test_build_from_config():
    comp = build_augmentations(
        [
            {"name": "shift", "max_shift": 40},
            {"name": "blend", "fraction": 1.0, "probs": [0.5, 0.5]},
            {"name": "time_dilation", "min_factor": 0.9, "max_factor": 1.1},
            {"name": "jitter", "sigma": 5},
            {"name": "dropout", "p": 0.1},
        ]
    )
    assert [type(s) for s in comp.steps] == [
        ChannelShift,
        Blend,
        TimeDilation,
        ChannelJitter,
        SpikeDropout,
    ]
    assert comp.steps[1].probs == (0.5, 0.5)
    assert len(build_augmentations(None)) == 0


@pytest.mark.parametrize(
    ("cfg", "msg"),
    [
        ([{"name": "rotate"}], r"augmentations\[0\]: unknown name 'rotate'"),
        ([{"max_shift": 3}], r"augmentations\[0\]: expected a mapping with a 'name'"),
        (
            [{"name": "shift"}, {"name": "shift", "sigma": 1}],
            r"augmentations\[1\] \(shift\): unknown parameter",
        ),
        ([{"name": "shift", "max_shift": -1}], r"augmentations\[0\] \(shift\): max_shift"),
        ([{"name": "blend"}], r"exactly one of 'n' and 'fraction'"),
        ([{"name": "blend", "n": 3, "probs": [0.5, 1.5]}], "probs"),
        ([{"name": "dropout", "p": 2}], r"p: must lie in \[0, 1\]"),
        ([{"name": "dilate", "min_factor": 1.2, "max_factor": 1.1}], "min_factor"),
        ({"name": "shift"}, "expected a list"),
    ],
)
def test_config_errors(cfg, msg):
    with pytest.raises(ValueError, match=msg):
        build_augmentations(cfg)
