"""Mini-batches for the engine: samples -> ``(EventBatch, labels)``.

The collate function concatenates the samples' flat spike arrays, optionally adds the delay
line, sorts by (sample, step[, offset]) and hands the result to :class:`EventBatch`. Sorting uses
numpy's radix sort on 16-bit keys where they fit (a 32 x 1000-step batch does), which makes a
batch of SHD take a few milliseconds, so that an epoch of batching costs about a second.

Everything here is a module-level function or a frozen dataclass of plain values, so it pickles
into ``DataLoader`` worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from eventprop.data.delay import DelayLine, expand_delays, expand_delays_batch
from eventprop.data.spikes import SpikeData, gather_segments
from eventprop.events import EventBatch

__all__ = [
    "EventCollate",
    "SampleEvents",
    "build_event_batch",
    "collate_events",
    "event_batch_from_data",
    "iter_batches",
]

_U16 = np.iinfo(np.uint16).max


class SampleEvents(NamedTuple):
    """The spikes of one sample, as a Dataset item carries them."""

    step: np.ndarray
    channel: np.ndarray
    offset: np.ndarray | None
    n_steps: int
    n_channels: int
    dt: float


def _sort_order(
    sample: np.ndarray, step: np.ndarray, offset: np.ndarray | None, batch_size: int, n_steps: int
) -> np.ndarray | None:
    """Permutation sorting events by (sample, step[, offset]); None when already sorted."""
    if offset is not None:
        return np.lexsort((offset, step, sample))
    if sample.size == 0:
        return None
    if batch_size * n_steps <= _U16:
        key = sample.astype(np.uint16) * np.uint16(n_steps) + step.astype(np.uint16)
        if np.all(key[1:] >= key[:-1]):
            return None
        return np.argsort(key, kind="stable")  # radix sort for 16-bit keys
    key64 = sample.astype(np.int64) * n_steps + step
    if np.all(key64[1:] >= key64[:-1]):
        return None
    if n_steps <= _U16 and batch_size <= _U16:
        # two stable radix passes (least significant key first)
        order = np.argsort(step.astype(np.uint16), kind="stable")
        return order[np.argsort(sample[order].astype(np.uint16), kind="stable")]
    return np.argsort(key64, kind="stable")


def build_event_batch(
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    offset: np.ndarray | None,
    *,
    batch_size: int,
    n_steps: int,
    n_channels: int,
    dt: float,
    presorted: bool = False,
) -> EventBatch:
    """An :class:`EventBatch` from flat event arrays in any order (validated, then sorted).

    Equivalent to :meth:`EventBatch.from_arrays` but several times faster on large batches,
    because it sorts with radix passes and checks ranges with one min/max per field.
    ``presorted=True`` promises (sample, step[, offset]) order and skips the sort.
    """
    for name, arr, bound in (
        ("sample", sample, batch_size),
        ("step", step, n_steps),
        ("channel", channel, n_channels),
    ):
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= bound):
            raise ValueError(f"{name}: values must lie in 0..{bound - 1}")
    if offset is not None and offset.size and (offset.min() < 0 or offset.max() >= 1):
        raise ValueError("offset: values must lie in [0, 1)")
    order = None if presorted else _sort_order(sample, step, offset, batch_size, n_steps)
    if order is not None:
        sample, step, channel = sample[order], step[order], channel[order]
        offset = None if offset is None else offset[order]
    off = np.zeros(step.size) if offset is None else offset.astype(np.float64)
    if dt <= 0 or batch_size <= 0 or n_steps <= 0 or n_channels <= 0:
        raise ValueError("batch_size, n_steps, n_channels and dt must be positive")
    return EventBatch(
        sample=torch.from_numpy(np.ascontiguousarray(sample, dtype=np.int32)),
        step=torch.from_numpy(np.ascontiguousarray(step, dtype=np.int32)),
        channel=torch.from_numpy(np.ascontiguousarray(channel, dtype=np.int32)),
        offset=torch.from_numpy(np.ascontiguousarray(off)),
        batch_size=int(batch_size),
        n_steps=int(n_steps),
        n_channels=int(n_channels),
        dt=float(dt),
    )


def _finish(
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    offset: np.ndarray | None,
    *,
    batch_size: int,
    n_steps: int,
    n_channels: int,
    dt: float,
    delay: DelayLine | None,
) -> EventBatch:
    if delay is not None and delay.n_delays > 0 and offset is None:
        sample, step, channel = expand_delays_batch(
            sample,
            step,
            channel,
            batch_size=batch_size,
            n_steps=n_steps,
            n_channels=n_channels,
            n_delays=int(delay.n_delays),
            delay_steps=delay.delay_steps(dt),
        )
        return build_event_batch(
            sample,
            step,
            channel,
            None,
            batch_size=batch_size,
            n_steps=n_steps,
            n_channels=delay.n_channels(n_channels),
            dt=dt,
            presorted=True,
        )
    if delay is not None and delay.n_delays > 0:
        extra = (sample, offset)
        step, channel, out = expand_delays(
            step,
            channel,
            n_steps=n_steps,
            n_channels=n_channels,
            n_delays=int(delay.n_delays),
            delay_steps=delay.delay_steps(dt),
            extra=extra,
        )
        sample, offset = out
        n_channels = delay.n_channels(n_channels)
    return build_event_batch(
        sample,
        step,
        channel,
        offset,
        batch_size=batch_size,
        n_steps=n_steps,
        n_channels=n_channels,
        dt=dt,
    )


def collate_events(
    items: Sequence[tuple[SampleEvents, int]], delay: DelayLine | None = None
) -> tuple[EventBatch, torch.Tensor]:
    """Collate ``(SampleEvents, label)`` items into ``(EventBatch, int64 labels)``."""
    if len(items) == 0:
        raise ValueError("collate_events: empty batch")
    first = items[0][0]
    for k, (ev, _) in enumerate(items):
        if (ev.n_steps, ev.n_channels, ev.dt) != (first.n_steps, first.n_channels, first.dt):
            raise ValueError(
                f"collate_events: item {k} has (n_steps, n_channels, dt) = "
                f"{(ev.n_steps, ev.n_channels, ev.dt)}, item 0 has "
                f"{(first.n_steps, first.n_channels, first.dt)}"
            )
        if (ev.offset is None) != (first.offset is None):
            raise ValueError(f"collate_events: item {k} and item 0 disagree on having offsets")
    counts = np.array([ev.step.size for ev, _ in items], dtype=np.int64)
    step = np.concatenate([ev.step for ev, _ in items])
    channel = np.concatenate([ev.channel for ev, _ in items])
    offset = None
    if first.offset is not None:
        offset = np.concatenate([ev.offset for ev, _ in items])  # type: ignore[misc]
    sample = np.repeat(np.arange(len(items), dtype=np.int32), counts)
    labels = torch.tensor([int(lbl) for _, lbl in items], dtype=torch.long)
    batch = _finish(
        sample,
        step,
        channel,
        offset,
        batch_size=len(items),
        n_steps=first.n_steps,
        n_channels=first.n_channels,
        dt=first.dt,
        delay=delay,
    )
    return batch, labels


@dataclass(frozen=True)
class EventCollate:
    """Picklable ``collate_fn`` for ``DataLoader``; optionally applies a delay line."""

    delay: DelayLine | None = None

    def __call__(
        self, items: Sequence[tuple[SampleEvents, int]]
    ) -> tuple[EventBatch, torch.Tensor]:
        return collate_events(items, self.delay)


def event_batch_from_data(
    data: SpikeData, indices: np.ndarray | Sequence[int], delay: DelayLine | None = None
) -> EventBatch:
    """The samples ``indices`` of ``data`` as one :class:`EventBatch` (no per-sample loop)."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("indices: a batch needs at least one sample")
    if idx.min() < 0 or idx.max() >= len(data):
        raise IndexError(f"indices: must lie in 0..{len(data) - 1}")
    p = data.pointers
    lo, hi = p[idx], p[idx + 1]
    if idx.size <= 4096:
        # a mini-batch: concatenating slices beats a ragged gather (plain memcpy per sample)
        step = np.concatenate([data.step[a:b] for a, b in zip(lo, hi, strict=True)])
        channel = np.concatenate([data.channel[a:b] for a, b in zip(lo, hi, strict=True)])
        offset = None
        if data.offset is not None:
            offset = np.concatenate([data.offset[a:b] for a, b in zip(lo, hi, strict=True)])
    else:
        pos, _ = gather_segments(p, idx)
        step, channel = data.step[pos], data.channel[pos]
        offset = None if data.offset is None else data.offset[pos]
    sample = np.repeat(np.arange(idx.size, dtype=np.int32), hi - lo)
    return _finish(
        sample,
        step,
        channel,
        offset,
        batch_size=idx.size,
        n_steps=data.n_steps,
        n_channels=data.n_channels,
        dt=data.dt,
        delay=delay,
    )


def iter_batches(
    data: SpikeData,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    delay: DelayLine | None = None,
) -> Iterator[tuple[EventBatch, torch.Tensor]]:
    """All mini-batches of one epoch, without a DataLoader (the fast path for in-memory data).

    The order is a pure function of (seed, epoch) when ``shuffle``.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    n = len(data)
    order = (
        np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(n)
        if shuffle
        else np.arange(n)
    )
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield (
            event_batch_from_data(data, idx, delay),
            torch.from_numpy(data.labels[idx].astype(np.int64)),
        )
