"""Delay-line input (paper: each channel also presented at 10 delays of 30 ms).

Input channel ``c`` at delay ``d`` (``d = 1..n_delays``) becomes the extra channel ``c + d*C`` and
its spikes arrive ``d * delay`` later; delayed copies past the trial end are dropped. The network
then sees ``C * (n_delays + 1)`` input channels, each with its own weights, which gives a
feed-forward layer a window of past input without recurrence.

Works on flat event arrays, never on dense time x channel tensors: :func:`expand_delays` by
numpy broadcasting (any data, exact offsets kept), :func:`expand_delays_batch` as one compiled
pass that also leaves the batch sorted (the collate path). The collate function applies it per
mini-batch, so an epoch's data is not stored elevenfold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from eventprop.data.spikes import SpikeData, index_dtype

__all__ = ["DelayLine", "expand_delays", "expand_delays_batch"]


def expand_delays(
    step: np.ndarray,
    channel: np.ndarray,
    *,
    n_steps: int,
    n_channels: int,
    n_delays: int,
    delay_steps: int,
    extra: tuple[np.ndarray, ...] = (),
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Add ``n_delays`` delayed copies of the events ``(step, channel)``.

    Returns ``(step, channel, extra)`` with copy ``d`` (``d = 0..n_delays``) laid out after copy
    ``d-1``; each array of ``extra`` (sample ids, offsets ...) is carried along unchanged. Copies
    with ``step + d*delay_steps >= n_steps`` are dropped.
    """
    if n_delays < 0 or delay_steps < 0:
        raise ValueError(f"n_delays/delay_steps: must be >= 0, got {n_delays}/{delay_steps}")
    copies = n_delays + 1
    d = np.arange(copies, dtype=np.int64)[:, None]
    out_step = step.astype(np.int64)[None, :] + d * delay_steps
    keep = out_step < n_steps
    out_chan = channel.astype(np.int64)[None, :] + d * n_channels
    flat_keep = keep.ravel()
    new_step = out_step.ravel()[flat_keep]
    new_chan = out_chan.ravel()[flat_keep]
    new_extra = tuple(np.broadcast_to(x, (copies, x.size)).ravel()[flat_keep] for x in extra)
    return (
        new_step.astype(index_dtype(n_steps)),
        new_chan.astype(index_dtype(n_channels * copies)),
        new_extra,
    )


@numba.njit(cache=True, nogil=True)
def _expand_kernel(
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    batch_size: int,
    n_steps: int,
    n_channels: int,
    n_delays: int,
    delay_steps: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_bins = batch_size * n_steps
    # stable counting sort of the base events by (sample, step)
    start = np.zeros(n_bins + 1, np.int64)
    for i in range(step.size):
        start[sample[i] * n_steps + step[i] + 1] += 1
    for b in range(n_bins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    chan_sorted = np.empty(step.size, np.int32)
    for i in range(step.size):
        b = sample[i] * n_steps + step[i]
        chan_sorted[fill[b]] = channel[i]
        fill[b] += 1
    total = 0
    for d in range(n_delays + 1):
        sh = d * delay_steps
        if sh >= n_steps:
            break
        for s in range(batch_size):
            total += start[s * n_steps + n_steps - sh] - start[s * n_steps]
    out_sample = np.empty(total, np.int32)
    out_step = np.empty(total, np.int32)
    out_chan = np.empty(total, np.int32)
    # walk the output in (sample, step) order; bin (s, u) holds copy d of base bin (s, u - d*delay)
    w = 0
    for s in range(batch_size):
        for u in range(n_steps):
            for d in range(n_delays + 1):
                sh = d * delay_steps
                if sh > u:
                    break
                b = s * n_steps + u - sh
                for i in range(start[b], start[b + 1]):
                    out_sample[w] = s
                    out_step[w] = u
                    out_chan[w] = chan_sorted[i] + d * n_channels
                    w += 1
    return out_sample, out_step, out_chan


def expand_delays_batch(
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    *,
    batch_size: int,
    n_steps: int,
    n_channels: int,
    n_delays: int,
    delay_steps: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delay-line expansion of a batch, returned sorted by (sample, step) as int32 arrays.

    Input in any order. One compiled pass: a counting sort of the base events by (sample, step)
    and a walk over the output bins in order, each filled with copies 0..n_delays of the base
    bins ``d * delay_steps`` earlier, so nothing is sorted afterwards and the output is written
    sequentially (a delay line multiplies the events about elevenfold, so this pass is the
    largest cost of batching with delays).
    """
    if n_delays < 0 or delay_steps < 0:
        raise ValueError(f"n_delays/delay_steps: must be >= 0, got {n_delays}/{delay_steps}")
    if step.size and (
        sample.min() < 0 or sample.max() >= batch_size or step.min() < 0 or step.max() >= n_steps
    ):
        raise ValueError("sample/step: values outside the batch")
    return _expand_kernel(
        np.ascontiguousarray(sample, dtype=np.int64),
        np.ascontiguousarray(step, dtype=np.int64),
        np.ascontiguousarray(channel, dtype=np.int32),
        int(batch_size),
        int(n_steps),
        int(n_channels),
        int(n_delays),
        int(delay_steps),
    )


@dataclass(frozen=True)
class DelayLine:
    """``n_delays`` extra copies of every channel, delayed by multiples of ``delay_ms``.

    Paper: ``DelayLine(n_delays=10, delay_ms=30.0)`` (11 copies). ``delay_ms`` must be a whole
    number of steps of the data's ``dt``.
    """

    n_delays: int = 10
    delay_ms: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.n_delays, (int, np.integer)) or self.n_delays < 0:
            raise ValueError(f"n_delays: must be an integer >= 0, got {self.n_delays!r}")
        if not (math.isfinite(self.delay_ms) and self.delay_ms >= 0):
            raise ValueError(f"delay_ms: must be a number >= 0, got {self.delay_ms!r}")

    def delay_steps(self, dt: float) -> int:
        ratio = self.delay_ms / dt
        if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
            raise ValueError(
                f"delay_ms: {self.delay_ms} ms is not a whole number of steps of dt = {dt} ms"
            )
        return round(ratio)

    def n_channels(self, n_channels: int) -> int:
        """Input channels after expansion."""
        return n_channels * (self.n_delays + 1)

    def __call__(self, data: SpikeData) -> SpikeData:
        """Expand a whole dataset (for small sets; batches use :func:`expand_delays`)."""
        sample = data.sample_ids()
        extra = (sample,) if data.offset is None else (sample, data.offset)
        step, chan, out = expand_delays(
            data.step,
            data.channel,
            n_steps=data.n_steps,
            n_channels=data.n_channels,
            n_delays=int(self.n_delays),
            delay_steps=self.delay_steps(data.dt),
            extra=extra,
        )
        order = np.argsort(out[0], kind="stable")
        counts = np.bincount(out[0], minlength=len(data))
        pointers = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum(counts, out=pointers[1:])
        return data.with_events(
            step[order],
            chan[order],
            pointers,
            None if data.offset is None else out[1][order],
            n_channels=self.n_channels(data.n_channels),
        )
