"""In-memory format of a whole dataset of spike trains: flat arrays plus sample pointers.

A dataset of N samples is stored CSR-style: the spikes of sample ``i`` are the slice
``[pointers[i], pointers[i+1])`` of the flat arrays ``step`` (time step) and ``channel``. This keeps
an SHD-sized training set (~65 M spikes) in a few hundred MB, lets every augmentation run as a
handful of vectorised numpy passes over all spikes of an epoch, and makes the on-disk cache a
plain ``.npz`` of the same arrays (loads in well under a second, no pickles of lists).

Steps and channels use the smallest integer type that holds them (int16 for SHD), because the
epoch-wide passes are memory-bound. An optional ``offset`` in ``[0, 1)`` keeps the exact position of
a spike inside its step (latency-coded data such as Yin-Yang needs it); it follows the same
convention as :class:`eventprop.events.EventBatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from eventprop.events import EventBatch

__all__ = [
    "Chunk",
    "ChunkResult",
    "SpikeData",
    "SpikeWriter",
    "gather_segments",
    "index_dtype",
    "iter_segment_chunks",
    "segment_sum",
    "split_steps",
]

#: spikes per vectorised chunk. Chunk-sized temporaries (a few MB) are recycled by the
#: allocator and stay in cache, while epoch-sized ones (hundreds of MB) are fresh pages every
#: time: chunking makes the epoch-wide passes several times faster and bounds peak memory.
CHUNK_SPIKES = 1 << 18


#: a time this close below a step boundary (in steps) counts as on it, as in EventBatch: times
#: written as k*dt in floating point then land in step k rather than k-1
STEP_TOLERANCE = 1e-9
_BELOW_ONE_32 = np.nextafter(np.float32(1), np.float32(0))


def split_steps(t_steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split times measured in steps into (step int64, offset float32 in [0, 1))."""
    step = np.floor(t_steps + STEP_TOLERANCE)
    offset = np.clip(t_steps - step, 0.0, None).astype(np.float32)
    np.minimum(offset, _BELOW_ONE_32, out=offset)
    return step.astype(np.int64), offset


def index_dtype(bound: int) -> np.dtype:
    """Smallest signed integer dtype (int16, int32, int64) that holds ``-2*bound .. 2*bound``.

    Signed and with headroom, so that augmentations can form out-of-range values (a shift below
    channel 0, a delay past the end) and drop them without wrapping around.
    """
    if bound < np.iinfo(np.int16).max // 2:
        return np.dtype(np.int16)
    if bound < np.iinfo(np.int32).max // 2:
        return np.dtype(np.int32)
    return np.dtype(np.int64)


def segment_sum(values: np.ndarray, pointers: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each segment ``[pointers[i], pointers[i+1])`` as int64/float64.

    Empty segments give 0 (``np.add.reduceat`` alone would return the next element).
    """
    pointers = np.asarray(pointers, dtype=np.int64)
    n = pointers.size - 1
    kind = np.float64 if np.issubdtype(values.dtype, np.floating) else np.int64
    out = np.zeros(n, dtype=kind)
    counts = np.diff(pointers)
    nonempty = np.flatnonzero(counts > 0)
    if nonempty.size:
        # reduceat over the starts of non-empty segments: each sum then runs to the next
        # non-empty start, i.e. exactly over its own segment (empty ones in between are empty).
        out[nonempty] = np.add.reduceat(values, pointers[nonempty], dtype=kind)
    return out


def iter_segment_chunks(
    pointers: np.ndarray, indices: np.ndarray, max_spikes: int | None = None
) -> Iterator[np.ndarray]:
    """Split ``indices`` (segment numbers) into consecutive runs of at most ~``max_spikes`` spikes.

    A single segment larger than ``max_spikes`` forms a run of its own. ``None`` means the
    module's :data:`CHUNK_SPIKES` (read at call time, so tests can shrink it).
    """
    if max_spikes is None:
        max_spikes = CHUNK_SPIKES
    counts = pointers[indices + 1] - pointers[indices]
    if indices.size == 0:
        return
    csum = np.cumsum(counts)
    start = 0
    while start < indices.size:
        base = csum[start - 1] if start else 0
        stop = int(np.searchsorted(csum, base + max_spikes, side="right"))
        stop = max(stop, start + 1)
        yield indices[start:stop]
        start = stop


def gather_segments(pointers: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the spikes of segments ``indices`` (in that order) and new pointers.

    Returns ``(positions, new_pointers)``: ``arrays[positions]`` lays the chosen segments end to end
    and ``new_pointers`` delimits them. Vectorised (a "ragged arange"); callers chunk large
    requests with :func:`iter_segment_chunks` to bound the int64 temporaries.
    """
    indices = np.asarray(indices, dtype=np.int64)
    starts = pointers[indices]
    counts = pointers[indices + 1] - starts
    new_pointers = np.zeros(indices.size + 1, dtype=np.int64)
    np.cumsum(counts, out=new_pointers[1:])
    total = int(new_pointers[-1])
    positions = np.arange(total, dtype=np.int64)
    positions -= np.repeat(new_pointers[:-1] - starts, counts)
    return positions, new_pointers


@dataclass(frozen=True, eq=False)
class Chunk:
    """A run of consecutive samples ``[s0, s1)`` and views of their spikes ``[lo, hi)``."""

    s0: int
    s1: int
    lo: int
    hi: int
    step: np.ndarray
    channel: np.ndarray
    offset: np.ndarray | None
    pointers: np.ndarray  #: local pointers, ``pointers[0] == 0``

    @property
    def n_spikes(self) -> int:
        return self.hi - self.lo

    def counts(self) -> np.ndarray:
        return np.diff(self.pointers)

    def per_spike(self, values: np.ndarray) -> np.ndarray:
        """Per-sample ``values`` (indexed by global sample) expanded to this chunk's spikes."""
        return np.repeat(values[self.s0 : self.s1], self.counts())


#: what a chunk function returns: (keep mask or None for all, step, channel, offset)
ChunkResult = tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]


class SpikeWriter:
    """Appends filtered chunks into buffers allocated once, then shrinks them in place."""

    def __init__(
        self, capacity: int, step_dtype: np.dtype, channel_dtype: np.dtype, offsets: bool
    ) -> None:
        self.step = np.empty(capacity, dtype=step_dtype)
        self.channel = np.empty(capacity, dtype=channel_dtype)
        self.offset = np.empty(capacity, dtype=np.float32) if offsets else None
        self.size = 0

    def append(
        self,
        keep: np.ndarray | None,
        step: np.ndarray,
        channel: np.ndarray,
        offset: np.ndarray | None,
    ) -> int:
        w = self.size
        n = step.size if keep is None else int(np.count_nonzero(keep))
        if keep is None:
            self.step[w : w + n] = step
            self.channel[w : w + n] = channel
            if self.offset is not None:
                self.offset[w : w + n] = offset
        else:
            np.compress(keep, step.astype(self.step.dtype, copy=False), out=self.step[w : w + n])
            np.compress(
                keep, channel.astype(self.channel.dtype, copy=False), out=self.channel[w : w + n]
            )
            if self.offset is not None:
                np.compress(keep, offset, out=self.offset[w : w + n])
        self.size = w + n
        return n

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        # shrink in place (realloc), no copy; no views of the buffers exist at this point
        for arr in (self.step, self.channel, self.offset):
            if arr is not None and arr.size != self.size:
                arr.resize(self.size, refcheck=False)
        return self.step, self.channel, self.offset


@dataclass(frozen=True, eq=False)
class SpikeData:
    """Spike trains of a dataset (or of one epoch's augmented copy of it).

    Build with :meth:`from_arrays` (validates every spike) or :meth:`from_spike_times`; the plain
    initialiser only checks shapes and pointers (O(N)), so that internal vectorised operations
    on already-valid data do not pay for a full scan each time.
    """

    step: np.ndarray  #: (E,) signed int, time step of each spike, in ``0..n_steps-1``
    channel: np.ndarray  #: (E,) signed int, input channel, in ``0..n_channels-1``
    pointers: np.ndarray  #: (N+1,) int64, spikes of sample i are ``[pointers[i], pointers[i+1])``
    labels: np.ndarray  #: (N,) int64 class labels
    n_steps: int  #: trial length in steps
    n_channels: int  #: number of input channels
    dt: float  #: step length in ms
    offset: np.ndarray | None = None  #: (E,) float32 position inside the step, in [0, 1)
    speakers: np.ndarray | None = None  #: (N,) int64 speaker / subject id (-1: unknown)
    class_names: tuple[str, ...] | None = None  #: names of the classes, by label

    def __post_init__(self) -> None:
        if int(self.n_steps) <= 0 or int(self.n_channels) <= 0:
            raise ValueError(
                f"n_steps/n_channels: must be positive, got {self.n_steps}/{self.n_channels}"
            )
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt: must be a positive number of ms, got {self.dt!r}")
        for name in ("step", "channel", "pointers", "labels"):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.ndim != 1:
                raise ValueError(f"{name}: expected a 1-D numpy array")
            if not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
        e = self.step.size
        if self.channel.size != e:
            raise ValueError(f"channel: has {self.channel.size} entries but step has {e}")
        if self.offset is not None and self.offset.shape != (e,):
            raise ValueError(f"offset: expected shape ({e},), got {self.offset.shape}")
        p = self.pointers
        if p.size != self.labels.size + 1:
            raise ValueError(
                f"pointers: expected {self.labels.size + 1} entries (samples + 1), got {p.size}"
            )
        if p[0] != 0 or p[-1] != e or (p.size > 1 and np.any(np.diff(p) < 0)):
            raise ValueError("pointers: must rise from 0 to the number of spikes")
        if self.speakers is not None and self.speakers.shape != self.labels.shape:
            raise ValueError(
                f"speakers: expected {self.labels.size} entries, got {self.speakers.size}"
            )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        step: np.ndarray,
        channel: np.ndarray,
        pointers: np.ndarray,
        labels: np.ndarray,
        *,
        n_steps: int,
        n_channels: int,
        dt: float,
        offset: np.ndarray | None = None,
        speakers: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
    ) -> SpikeData:
        """Validated construction from flat arrays (every spike's range is checked)."""
        step = np.asarray(step)
        channel = np.asarray(channel)
        for name, arr, bound in (("step", step, n_steps), ("channel", channel, n_channels)):
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
            if arr.size and (arr.min() < 0 or arr.max() >= bound):
                bad = int(np.flatnonzero((arr < 0) | (arr >= bound))[0])
                raise ValueError(
                    f"{name}: value {int(arr[bad])} at spike {bad} is outside 0..{bound - 1}"
                )
        if offset is not None:
            offset = np.asarray(offset, dtype=np.float32)
            if offset.size and (
                not np.all(np.isfinite(offset)) or offset.min() < 0 or offset.max() >= 1
            ):
                raise ValueError("offset: values must be finite and lie in [0, 1)")
        labels = np.asarray(labels).astype(np.int64, copy=False)
        if labels.size and labels.min() < 0:
            raise ValueError(f"labels: negative label {int(labels.min())}")
        return cls(
            step=step.astype(index_dtype(n_steps), copy=False),
            channel=channel.astype(index_dtype(n_channels), copy=False),
            pointers=np.asarray(pointers).astype(np.int64, copy=False),
            labels=labels,
            n_steps=int(n_steps),
            n_channels=int(n_channels),
            dt=float(dt),
            offset=offset,
            speakers=None if speakers is None else np.asarray(speakers).astype(np.int64),
            class_names=None if class_names is None else tuple(str(c) for c in class_names),
        )

    @classmethod
    def from_spike_times(
        cls,
        times_ms: Sequence[np.ndarray],
        channels: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray,
        *,
        n_steps: int,
        n_channels: int,
        dt: float,
        keep_offsets: bool = True,
        speakers: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
    ) -> SpikeData:
        """Build from per-sample spike times (ms) and channels, without binning conventions.

        Every spike is kept (no crop, no de-duplication): a time outside ``[0, n_steps*dt)`` is an
        error. Use :func:`eventprop.data.preprocess.bin_spikes` for the SHD recipe instead.
        """
        if not (len(times_ms) == len(channels) == len(labels)):
            raise ValueError(
                f"times/channels/labels: got {len(times_ms)}/{len(channels)}/{len(labels)} samples"
            )
        counts = np.array([np.size(t) for t in times_ms], dtype=np.int64)
        for i, (t, c) in enumerate(zip(times_ms, channels, strict=True)):
            if np.size(t) != np.size(c):
                raise ValueError(
                    f"times[{i}]/channels[{i}]: {np.size(t)} times, {np.size(c)} units"
                )
        pointers = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=pointers[1:])
        t = (
            np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in times_ms])
            if counts.size
            else np.zeros(0)
        )
        c = (
            np.concatenate([np.asarray(x).ravel() for x in channels])
            if counts.size
            else np.zeros(0, dtype=np.int64)
        )
        if t.size and (not np.all(np.isfinite(t)) or t.min() < 0 or t.max() >= n_steps * dt):
            bad = int(np.flatnonzero(~np.isfinite(t) | (t < 0) | (t >= n_steps * dt))[0])
            sample = int(np.searchsorted(pointers, bad, side="right") - 1)
            raise ValueError(
                f"times[{sample}]: spike time {t[bad]} ms is not in [0, {n_steps * dt}) ms"
            )
        step, off = split_steps(t / dt)
        step = np.minimum(step, n_steps - 1)
        if not keep_offsets:
            off = None
        return cls.from_arrays(
            step,
            c.astype(np.int64) if c.size else np.zeros(0, np.int64),
            pointers,
            np.asarray(labels),
            n_steps=n_steps,
            n_channels=n_channels,
            dt=dt,
            offset=off,
            speakers=speakers,
            class_names=class_names,
        )

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.labels.size)

    @property
    def n_spikes(self) -> int:
        return int(self.step.size)

    @property
    def duration(self) -> float:
        """Trial length in ms."""
        return self.n_steps * self.dt

    def counts(self) -> np.ndarray:
        """Number of spikes of each sample (int64)."""
        return np.diff(self.pointers)

    def spikes(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Views ``(step, channel, offset)`` of sample ``i``'s spikes."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample index {i} outside 0..{n - 1}")
        i %= n
        lo, hi = int(self.pointers[i]), int(self.pointers[i + 1])
        off = None if self.offset is None else self.offset[lo:hi]
        return self.step[lo:hi], self.channel[lo:hi], off

    def times_ms(self) -> np.ndarray:
        """Spike times in ms (float64): ``(step + offset) * dt``."""
        t = self.step.astype(np.float64)
        if self.offset is not None:
            t += self.offset
        return t * self.dt

    def sample_ids(self) -> np.ndarray:
        """Sample index of every spike (int32 when it fits)."""
        dtype = np.int32 if len(self) < np.iinfo(np.int32).max else np.int64
        return np.repeat(np.arange(len(self), dtype=dtype), self.counts())

    # ------------------------------------------------------------------ derived data
    def with_events(
        self,
        step: np.ndarray,
        channel: np.ndarray,
        pointers: np.ndarray,
        offset: np.ndarray | None,
        **changes: object,
    ) -> SpikeData:
        """The same samples with new events (and optionally other fields changed)."""
        n_steps = int(changes.get("n_steps", self.n_steps))  # type: ignore[call-overload]
        n_channels = int(changes.get("n_channels", self.n_channels))  # type: ignore[call-overload]
        return replace(
            self,
            step=step.astype(index_dtype(n_steps), copy=False),
            channel=channel.astype(index_dtype(n_channels), copy=False),
            pointers=pointers,
            offset=offset,
            **changes,
        )

    def chunks(self, max_spikes: int | None = None) -> Iterator[Chunk]:
        """The dataset as consecutive runs of whole samples of about ``max_spikes`` spikes."""
        p = self.pointers
        for run in iter_segment_chunks(p, np.arange(len(self), dtype=np.int64), max_spikes):
            s0, s1 = int(run[0]), int(run[-1]) + 1
            lo, hi = int(p[s0]), int(p[s1])
            yield Chunk(
                s0=s0,
                s1=s1,
                lo=lo,
                hi=hi,
                step=self.step[lo:hi],
                channel=self.channel[lo:hi],
                offset=None if self.offset is None else self.offset[lo:hi],
                pointers=p[s0 : s1 + 1] - lo,
            )

    def map_chunks(
        self,
        fn: Callable[[Chunk], ChunkResult],
        *,
        n_steps: int | None = None,
        n_channels: int | None = None,
        max_spikes: int | None = None,
    ) -> SpikeData:
        """Transform and filter spikes chunk by chunk (never adds spikes).

        ``fn(chunk)`` returns ``(keep, step, channel, offset)`` for the chunk's spikes: new
        values (or the chunk's own views) and a mask of the spikes to keep (``None``: all). It
        is called on the chunks in order, so random draws inside it are reproducible. New
        values must lie in range where kept.
        """
        n_steps = self.n_steps if n_steps is None else int(n_steps)
        n_channels = self.n_channels if n_channels is None else int(n_channels)
        writer = SpikeWriter(
            self.n_spikes, index_dtype(n_steps), index_dtype(n_channels), self.offset is not None
        )
        kept = np.zeros(len(self), dtype=np.int64)
        for chunk in self.chunks(max_spikes):
            keep, step, channel, offset = fn(chunk)
            writer.append(keep, step, channel, offset)
            kept[chunk.s0 : chunk.s1] = (
                chunk.counts() if keep is None else segment_sum(keep, chunk.pointers)
            )
        pointers = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(kept, out=pointers[1:])
        step, channel, offset = writer.finish()
        return replace(
            self,
            step=step,
            channel=channel,
            pointers=pointers,
            offset=offset,
            n_steps=n_steps,
            n_channels=n_channels,
        )

    def filter_spikes(
        self,
        keep: np.ndarray,
        step: np.ndarray | None = None,
        channel: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ) -> SpikeData:
        """Keep the spikes where ``keep`` is true (optionally with replaced values)."""
        step = self.step if step is None else step
        channel = self.channel if channel is None else channel
        offset = self.offset if offset is None else offset
        if keep.shape != (self.n_spikes,):
            raise ValueError(f"keep: expected shape ({self.n_spikes},), got {keep.shape}")

        def fn(c: Chunk) -> ChunkResult:
            sl = slice(c.lo, c.hi)
            return keep[sl], step[sl], channel[sl], None if offset is None else offset[sl]

        return self.map_chunks(fn)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SpikeData:
        """A new dataset made of the given samples, in the given order (repeats allowed)."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset: indices must lie in 0..{len(self) - 1}")
        idx = np.where(idx < 0, idx + len(self), idx)
        counts = self.pointers[idx + 1] - self.pointers[idx]
        pointers = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(counts, out=pointers[1:])
        total = int(pointers[-1])
        step = np.empty(total, dtype=self.step.dtype)
        channel = np.empty(total, dtype=self.channel.dtype)
        offset = None if self.offset is None else np.empty(total, dtype=self.offset.dtype)
        done = 0
        for chunk_pos in iter_segment_chunks(self.pointers, idx):
            pos, _ = gather_segments(self.pointers, chunk_pos)
            step[done : done + pos.size] = self.step[pos]
            channel[done : done + pos.size] = self.channel[pos]
            if offset is not None:
                offset[done : done + pos.size] = self.offset[pos]
            done += pos.size
        return replace(
            self,
            step=step,
            channel=channel,
            pointers=pointers,
            offset=offset,
            labels=self.labels[idx],
            speakers=None if self.speakers is None else self.speakers[idx],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[SpikeData]) -> SpikeData:
        """Samples of all ``parts`` in order; they must share n_steps, n_channels and dt."""
        if not parts:
            raise ValueError("concatenate: needs at least one SpikeData")
        first = parts[0]
        for k, p in enumerate(parts[1:], start=1):
            if (p.n_steps, p.n_channels, p.dt) != (first.n_steps, first.n_channels, first.dt):
                raise ValueError(
                    f"concatenate: part {k} has (n_steps, n_channels, dt) = "
                    f"{(p.n_steps, p.n_channels, p.dt)}, part 0 has "
                    f"{(first.n_steps, first.n_channels, first.dt)}"
                )
            if (p.offset is None) != (first.offset is None):
                raise ValueError(f"concatenate: part {k} and part 0 disagree on having offsets")
        counts = np.concatenate([p.counts() for p in parts])
        pointers = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=pointers[1:])
        has_speakers = any(p.speakers is not None for p in parts)
        speakers = None
        if has_speakers:
            speakers = np.concatenate(
                [
                    p.speakers if p.speakers is not None else np.full(len(p), -1, np.int64)
                    for p in parts
                ]
            )
        return replace(
            first,
            step=np.concatenate([p.step for p in parts]).astype(first.step.dtype, copy=False),
            channel=np.concatenate([p.channel for p in parts]).astype(
                first.channel.dtype, copy=False
            ),
            pointers=pointers,
            offset=None if first.offset is None else np.concatenate([p.offset for p in parts]),  # type: ignore[misc]
            labels=np.concatenate([p.labels for p in parts]),
            speakers=speakers,
        )

    def to_event_batch(self, indices: Sequence[int] | np.ndarray | None = None) -> EventBatch:
        """An :class:`~eventprop.events.EventBatch` of the given samples (default: all)."""
        from eventprop.data.collate import event_batch_from_data

        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        return event_batch_from_data(self, idx)
