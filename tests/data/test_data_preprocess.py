"""Binning to the grid (crop, one spike per channel per step, pooling) and the on-disk cache."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import eventprop.data.preprocess as preprocess_mod
from eventprop.data.cache import atomic_write, load_spike_data, save_spike_data
from eventprop.data.hdf5 import write_hdf5
from eventprop.data.preprocess import BinningConfig, bin_spikes, load_preprocessed
from eventprop.data.spikes import SpikeData


def _bin(times_ms, units, config, labels=None):
    counts = [len(t) for t in times_ms]
    pointers = np.concatenate([[0], np.cumsum(counts)])
    return bin_spikes(
        np.concatenate([np.asarray(t, float) for t in times_ms]),
        np.concatenate([np.asarray(u, np.int64) for u in units]),
        pointers,
        np.arange(len(times_ms)) if labels is None else np.asarray(labels),
        config,
        time_scale=1.0,
    )


def _events(d: SpikeData, i: int) -> list[tuple[int, int]]:
    step, chan, _ = d.spikes(i)
    return sorted(zip(step.tolist(), chan.tolist(), strict=True))


def test_bin_crop_and_one_spike_per_step():
    cfg = BinningConfig(dt=1.0, duration_ms=10.0)
    times = [[0.2, 0.7, 1.1, 9.99, 10.0, 12.5, 0.3], [5.0, 5.5, 5.9]]
    units = [[3, 3, 3, 3, 3, 3, 4], [1, 1, 2]]
    d = _bin(times, units, cfg)
    assert d.n_steps == 10 and d.n_channels == 700
    # 0.2 and 0.7 share step 0 on channel 3 -> one; 10.0 and 12.5 are cropped
    assert _events(d, 0) == [(0, 3), (0, 4), (1, 3), (9, 3)]
    assert _events(d, 1) == [(5, 1), (5, 2)]
    assert d.counts().tolist() == [4, 2]
    assert d.offset is None


def test_bin_dt_and_exact_offsets_keep_earliest():
    cfg = BinningConfig(dt=0.5, duration_ms=3.0, keep_offsets=True)
    d = _bin([[0.6, 0.9, 0.55, 2.99]], [[0, 0, 0, 1]], cfg)
    assert d.n_steps == 6
    step, chan, off = d.spikes(0)
    assert step.tolist() == [1, 5] and chan.tolist() == [0, 1]
    # the three spikes in step 1 collapse to the earliest, 0.55 ms -> offset 0.1
    np.testing.assert_allclose(off, [0.1, 0.98], atol=1e-6)
    np.testing.assert_allclose(d.times_ms(), [0.55, 2.99], atol=1e-6)


@pytest.mark.parametrize(("pool", "n_out"), [(1, 700), (2, 350), (3, 234), (7, 100)])
def test_pooling(pool, n_out):
    cfg = BinningConfig(pool=pool)
    d = _bin([[1.0, 1.2, 1.4, 2.0]], [[0, 1, 699, 698]], cfg)
    assert d.n_channels == n_out
    expected = sorted({(1, 0 // pool), (1, 1 // pool), (1, 699 // pool), (2, 698 // pool)})
    assert _events(d, 0) == expected


def test_empty_and_fully_cropped_samples_survive():
    cfg = BinningConfig(duration_ms=5.0)
    d = _bin([[], [7.0, 8.0], [1.0]], [[], [1, 2], [3]], cfg, labels=[4, 5, 6])
    assert d.counts().tolist() == [0, 0, 1]
    assert d.labels.tolist() == [4, 5, 6]


def test_chunked_binning_matches_unchunked(monkeypatch):
    rng = np.random.default_rng(3)
    times = [rng.uniform(0, 1100, rng.integers(0, 400)) for _ in range(60)]
    units = [rng.integers(0, 700, t.size) for t in times]
    cfg = BinningConfig()
    whole = _bin(times, units, cfg)
    import eventprop.data.spikes as spikes_mod

    monkeypatch.setattr(spikes_mod, "CHUNK_SPIKES", 500)
    chunked = _bin(times, units, cfg)
    np.testing.assert_array_equal(whole.pointers, chunked.pointers)
    np.testing.assert_array_equal(whole.step, chunked.step)
    np.testing.assert_array_equal(whole.channel, chunked.channel)
    # reference: a set of (step, channel) per sample, built independently
    for i in range(len(times)):
        ref = {(int(t), int(u)) for t, u in zip(times[i], units[i], strict=True) if t < 1000}
        assert _events(whole, i) == sorted(ref)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"dt": 0.0}, "dt"),
        ({"duration_ms": 10.0, "dt": 3.0}, "whole number of steps"),
        ({"pool": 0}, "pool"),
        ({"duration_ms": -1.0}, "duration_ms"),
    ],
)
def test_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        BinningConfig(**kw)


# ---------------------------------------------------------------------------- cache


@pytest.fixture
def h5file(tmp_path):
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, 1.2, rng.integers(50, 300))) for _ in range(12)]
    units = [rng.integers(0, 700, t.size) for t in times]
    return write_hdf5(
        tmp_path / "src.h5", times, units, np.arange(12) % 4, speakers=np.arange(12) % 3
    )


def test_cache_round_trip_and_reuse(h5file, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_preprocessed(h5file, cache_dir=cache)
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("src-")

    def boom(*a, **k):
        raise AssertionError("source re-read although the cache entry is valid")

    monkeypatch.setattr(preprocess_mod, "read_hdf5", boom)
    second = load_preprocessed(h5file, cache_dir=cache)
    for name in ("step", "channel", "pointers", "labels", "speakers"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert second.class_names == first.class_names and second.n_steps == 1000


def test_cache_key_covers_parameters_and_source(h5file, tmp_path):
    cache = tmp_path / "cache"
    load_preprocessed(h5file, BinningConfig(dt=1.0), cache_dir=cache)
    load_preprocessed(h5file, BinningConfig(dt=2.0), cache_dir=cache)
    load_preprocessed(h5file, BinningConfig(pool=2), cache_dir=cache)
    load_preprocessed(h5file, BinningConfig(keep_offsets=True), cache_dir=cache)
    assert len(list(cache.iterdir())) == 4
    # a modified source (new mtime) gets a new entry instead of the stale one
    st = h5file.stat()
    os.utime(h5file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_preprocessed(h5file, BinningConfig(dt=1.0), cache_dir=cache)
    assert len(list(cache.iterdir())) == 5
    load_preprocessed(h5file, BinningConfig(dt=1.0), cache_dir=cache, identity="sha256")
    assert len(list(cache.iterdir())) == 6


def test_damaged_cache_entry_is_rebuilt(h5file, tmp_path):
    cache = tmp_path / "cache"
    good = load_preprocessed(h5file, cache_dir=cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="damaged cache entry"):
        again = load_preprocessed(h5file, cache_dir=cache)
    np.testing.assert_array_equal(good.step, again.step)
    assert load_spike_data(entry, {"other": 1}) is None  # parameter record must match


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.npz"
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as fh:
        fh.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_no_cache(h5file, tmp_path):
    d = load_preprocessed(h5file, cache=False, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists() and len(d) == 12


def test_large_cache_loads_fast(tmp_path):
    # 8156 samples x 1000 spikes: an SHD-sized sample count, 8 M spikes
    n, per = 8156, 1000
    rng = np.random.default_rng(1)
    data = SpikeData(
        step=rng.integers(0, 1000, n * per).astype(np.int16),
        channel=rng.integers(0, 700, n * per).astype(np.int16),
        pointers=np.arange(n + 1, dtype=np.int64) * per,
        labels=rng.integers(0, 20, n),
        n_steps=1000,
        n_channels=700,
        dt=1.0,
    )
    path = tmp_path / "big.npz"
    save_spike_data(path, data, {"k": 1})
    t0 = time.perf_counter()
    back = load_spike_data(path, {"k": 1})
    elapsed = time.perf_counter() - t0
    assert back is not None and back.n_spikes == n * per
    np.testing.assert_array_equal(back.channel[-per:], data.channel[-per:])
    assert elapsed < 2.0, f"loading 8 M cached spikes took {elapsed:.2f} s"
