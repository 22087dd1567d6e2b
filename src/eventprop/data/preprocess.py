"""From raw spike times to the engine's grid: binning, cropping, one spike per step, pooling.

The paper's recipe (Nowotny et al. 2025, following mlGeNN): a spike at time ``t`` falls into step
``floor(t / dt)``; spikes at or after the trial end are dropped (crop); a channel carries at most
one spike per step (duplicates inside a step collapse to the earliest); optionally ``pool`` adjacent
channels are merged into one (channel ``c`` -> ``c // pool``) before de-duplication.

The work is vectorised over chunks of a few million spikes (one sort per chunk), so preprocessing
SHD takes seconds and SSC under a minute; the result is cached on disk by
:func:`load_preprocessed`, keyed by every parameter here and by the source file's identity.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from eventprop.data.cache import cache_file, load_spike_data, save_spike_data, source_identity
from eventprop.data.hdf5 import N_CHANNELS, RawSpikes, read_hdf5
from eventprop.data.paths import preprocessed_dir
from eventprop.data.spikes import (
    STEP_TOLERANCE,
    SpikeData,
    index_dtype,
    iter_segment_chunks,
    split_steps,
)

__all__ = [
    "BinningConfig",
    "bin_spikes",
    "load_preprocessed",
]

#: bump when the binning rules change, so that old caches are not reused
PREPROCESS_VERSION = 1


@dataclass(frozen=True)
class BinningConfig:
    """Every parameter that changes the binned arrays (and hence the cache key)."""

    dt: float = 1.0  #: step length in ms
    duration_ms: float = 1000.0  #: trial length in ms; later spikes are cropped
    pool: int = 1  #: merge this many adjacent input channels into one
    keep_offsets: bool = False  #: keep each spike's position inside its step (exact times)
    n_channels_in: int = N_CHANNELS  #: channels of the source (700 for SHD/SSC)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt: must be a positive number of ms, got {self.dt!r}")
        if not (math.isfinite(self.duration_ms) and self.duration_ms > 0):
            raise ValueError(f"duration_ms: must be positive, got {self.duration_ms!r}")
        ratio = self.duration_ms / self.dt
        if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
            raise ValueError(
                f"duration_ms: {self.duration_ms} ms is not a whole number of steps of "
                f"dt = {self.dt} ms"
            )
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ValueError(f"pool: must be an integer >= 1, got {self.pool!r}")
        if self.n_channels_in < 1:
            raise ValueError(f"n_channels_in: must be >= 1, got {self.n_channels_in}")

    @property
    def n_steps(self) -> int:
        return round(self.duration_ms / self.dt)

    @property
    def n_channels(self) -> int:
        return -(-self.n_channels_in // self.pool)


def bin_spikes(
    times: np.ndarray,
    units: np.ndarray,
    pointers: np.ndarray,
    labels: np.ndarray,
    config: BinningConfig,
    *,
    time_scale: float = 1000.0,
    speakers: np.ndarray | None = None,
    class_names: tuple[str, ...] | None = None,
) -> SpikeData:
    """Bin flat spike arrays to the grid of ``config``.

    ``times * time_scale`` must be in ms (the default converts the files' seconds). Returns a
    :class:`SpikeData` whose samples are sorted by (step, channel).
    """
    n = int(np.asarray(pointers).size - 1)
    pointers = np.asarray(pointers, dtype=np.int64)
    n_steps, n_channels = config.n_steps, config.n_channels
    steps_out: list[np.ndarray] = []
    chans_out: list[np.ndarray] = []
    offs_out: list[np.ndarray] = []
    counts = np.zeros(n, dtype=np.int64)
    scale = time_scale / config.dt
    for chunk in iter_segment_chunks(pointers, np.arange(n, dtype=np.int64)):
        s0, s1 = int(chunk[0]), int(chunk[-1]) + 1
        lo, hi = int(pointers[s0]), int(pointers[s1])
        scaled = times[lo:hi].astype(np.float64) * scale
        step = np.floor(scaled + STEP_TOLERANCE)
        keep = step < n_steps
        local = np.repeat(np.arange(s1 - s0, dtype=np.int64), np.diff(pointers[s0 : s1 + 1]))
        # np.compress: boolean indexing is several times slower on large arrays
        local = np.compress(keep, local)
        step = np.compress(keep, step).astype(np.int64)
        chan = np.compress(keep, units[lo:hi]).astype(np.int64) // config.pool
        key = (local * n_steps + step) * n_channels + chan
        if config.keep_offsets:
            scaled = np.compress(keep, scaled)
            order = np.lexsort((scaled, key))
        else:
            order = np.argsort(key, kind="stable")
        key_sorted = key[order]
        first = np.ones(key_sorted.size, dtype=bool)
        first[1:] = key_sorted[1:] != key_sorted[:-1]
        sel = np.compress(first, order)
        steps_out.append(step[sel])
        chans_out.append(chan[sel])
        if config.keep_offsets:
            offs_out.append(split_steps(scaled[sel])[1])
        counts[s0:s1] = np.bincount(local[sel], minlength=s1 - s0)
    new_pointers = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=new_pointers[1:])
    step_all = (
        np.concatenate(steps_out).astype(index_dtype(n_steps))
        if steps_out
        else np.zeros(0, index_dtype(n_steps))
    )
    chan_all = (
        np.concatenate(chans_out).astype(index_dtype(n_channels))
        if chans_out
        else np.zeros(0, index_dtype(n_channels))
    )
    offset = None
    if config.keep_offsets:
        offset = np.concatenate(offs_out) if offs_out else np.zeros(0, np.float32)
    return SpikeData(
        step=step_all,
        channel=chan_all,
        pointers=new_pointers,
        labels=np.asarray(labels, dtype=np.int64),
        n_steps=n_steps,
        n_channels=n_channels,
        dt=float(config.dt),
        offset=offset,
        speakers=None if speakers is None else np.asarray(speakers, dtype=np.int64),
        class_names=class_names,
    )


def bin_raw(raw: RawSpikes, config: BinningConfig) -> SpikeData:
    """Bin the content of a file read by :func:`~eventprop.data.hdf5.read_hdf5`."""
    return bin_spikes(
        raw.times,
        raw.units,
        raw.pointers,
        raw.labels,
        config,
        speakers=raw.speakers,
        class_names=raw.class_names,
    )


def load_preprocessed(
    path: str | os.PathLike[str],
    config: BinningConfig | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    identity: Literal["stat", "sha256"] = "stat",
    require_extra: bool = True,
) -> SpikeData:
    """Read, validate and bin an SHD/SSC-format file, through an on-disk cache.

    The cache entry is keyed by every field of ``config``, the preprocessing version and the
    source's identity (``"stat"``: size + modification time, cheap; ``"sha256"``: content hash,
    robust to copies that keep size and mtime). A damaged cache entry is rebuilt. Cache files
    are written atomically, so an interrupted run never leaves an entry that loads as valid.
    """
    config = config or BinningConfig()
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    if not cache:
        return bin_raw(
            read_hdf5(src, n_channels=config.n_channels_in, require_extra=require_extra), config
        )
    params = {
        "kind": "binned-hdf5",
        "version": PREPROCESS_VERSION,
        "config": asdict(config),
        "source": source_identity(src, identity),
        "require_extra": require_extra,
    }
    target = cache_file(preprocessed_dir(cache_dir), src.stem, params)
    if target.exists():
        data = load_spike_data(target, params)
        if data is not None:
            return data
        warnings.warn(f"{target}: damaged cache entry, rebuilding it", RuntimeWarning, stacklevel=2)
    data = bin_raw(
        read_hdf5(src, n_channels=config.n_channels_in, require_extra=require_extra), config
    )
    save_spike_data(target, data, params)
    return data
