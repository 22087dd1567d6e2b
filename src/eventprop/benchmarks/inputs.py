"""Benchmark inputs with the statistics of SHD.

SHD samples carry about 8000 spikes per second over 700 cochlear channels, concentrated where
the word is spoken (roughly 0.1 to 0.7 s) and spread unevenly over channels. When SHD-format
files are at hand their real spike trains are used instead (:func:`load_shd_like`).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from eventprop.events import EventBatch

__all__ = ["load_shd_like", "synthetic_shd_like"]


def synthetic_shd_like(
    batch: int,
    *,
    n_steps: int = 1000,
    dt: float = 1.0,
    n_channels: int = 700,
    spikes_per_sample: int = 8000,
    seed: int = 0,
) -> EventBatch:
    """Random samples: word-like time envelope, smooth uneven channel profile, SHD's rate."""
    rng = np.random.default_rng(seed)
    duration = n_steps * dt
    ch_profile = 0.3 + np.abs(np.sin(np.linspace(0, 5 * np.pi, n_channels)))
    ch_profile /= ch_profile.sum()
    times, units = [], []
    for _ in range(batch):
        n = rng.poisson(spikes_per_sample)
        centre = rng.uniform(0.3, 0.5) * duration
        t = rng.normal(centre, 0.15 * duration, n)
        t = np.clip(t, 0.0, np.nextafter(duration, 0.0))
        times.append(np.sort(t))
        units.append(rng.choice(n_channels, size=n, p=ch_profile))
    return EventBatch.from_spike_times(times, units, n_steps=n_steps, n_channels=n_channels, dt=dt)


def load_shd_like(path: Path, batch: int, *, n_steps: int = 1000, dt: float = 1.0) -> EventBatch:
    """The first samples of an SHD-format file, repeated to fill the batch, cropped to T."""
    with h5py.File(path, "r") as f:
        all_times = f["spikes"]["times"]
        all_units = f["spikes"]["units"]
        n_samples = len(all_times)
        times, units = [], []
        for b in range(batch):
            t = np.asarray(all_times[b % n_samples], dtype=np.float64) * 1000.0
            u = np.asarray(all_units[b % n_samples], dtype=np.int64)
            keep = t < n_steps * dt
            times.append(t[keep])
            units.append(u[keep])
    return EventBatch.from_spike_times(times, units, n_steps=n_steps, n_channels=700, dt=dt)
