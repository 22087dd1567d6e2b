"""The data of a run: train / validation / test sets built from the config, and their batches.

Everything here is a pure function of the config and the stream seeds, so that two runs of the
same config (and a resumed run) see exactly the same samples in the same order:

- the validation hold-out and sample subsets use the ``split`` seed;
- each epoch's augmented training set is ``augment_epoch(train, augs, seed, epoch)``;
- each epoch's batch order is ``iter_batches(..., seed, epoch)``.

The delay line is applied per mini-batch (so an epoch is never stored eleven-fold).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eventprop.data import (
    BinningConfig,
    Compose,
    DelayLine,
    SpikeData,
    augment_epoch,
    build_augmentations,
    iter_batches,
    load_preprocessed,
    load_shd,
    load_ssc,
    randman,
    random_split,
    yin_yang,
)
from eventprop.events import EventBatch
from eventprop.train.config import ExperimentConfig

__all__ = ["RunData", "load_run_data", "subsample"]

#: which sets a caller needs (the eval command does not need to augment the training set)
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True, eq=False)
class RunData:
    """The sets of a run plus what the network needs to know about its input and output."""

    train: SpikeData | None
    validation: SpikeData | None
    test: SpikeData | None
    validation_source: str  #: how the validation set was made (for reports)
    n_channels: int  #: input channels the network sees (after the delay line)
    n_classes: int
    class_names: tuple[str, ...]
    delay: DelayLine | None
    augment: Compose | None

    def split(self, name: str) -> SpikeData | None:
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {name!r}")
        return getattr(self, name)

    def epoch_train_data(self, epoch: int, augment_seed: int) -> SpikeData:
        """The training set of ``epoch`` (augmented: a pure function of seed and epoch)."""
        if self.train is None:
            raise RuntimeError("the training set was not loaded")
        if self.augment is None:
            return self.train
        return augment_epoch(self.train, self.augment, seed=augment_seed, epoch=epoch)

    def train_batches(
        self, data: SpikeData, epoch: int, order_seed: int, batch_size: int, drop_last: bool
    ) -> Iterator[tuple[EventBatch, torch.Tensor]]:
        return iter_batches(
            data,
            batch_size,
            shuffle=True,
            seed=order_seed,
            epoch=epoch,
            drop_last=drop_last,
            delay=self.delay,
        )

    def eval_batches(
        self, data: SpikeData, batch_size: int
    ) -> Iterator[tuple[EventBatch, torch.Tensor]]:
        return iter_batches(data, batch_size, shuffle=False, delay=self.delay)


def subsample(data: SpikeData, n: int | None, seed: int) -> SpikeData:
    """A seeded random subset of ``n`` samples (kept in their original order)."""
    if n is None or n >= len(data):
        return data
    rng = np.random.default_rng([int(seed), 0x5B5E7])
    idx = np.sort(rng.choice(len(data), size=int(n), replace=False))
    return data.subset(idx)


def _binning(cfg: ExperimentConfig) -> BinningConfig:
    d = cfg.data
    return BinningConfig(dt=d.dt, duration_ms=d.duration_ms or 1000.0, pool=d.pool)


def _load_named(cfg: ExperimentConfig, split: str) -> SpikeData:
    d = cfg.data
    kwargs = {
        "directory": d.directory,
        "dt": d.dt,
        "duration_ms": d.duration_ms or 1000.0,
        "pool": d.pool,
        "cache": d.cache,
    }
    if d.dataset == "shd":
        return load_shd(split, **kwargs)
    return load_ssc(split, **kwargs)


def _load_file(cfg: ExperimentConfig, key: str) -> SpikeData | None:
    path = getattr(cfg.data, key)
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"data.{key}: {p}: no such file")
    return load_preprocessed(p, _binning(cfg), cache=cfg.data.cache, require_extra=False)


def _yinyang(cfg: ExperimentConfig, which: str) -> SpikeData:
    y, d = cfg.data.yinyang, cfg.data
    size, seed = {
        "train": (y.train_size, y.train_seed),
        "valid": (y.valid_size, y.valid_seed),
        "test": (y.test_size, y.test_seed),
    }[which]
    return yin_yang(
        size,
        seed,
        t_min=y.t_min,
        t_max=y.t_max,
        t_bias=y.t_bias,
        bias=y.bias,
        dt=d.dt,
        duration_ms=d.duration_ms,
    )


def _randman_splits(cfg: ExperimentConfig, split_seed: int) -> dict[str, SpikeData]:
    r = cfg.data.randman
    data = randman(
        r.nb_classes,
        r.nb_units,
        r.nb_steps,
        step_frac=r.step_frac,
        dim_manifold=r.dim_manifold,
        nb_samples=r.nb_samples,
        alpha=r.alpha,
        seed=r.seed,
        dt=cfg.data.dt,
    )
    rest, test = random_split(len(data), r.test_fraction, split_seed + 1, labels=data.labels)
    rest_data = data.subset(rest)
    frac = r.valid_fraction / max(1e-12, 1.0 - r.test_fraction)
    tr, va = random_split(len(rest_data), min(frac, 0.999), split_seed + 2, labels=rest_data.labels)
    return {"train": rest_data.subset(tr), "valid": rest_data.subset(va), "test": data.subset(test)}


def _hold_out(
    cfg: ExperimentConfig, train: SpikeData, split_seed: int
) -> tuple[SpikeData, SpikeData, str]:
    v = cfg.data.validation
    if v.kind == "split":
        labels = train.labels if v.stratified else None
        tr, va = random_split(len(train), v.fraction, split_seed, labels=labels)
        how = f"random {'stratified ' if v.stratified else ''}{v.fraction:g} hold-out"
        return train.subset(tr), train.subset(va), how
    # speaker
    if train.speakers is None:
        raise ValueError(
            "data.validation.kind: 'speaker' needs speaker ids (extra/speaker) in the data"
        )
    ids = sorted(int(s) for s in np.unique(train.speakers) if s >= 0)
    if v.speaker not in ids:
        raise ValueError(
            f"data.validation.speaker: speaker {v.speaker} is not in the training set "
            f"(speakers: {', '.join(map(str, ids))})"
        )
    held = train.speakers == v.speaker
    return (
        train.subset(np.flatnonzero(~held)),
        train.subset(np.flatnonzero(held)),
        f"speaker {v.speaker} held out",
    )


def load_run_data(
    cfg: ExperimentConfig, seeds: dict[str, int], need: tuple[str, ...] = SPLITS
) -> RunData:
    """Build the sets of a run; ``need`` limits what is returned (others are None)."""
    d, kind = cfg.data, cfg.data.validation.kind
    split_seed = seeds["split"]
    need_train = "train" in need or kind in ("split", "speaker", "train")
    need_val = "validation" in need
    need_test = ("test" in need and d.test) or (need_val and kind == "test")

    official_val: SpikeData | None = None
    test: SpikeData | None = None
    train: SpikeData | None = None
    if d.dataset == "yinyang":
        train = _yinyang(cfg, "train") if need_train else None
        official_val = _yinyang(cfg, "valid") if need_val and kind == "official" else None
        test = _yinyang(cfg, "test") if need_test else None
    elif d.dataset == "randman":
        parts = _randman_splits(cfg, split_seed)
        train, official_val, test = parts["train"], parts["valid"], parts["test"]
    elif d.dataset in ("shd", "ssc"):
        train = _load_named(cfg, "train") if need_train else None
        if need_val and kind == "official":
            official_val = _load_named(cfg, "valid")
        test = _load_named(cfg, "test") if need_test else None
    else:  # hdf5
        train = _load_file(cfg, "train_file") if need_train else None
        official_val = _load_file(cfg, "valid_file") if need_val and kind == "official" else None
        test = _load_file(cfg, "test_file") if need_test else None

    validation: SpikeData | None = None
    source = kind
    if kind in ("split", "speaker"):
        assert train is not None
        train, validation, source = _hold_out(cfg, train, split_seed)
    elif kind == "official":
        validation, source = official_val, "official validation set"
    elif kind == "test":
        validation, source = test, "TEST SET used for validation (no independent selection)"
    elif kind == "train":
        validation, source = train, "training set (unaugmented)"
    else:
        source = "none (best checkpoint chosen on training accuracy)"

    if train is not None:
        train = subsample(train, d.max_train_samples, split_seed + 3)
        if kind == "train":
            validation = train
    if validation is not None and kind != "train":
        validation = subsample(validation, d.max_eval_samples, split_seed + 4)
    if test is not None:
        test = subsample(test, d.max_eval_samples, split_seed + 5)

    sets = [s for s in (train, validation, test) if s is not None]
    if not sets:
        raise ValueError("no data: nothing to load for the requested splits")
    ref = sets[0]
    for s in sets[1:]:
        if (s.n_channels, s.n_steps, s.dt) != (ref.n_channels, ref.n_steps, ref.dt):
            raise ValueError(
                f"data: the sets disagree on (channels, steps, dt): "
                f"{(ref.n_channels, ref.n_steps, ref.dt)} vs {(s.n_channels, s.n_steps, s.dt)}"
            )
    if train is not None and len(train) == 0:
        source = {
            "hdf5": f"data.train_file {d.train_file}",
            "shd": f"the SHD training file in {d.directory or 'the data directory'}",
            "ssc": f"the SSC training file in {d.directory or 'the data directory'}",
        }.get(d.dataset, f"the {d.dataset} training set")
        raise ValueError(
            f"data: no training samples left from {source} after data.validation (kind "
            f"{kind!r}) and data.max_train_samples; lower data.validation.fraction or use "
            "a larger file"
        )
    names = next((s.class_names for s in sets if s.class_names), None)
    max_label = max(int(s.labels.max()) for s in sets if len(s))
    n_classes = max(len(names) if names else 0, max_label + 1)
    class_names = (
        tuple(names)
        if names and len(names) == n_classes
        else tuple(str(k) for k in range(n_classes))
    )
    delay = None
    if d.delay is not None and d.delay.n_delays > 0:
        delay = DelayLine(n_delays=d.delay.n_delays, delay_ms=d.delay.delay_ms)
    augment = build_augmentations(d.augment) if d.augment else None
    n_channels = delay.n_channels(ref.n_channels) if delay else ref.n_channels
    return RunData(
        train=train if "train" in need else None,
        validation=validation if need_val else None,
        test=test if "test" in need and d.test else None,
        validation_source=source,
        n_channels=n_channels,
        n_classes=n_classes,
        class_names=class_names,
        delay=delay,
        augment=augment,
    )
