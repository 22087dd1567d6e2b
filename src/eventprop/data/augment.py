"""Training-set augmentations of the paper (Nowotny et al. 2025), vectorised over a whole epoch.

Each augmentation is a small frozen dataclass with one job, called as ``aug(data, rng)`` on a
:class:`~eventprop.data.spikes.SpikeData` with a numpy ``Generator``; it returns a new
``SpikeData`` and never modifies its input. All of them work on the flat spike arrays of the
epoch at once: a few numpy passes over all spikes, in chunks of ~256 k spikes so that the
temporaries stay in cache (no per-spike or per-sample Python loop). On SHD-sized data (8156
samples x 8000 spikes) shift, dilation and dropout take ~0.4 s per epoch and doubling the set
by blending ~2 s (benchmarks/bench_data.py).

They compose from a config list, e.g. ``[{"name": "blend", "fraction": 1.0},
{"name": "shift", "max_shift": 40}]`` (:func:`build_augmentations`), and an epoch's result is a
pure function of (seed, epoch) (:func:`augment_epoch`), so runs are reproducible and resumable.

Spikes moved out of range (channel < 0 or >= n_channels, step >= n_steps) are dropped, as in the
reference implementation.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from eventprop.data.spikes import (
    Chunk,
    ChunkResult,
    SpikeData,
    SpikeWriter,
    index_dtype,
    iter_segment_chunks,
    segment_sum,
)

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "Blend",
    "ChannelJitter",
    "ChannelShift",
    "Compose",
    "SpikeDropout",
    "TimeDilation",
    "augment_epoch",
    "build_augmentations",
    "epoch_rng",
    "sample_means",
]


class Augmentation(Protocol):
    """A random transformation of a whole dataset (one epoch's worth of samples)."""

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData: ...


_BELOW_ONE = np.nextafter(np.float32(1), np.float32(0))
_MEANS: weakref.WeakKeyDictionary[SpikeData, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def sample_means(data: SpikeData) -> tuple[np.ndarray, np.ndarray]:
    """Mean channel and mean time (in steps) of every sample; 0 for empty samples.

    Memoised per SpikeData object (they are immutable): blending the same base set every epoch
    then costs no full pass for the means.
    """
    hit = _MEANS.get(data)
    if hit is not None:
        return hit
    counts = data.counts()
    sum_t = segment_sum(data.step, data.pointers).astype(np.float64)
    if data.offset is not None:
        sum_t += segment_sum(data.offset, data.pointers)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_c = np.nan_to_num(segment_sum(data.channel, data.pointers) / counts)
        mean_t = np.nan_to_num(sum_t / counts)
    _MEANS[data] = (mean_c, mean_t)
    return mean_c, mean_t


@dataclass(frozen=True)
class ChannelShift:
    """Shift all channels of a sample by one integer drawn uniformly from [-max_shift, max_shift].

    Paper: ``max_shift = 40`` on SHD's 700 channels.
    """

    max_shift: int = 40

    def __post_init__(self) -> None:
        if not isinstance(self.max_shift, (int, np.integer)) or self.max_shift < 0:
            raise ValueError(f"max_shift: must be an integer >= 0, got {self.max_shift!r}")

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData:
        dtype = index_dtype(data.n_channels + int(self.max_shift))
        shifts = rng.integers(-self.max_shift, self.max_shift + 1, size=len(data)).astype(dtype)
        n_channels = data.n_channels

        def fn(c: Chunk) -> ChunkResult:
            channel = c.channel.astype(dtype) + c.per_spike(shifts)
            keep = (channel >= 0) & (channel < n_channels)
            return keep, c.step, channel, c.offset

        return data.map_chunks(fn)


@dataclass(frozen=True)
class ChannelJitter:
    """Move every spike to channel ``c + round(Normal(0, sigma))`` independently (paper: 5)."""

    sigma: float = 5.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma: must be a finite number >= 0, got {self.sigma!r}")

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData:
        sigma, n_channels = np.float32(self.sigma), data.n_channels

        def fn(c: Chunk) -> ChunkResult:
            noise = rng.standard_normal(c.n_spikes, dtype=np.float32)
            noise *= sigma
            channel = c.channel.astype(np.int32) + np.rint(noise).astype(np.int32)
            keep = (channel >= 0) & (channel < n_channels)
            return keep, c.step, channel, c.offset

        return data.map_chunks(fn)


@dataclass(frozen=True)
class SpikeDropout:
    """Delete every input spike independently with probability ``p`` (paper: 0.1)."""

    p: float = 0.1

    def __post_init__(self) -> None:
        if not (0.0 <= self.p <= 1.0):
            raise ValueError(f"p: must lie in [0, 1], got {self.p!r}")

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData:
        p = np.float32(self.p)

        def fn(c: Chunk) -> ChunkResult:
            keep = rng.random(c.n_spikes, dtype=np.float32) >= p
            return keep, c.step, c.channel, c.offset

        return data.map_chunks(fn)


@dataclass(frozen=True)
class TimeDilation:
    """Stretch each sample's time axis by a factor drawn log-uniformly in [min, max].

    A spike at time ``t`` (``step + offset`` in steps) moves to ``t * factor``; spikes pushed past
    the trial end are dropped. Without stored offsets a binned spike sits at the start of its
    step. Paper: factors in [0.9, 1.1] on a log scale.
    """

    min_factor: float = 0.9
    max_factor: float = 1.1

    def __post_init__(self) -> None:
        if not (0 < self.min_factor <= self.max_factor and math.isfinite(self.max_factor)):
            raise ValueError(
                f"min_factor/max_factor: need 0 < min <= max, got {self.min_factor}, "
                f"{self.max_factor}"
            )

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData:
        log_f = rng.uniform(math.log(self.min_factor), math.log(self.max_factor), size=len(data))
        factors = np.exp(log_f).astype(np.float32)
        n_steps = data.n_steps

        def fn(c: Chunk) -> ChunkResult:
            t = c.step.astype(np.float32)
            if c.offset is not None:
                t += c.offset
            t *= c.per_spike(factors)
            step = np.floor(t)
            keep = step < n_steps
            offset = None
            if c.offset is not None:
                offset = np.minimum(t - step, _BELOW_ONE)
            return keep, step.astype(np.int32), c.channel, offset

        return data.map_chunks(fn)


@dataclass(frozen=True)
class Blend:
    """Extend the set with new samples mixing two samples of the same class.

    For each new sample, a sample ``a`` is drawn uniformly and a partner ``b`` uniformly among the
    other samples of its class. Both are moved half-way towards each other so that their mean
    channel and mean time coincide (shifts truncated to whole channels and steps, as in the
    reference code); then each spike of ``a`` is kept with probability ``probs[0]`` and each
    of ``b`` with ``probs[1]``. Paper: probs (0.5, 0.5), the training set doubled (``fraction=1``).

    Give exactly one of ``n`` (number of new samples) or ``fraction`` (of the current size).
    New samples have speaker -1 (they mix two recordings).
    """

    n: int | None = None
    fraction: float | None = None
    probs: tuple[float, float] = (0.5, 0.5)

    def __post_init__(self) -> None:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("blend: give exactly one of 'n' and 'fraction'")
        if self.n is not None and (not isinstance(self.n, (int, np.integer)) or self.n < 0):
            raise ValueError(f"n: must be an integer >= 0, got {self.n!r}")
        if self.fraction is not None and not (math.isfinite(self.fraction) and self.fraction >= 0):
            raise ValueError(f"fraction: must be a number >= 0, got {self.fraction!r}")
        probs = tuple(float(p) for p in self.probs)
        if len(probs) != 2 or not all(0.0 <= p <= 1.0 for p in probs):
            raise ValueError(f"probs: expected two probabilities in [0, 1], got {self.probs!r}")
        object.__setattr__(self, "probs", probs)

    def partners(self, labels: np.ndarray, n_new: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_new`` pairs ``(a, b)`` of same-class samples, ``b != a`` where possible."""
        n = labels.size
        a = rng.integers(0, n, size=n_new)
        order = np.argsort(labels, kind="stable")
        _, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        group = np.searchsorted(starts, rank[a], side="right") - 1
        start, size = starts[group], sizes[group]
        own = rank[a] - start
        r = rng.integers(0, np.maximum(size - 1, 1))
        r = np.where(size > 1, r + (r >= own), own)
        return np.stack([a, order[start + r]], axis=1)

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData:
        n_new = int(self.n) if self.n is not None else round(float(self.fraction) * len(data))
        if n_new == 0 or len(data) == 0:
            return data
        pairs = self.partners(data.labels, n_new, rng)
        counts = data.counts()
        mean_c, mean_t = sample_means(data)
        a, b = pairs[:, 0], pairs[:, 1]
        # shifts are at most half the range, so step/channel + shift fits this dtype
        dtype = index_dtype(2 * max(data.n_steps, data.n_channels))
        shift_c = np.trunc((mean_c[b] - mean_c[a]) / 2).astype(dtype)
        shift_t = np.trunc((mean_t[b] - mean_t[a]) / 2).astype(dtype)
        # segments interleaved a0 b0 a1 b1 ...: pair k's spikes are segments 2k and 2k+1
        seg = pairs.ravel()
        seg_shift_c = np.stack([shift_c, -shift_c], axis=1).ravel()
        seg_shift_t = np.stack([shift_t, -shift_t], axis=1).ravel()
        p_a, p_b = (np.float32(p) for p in self.probs)
        pair_pointers = np.zeros(n_new + 1, dtype=np.int64)
        np.cumsum(counts[a] + counts[b], out=pair_pointers[1:])
        writer = SpikeWriter(
            data.n_spikes + int(pair_pointers[-1]),
            data.step.dtype,
            data.channel.dtype,
            data.offset is not None,
        )
        writer.append(None, data.step, data.channel, data.offset)
        kept_pairs = np.zeros(n_new, dtype=np.int64)
        n_steps, n_channels = data.n_steps, data.n_channels
        for chunk in iter_segment_chunks(pair_pointers, np.arange(n_new, dtype=np.int64)):
            k0, k1 = int(chunk[0]), int(chunk[-1]) + 1
            s0, s1 = 2 * k0, 2 * k1
            starts = data.pointers[seg[s0:s1]]
            local = np.zeros(s1 - s0 + 1, dtype=np.int64)
            np.cumsum(data.pointers[seg[s0:s1] + 1] - starts, out=local[1:])
            # draw for every spike of both parents, then touch only the survivors (about half);
            # np.flatnonzero rather than boolean indexing, which is several times slower here
            draw = rng.random(int(local[-1]), dtype=np.float32)
            if p_a == p_b:
                chosen = np.flatnonzero(draw < p_a)
            else:
                parity = np.repeat(np.arange(s1 - s0, dtype=np.int32) % 2, np.diff(local))
                chosen = np.flatnonzero(draw < np.where(parity == 0, p_a, p_b))
            kept_seg = np.diff(np.searchsorted(chosen, local))
            sid = np.repeat(np.arange(s1 - s0, dtype=np.int32), kept_seg)
            pos = chosen + (starts - local[:-1])[sid]
            step = data.step[pos].astype(dtype, copy=False)
            step += seg_shift_t[s0:s1][sid]
            chan = data.channel[pos].astype(dtype, copy=False)
            chan += seg_shift_c[s0:s1][sid]
            inside = (step >= 0) & (step < n_steps) & (chan >= 0) & (chan < n_channels)
            all_inside = bool(inside.all())
            offset = None if data.offset is None else data.offset[pos]
            writer.append(None if all_inside else inside, step, chan, offset)
            if not all_inside:
                kept_seg = np.bincount(np.compress(inside, sid), minlength=s1 - s0)
            kept_pairs[k0:k1] = kept_seg[0::2] + kept_seg[1::2]
        step, chan, offset = writer.finish()
        pointers = np.concatenate([data.pointers, data.n_spikes + np.cumsum(kept_pairs)])
        speakers = None
        if data.speakers is not None:
            speakers = np.concatenate([data.speakers, np.full(n_new, -1, np.int64)])
        return SpikeData(
            step=step,
            channel=chan,
            pointers=pointers,
            labels=np.concatenate([data.labels, data.labels[a]]),
            n_steps=data.n_steps,
            n_channels=data.n_channels,
            dt=data.dt,
            offset=offset,
            speakers=speakers,
            class_names=data.class_names,
        )


@dataclass(frozen=True)
class Compose:
    """Apply augmentations in order."""

    steps: tuple[Augmentation, ...] = field(default_factory=tuple)

    def __call__(self, data: SpikeData, rng: np.random.Generator) -> SpikeData:
        for aug in self.steps:
            data = aug(data, rng)
        return data

    def __len__(self) -> int:
        return len(self.steps)


#: config names of the augmentations
AUGMENTATIONS: dict[str, Callable[..., Augmentation]] = {
    "shift": ChannelShift,
    "blend": Blend,
    "dilate": TimeDilation,
    "time_dilation": TimeDilation,
    "jitter": ChannelJitter,
    "dropout": SpikeDropout,
}


def build_augmentations(config: Sequence[Mapping[str, Any]] | None) -> Compose:
    """Build a :class:`Compose` from a list of ``{"name": ..., <parameters>}`` dicts.

    Errors name the entry's position and the offending key.
    """
    if config is None:
        return Compose(())
    if isinstance(config, Mapping) or isinstance(config, (str, bytes)):
        raise ValueError("augmentations: expected a list of {'name': ..., ...} entries")
    steps: list[Augmentation] = []
    for i, entry in enumerate(config):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ValueError(f"augmentations[{i}]: expected a mapping with a 'name' key")
        params = dict(entry)
        name = str(params.pop("name")).lower()
        if name not in AUGMENTATIONS:
            raise ValueError(
                f"augmentations[{i}]: unknown name {name!r} "
                f"(known: {', '.join(sorted(AUGMENTATIONS))})"
            )
        cls = AUGMENTATIONS[name]
        allowed = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"augmentations[{i}] ({name}): unknown parameter(s) {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
        if "probs" in params:
            params["probs"] = tuple(params["probs"])
        try:
            steps.append(cls(**params))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"augmentations[{i}] ({name}): {exc}") from exc
    return Compose(tuple(steps))


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The random generator of one epoch: independent streams for every (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)])


def augment_epoch(
    data: SpikeData,
    augmentations: Augmentation | Sequence[Mapping[str, Any]] | None,
    *,
    seed: int,
    epoch: int,
) -> SpikeData:
    """One epoch's augmented copy of ``data``; a pure function of (data, config, seed, epoch)."""
    if augmentations is None:
        return data
    if not callable(augmentations):
        augmentations = build_augmentations(augmentations)
    return augmentations(data, epoch_rng(seed, epoch))
