"""PyTorch ``Dataset`` classes and loaders of the named datasets.

:class:`SpikeDataset` serves any :class:`~eventprop.data.spikes.SpikeData` (SHD, SSC, Yin-Yang,
randman, converted tonic data) one sample at a time; ``dataset.collate_fn`` turns a list of
samples into ``(EventBatch, labels)``. Augmentations are applied to the whole epoch at once in
:meth:`SpikeDataset.set_epoch` (vectorised; a pure function of seed and epoch), not per item.
:class:`TonicDataset` wraps any indexable of tonic-layout ``(events, label)`` pairs lazily.

Items, the collate function and the datasets hold only numpy arrays and plain values, so they
pickle into ``DataLoader`` worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from eventprop.data.augment import Augmentation, augment_epoch, build_augmentations
from eventprop.data.collate import EventCollate, SampleEvents
from eventprop.data.delay import DelayLine
from eventprop.data.download import DATASET_FILES
from eventprop.data.paths import data_dir
from eventprop.data.preprocess import BinningConfig, bin_spikes, load_preprocessed
from eventprop.data.spikes import SpikeData
from eventprop.data.splits import OFFICIAL_SPLITS
from eventprop.data.tonic_interop import from_tonic, spike_data_from_tonic

__all__ = [
    "SpikeDataset",
    "TonicDataset",
    "dataset_file",
    "load_shd",
    "load_ssc",
]


class SpikeDataset(Dataset):
    """Samples of a :class:`SpikeData` as ``(SampleEvents, label)`` items.

    ``augment`` (a callable, or a config list for
    :func:`~eventprop.data.augment.build_augmentations`) is applied to the whole set by
    :meth:`set_epoch`; call it at the start of every epoch (the constructor prepares epoch 0),
    before iterating the ``DataLoader``: worker processes receive the dataset as it is when the
    iterator starts (so do not use ``persistent_workers=True`` with augmentations).
    ``delay`` adds a delay line at collate time.
    """

    def __init__(
        self,
        data: SpikeData,
        *,
        augment: Augmentation | Sequence[Mapping[str, Any]] | None = None,
        seed: int = 0,
        delay: DelayLine | None = None,
    ) -> None:
        if not isinstance(data, SpikeData):
            raise TypeError(f"data: expected SpikeData, got {type(data).__name__}")
        self.base = data
        self.augment = (
            None
            if augment is None
            else augment
            if callable(augment)
            else build_augmentations(augment)
        )
        self.seed = int(seed)
        self.delay = delay
        self.epoch = 0
        self.data = data
        if self.augment is not None:
            self.set_epoch(0)

    @classmethod
    def from_tonic(
        cls,
        samples: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray,
        *,
        n_channels: int,
        dt: float = 1.0,
        duration_ms: float = 1000.0,
        sensor_size: Sequence[int] | None = None,
        split_polarity: bool = False,
        **kwargs: Any,
    ) -> SpikeDataset:
        """A dataset from tonic-layout structured arrays (``t`` in µs, ``x``, ``p``)."""
        data = spike_data_from_tonic(
            samples,
            labels,
            n_channels=n_channels,
            dt=dt,
            duration_ms=duration_ms,
            sensor_size=sensor_size,
            split_polarity=split_polarity,
        )
        return cls(data, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmented copy of the base data (no-op without augmentations)."""
        self.epoch = int(epoch)
        self.data = augment_epoch(self.base, self.augment, seed=self.seed, epoch=self.epoch)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[SampleEvents, int]:
        step, channel, offset = self.data.spikes(int(index))
        d = self.data
        return SampleEvents(step, channel, offset, d.n_steps, d.n_channels, d.dt), int(
            d.labels[int(index)]
        )

    @property
    def collate_fn(self) -> EventCollate:
        """The ``collate_fn`` to give the ``DataLoader``."""
        return EventCollate(self.delay)

    @property
    def n_channels(self) -> int:
        """Input channels the network sees (after the delay line)."""
        c = self.base.n_channels
        return c if self.delay is None else self.delay.n_channels(c)

    @property
    def n_steps(self) -> int:
        return self.base.n_steps

    @property
    def dt(self) -> float:
        return self.base.dt

    @property
    def n_classes(self) -> int:
        if self.base.class_names is not None:
            return len(self.base.class_names)
        return int(self.base.labels.max()) + 1 if len(self.base) else 0


class TonicDataset(Dataset):
    """Lazy adapter: any indexable of tonic-layout ``(events, label)`` -> ``(SampleEvents, label)``.

    Each sample is converted when accessed, with SHD's rules (bin to ``dt``, crop to
    ``duration_ms``, at most one spike per channel per step). Picklable when ``source`` is.
    """

    def __init__(
        self,
        source: Sequence[tuple[np.ndarray, int]],
        *,
        n_channels: int,
        dt: float = 1.0,
        duration_ms: float = 1000.0,
        sensor_size: Sequence[int] | None = None,
        split_polarity: bool = False,
        keep_offsets: bool = False,
        delay: DelayLine | None = None,
    ) -> None:
        self.source = source
        self.config = BinningConfig(
            dt=dt, duration_ms=duration_ms, keep_offsets=keep_offsets, n_channels_in=n_channels
        )
        self.sensor_size = None if sensor_size is None else tuple(sensor_size)
        self.split_polarity = split_polarity
        self.delay = delay

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[SampleEvents, int]:
        events, label = self.source[index]
        t, c = from_tonic(events, sensor_size=self.sensor_size, split_polarity=self.split_polarity)
        if c.size and c.max() >= self.config.n_channels_in:
            raise ValueError(
                f"sample {index}: channel {int(c.max())} >= "
                f"n_channels = {self.config.n_channels_in}"
            )
        d = bin_spikes(
            t, c, np.array([0, t.size]), np.array([int(label)]), self.config, time_scale=1.0
        )
        return SampleEvents(d.step, d.channel, d.offset, d.n_steps, d.n_channels, d.dt), int(label)

    @property
    def collate_fn(self) -> EventCollate:
        return EventCollate(self.delay)


def dataset_file(dataset: str, split: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Path of an official file (``<dir>/<dataset>_<split>.h5``); clear error when absent."""
    key = dataset.lower()
    if key not in OFFICIAL_SPLITS:
        raise ValueError(f"dataset: expected one of {sorted(OFFICIAL_SPLITS)}, got {dataset!r}")
    if split not in OFFICIAL_SPLITS[key]:
        raise ValueError(
            f"split: {dataset} has the splits {', '.join(OFFICIAL_SPLITS[key])}, not {split!r}"
        )
    root = data_dir(directory)
    path = root / f"{key}_{split}.h5"
    if not path.is_file():
        names = ", ".join(f.removesuffix(".gz") for f in DATASET_FILES[key])
        raise FileNotFoundError(
            f"{path}: not found. Run `eventprop data download {key}` (or put {names} in {root} "
            "by hand, or point EVENTPROP_DATA_DIR at the folder holding them)"
        )
    return path


def _load(
    dataset: str,
    split: str,
    *,
    directory: str | os.PathLike[str] | None,
    dt: float,
    duration_ms: float,
    pool: int,
    keep_offsets: bool,
    cache: bool,
    cache_dir: str | os.PathLike[str] | None,
    identity: Literal["stat", "sha256"],
) -> SpikeData:
    path = dataset_file(dataset, split, directory)
    config = BinningConfig(dt=dt, duration_ms=duration_ms, pool=pool, keep_offsets=keep_offsets)
    if cache_dir is None and directory is not None:
        cache_dir = data_dir(directory) / "preprocessed"
    return load_preprocessed(path, config, cache=cache, cache_dir=cache_dir, identity=identity)


def load_shd(
    split: str = "train",
    *,
    directory: str | os.PathLike[str] | None = None,
    dt: float = 1.0,
    duration_ms: float = 1000.0,
    pool: int = 1,
    keep_offsets: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    identity: Literal["stat", "sha256"] = "stat",
) -> SpikeData:
    """SHD ``"train"`` or ``"test"``, binned (paper: dt 1 ms, 1000 ms trials) through the cache."""
    return _load(
        "shd",
        split,
        directory=directory,
        dt=dt,
        duration_ms=duration_ms,
        pool=pool,
        keep_offsets=keep_offsets,
        cache=cache,
        cache_dir=cache_dir,
        identity=identity,
    )


def load_ssc(
    split: str = "train",
    *,
    directory: str | os.PathLike[str] | None = None,
    dt: float = 1.0,
    duration_ms: float = 1000.0,
    pool: int = 1,
    keep_offsets: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    identity: Literal["stat", "sha256"] = "stat",
) -> SpikeData:
    """SSC ``"train"``, ``"valid"`` or ``"test"`` (the official split), binned through the cache."""
    return _load(
        "ssc",
        split,
        directory=directory,
        dt=dt,
        duration_ms=duration_ms,
        pool=pool,
        keep_offsets=keep_offsets,
        cache=cache,
        cache_dir=cache_dir,
        identity=identity,
    )
