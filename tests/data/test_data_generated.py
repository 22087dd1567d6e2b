"""Yin-Yang and randman: agreement with the reference generators' algorithms, and encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventprop.data.randman import RandomManifold, randman
from eventprop.data.yinyang import REFERENCE_SPLITS, yin_yang, yin_yang_points, yin_yang_splits


def _reference_yin_yang(size: int, seed: int, r_small=0.1, r_big=0.5):
    """The reference generator's algorithm (lkriener/yin_yang_data_set), on numpy's global RNG."""

    def which_class(x, y):
        d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
        d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
        criterion1 = d_right <= r_small
        criterion2 = d_left > r_small and d_left <= 0.5 * r_big
        criterion3 = y > r_big and d_right > 0.5 * r_big
        if d_right < r_small or d_left < r_small:
            return 2
        return int(criterion1 or criterion2 or criterion3)

    state = np.random.get_state()  # noqa: NPY002 (the reference uses the global RNG)
    try:
        np.random.seed(seed)  # noqa: NPY002 (the reference uses the global RNG)
        vals, classes = [], []
        for _ in range(size):
            goal = np.random.randint(3)  # noqa: NPY002 (the reference uses the global RNG)
            while True:
                x, y = np.random.rand(2) * 2.0 * r_big  # noqa: NPY002 (the reference uses the global RNG)
                if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                    continue
                c = which_class(x, y)
                if c == goal:
                    break
            vals.append([x, y, 1.0 - x, 1.0 - y])
            classes.append(c)
    finally:
        np.random.set_state(state)  # noqa: NPY002 (the reference uses the global RNG)
    return np.array(vals), np.array(classes)


@pytest.mark.parametrize(("size", "seed"), [(300, 42), (200, 41), (200, 40), (50, 7)])
def test_yin_yang_reproduces_reference_samples(size, seed):
    xy, labels = yin_yang_points(size, seed)
    ref_vals, ref_labels = _reference_yin_yang(size, seed)
    np.testing.assert_array_equal(xy, ref_vals[:, :2])
    np.testing.assert_array_equal(labels, ref_labels)


def test_yin_yang_reference_sets_geometry_and_balance():
    sets = yin_yang_splits()
    assert {k: len(v) for k, v in sets.items()} == {k: s for k, (s, _) in REFERENCE_SPLITS.items()}
    xy, labels = yin_yang_points(5000, 42)
    assert np.all(np.hypot(xy[:, 0] - 0.5, xy[:, 1] - 0.5) <= 0.5)
    counts = np.bincount(labels, minlength=3)
    sd = np.sqrt(5000 * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - 5000 / 3) < 4 * sd)
    dots = xy[labels == 2]
    d_l = np.hypot(dots[:, 0] - 0.25, dots[:, 1] - 0.5)
    d_r = np.hypot(dots[:, 0] - 0.75, dots[:, 1] - 0.5)
    assert np.all(np.minimum(d_l, d_r) < 0.1)
    # different seeds give different sets
    assert not np.array_equal(yin_yang_points(100, 41)[0], yin_yang_points(100, 40)[0])


def test_yin_yang_latency_encoding():
    d = yin_yang(100, seed=3, t_min=2.0, t_max=27.0, t_bias=1.0, dt=0.1)
    xy, labels = yin_yang_points(100, 3)
    assert d.n_channels == 5 and d.counts().tolist() == [5] * 100
    np.testing.assert_array_equal(d.labels, labels)
    t = d.times_ms().reshape(100, 5)
    x, y = xy[:, 0], xy[:, 1]
    want = np.stack([2 + x * 25, 2 + (1 - x) * 25, 2 + y * 25, 2 + (1 - y) * 25, np.ones(100)], 1)
    np.testing.assert_allclose(t, want, atol=1e-5)
    assert np.all(d.channel.reshape(100, 5) == np.arange(5))
    assert d.duration >= 27.0 and t.max() < d.duration
    no_bias = yin_yang(10, seed=3, bias=False)
    assert no_bias.n_channels == 4 and no_bias.class_names == ("yin", "yang", "dot")
    with pytest.raises(ValueError, match="does not contain"):
        yin_yang(10, seed=3, duration_ms=20.0)


# ---------------------------------------------------------------------------- randman


def _reference_randman(nb_classes, nb_units, nb_steps, dim_manifold, nb_samples, alpha, seed):
    """The reference make_spiking_dataset (fzenke/randman) on the global numpy/torch RNGs."""
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()  # noqa: NPY002 (the reference uses the global RNG)
    try:
        np.random.seed(seed)  # noqa: NPY002 (the reference uses the global RNG)
        seeds = np.random.randint(np.iinfo(np.int64).max, size=(nb_classes, 1))  # noqa: NPY002 (the reference uses the global RNG)
        data, labels = [], []
        f_cutoff = int(np.min((np.ceil(np.power(1e-3, -1 / alpha)), 1000)))
        for k in range(nb_classes):
            x = np.random.rand(nb_samples, dim_manifold)  # noqa: NPY002 (the reference uses the global RNG)
            torch.random.manual_seed(int(seeds[k, 0]))
            params = torch.rand(nb_units, dim_manifold, 3, f_cutoff)
            params[:, :, 0, 0] = 0
            r = torch.arange(f_cutoff, dtype=torch.float32) + 1
            spect = 1.0 / (torch.abs(r - 0) ** alpha + 1.0)
            xt = torch.tensor(x, dtype=torch.float32)
            y = torch.zeros(nb_samples, nb_units)
            for u in range(nb_units):
                tmp = torch.ones(nb_samples)
                for dd in range(dim_manifold):
                    th = params[u, dd]
                    acc = torch.zeros(nb_samples)
                    for i in range(f_cutoff):
                        acc += (
                            th[0, i]
                            * spect[i]
                            * torch.sin(2 * np.pi * (i * xt[:, dd] * th[1, i] + th[2, i]))
                        )
                    tmp *= acc
                y[:, u] = tmp
            lo, hi = y.min(0).values, y.max(0).values
            y = (y - lo) / (hi - lo + 1e-7)
            events = np.stack(
                [y.numpy(), np.repeat(np.arange(nb_units)[None], nb_samples, 0)], axis=2
            )
            data.append(events)
            labels.append(k * np.ones(nb_samples))
        data = np.concatenate(data)
        labels = np.concatenate(labels).astype(int)
        idx = np.arange(len(data))
        np.random.shuffle(idx)  # noqa: NPY002 (the reference uses the global RNG)
        data, labels = data[idx], labels[idx]
        data[:, :, 0] *= nb_steps
        return data, labels
    finally:
        np.random.set_state(np_state)  # noqa: NPY002 (the reference uses the global RNG)
        torch.random.set_rng_state(torch_state)


def test_randman_reproduces_reference():
    kw = dict(
        nb_classes=3, nb_units=6, nb_steps=50, dim_manifold=2, nb_samples=10, alpha=2.0, seed=5
    )
    ref, ref_labels = _reference_randman(**kw)
    d = randman(**kw)
    np.testing.assert_array_equal(d.labels, ref_labels)
    times = d.times_ms().reshape(30, 6)  # dt = 1 ms: time in steps
    np.testing.assert_allclose(times, ref[:, :, 0], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(d.channel.reshape(30, 6), ref[:, :, 1].astype(int))


def test_randman_one_spike_per_unit_and_ranges():
    d = randman(nb_classes=4, nb_units=20, nb_steps=80, nb_samples=25, seed=1, dt=0.5)
    assert len(d) == 100 and d.n_channels == 20 and d.n_steps == 80 and d.dt == 0.5
    assert d.counts().tolist() == [20] * 100
    for i in range(len(d)):
        assert sorted(d.spikes(i)[1].tolist()) == list(range(20))
    assert np.bincount(d.labels).tolist() == [25] * 4
    t = d.times_ms()
    assert t.min() >= 0 and t.max() < 80 * 0.5
    # per class and unit, standardisation spans [0, 1): earliest spike at 0, latest near the end
    t2 = t.reshape(100, 20)[np.argsort(d.labels, kind="stable")].reshape(4, 25, 20)
    assert np.all(t2.min(axis=1) == 0.0)
    assert np.all(t2.max(axis=1) > 0.999 * 40) and np.all(t2.max(axis=1) < 40)
    two = randman(nb_classes=2, nb_units=5, nb_steps=10, nb_samples=30, nb_spikes=2, seed=1)
    assert two.counts().tolist() == [10] * 60
    again = randman(nb_classes=4, nb_units=20, nb_steps=80, nb_samples=25, seed=1, dt=0.5)
    np.testing.assert_array_equal(again.offset, d.offset)
    other = randman(nb_classes=4, nb_units=20, nb_steps=80, nb_samples=25, seed=2, dt=0.5)
    assert not np.array_equal(other.offset, d.offset)


def test_random_manifold_smoothness():
    rm = RandomManifold(3, 1, alpha=2.0, seed=0)
    assert rm.f_cutoff == 32
    x = np.linspace(0, 1, 2001)[:, None]
    y = rm(x).numpy()
    assert y.shape == (2001, 3)
    # smooth: neighbouring points map close together
    assert np.abs(np.diff(y, axis=0)).max() < 0.05 * (y.max() - y.min())


def test_randman_validation():
    with pytest.raises(ValueError, match="nb_units"):
        randman(nb_units=0)
    with pytest.raises(ValueError, match="step_frac"):
        randman(step_frac=0)
