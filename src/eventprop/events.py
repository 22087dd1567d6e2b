"""The engine's input format: a mini-batch of spike events.

A spike is a record ``(sample, step, channel, offset)``: it belongs to trial ``sample`` of the
batch, arrives during time step ``step`` (the interval ``[step*dt, (step+1)*dt)``) on input
channel ``channel``, at the exact time ``(step + offset) * dt`` with ``0 <= offset < 1``.

The grid mode of the engine delivers every spike at the start of its step (``offset`` is
ignored); the offset is carried so that an engine mode that resolves time inside a step can use
the real spike times without a change of format.

Events are kept sorted by ``(sample, step, offset)`` in flat arrays, so that the spikes of one
step of one sample are a contiguous slice (``step_pointers``). Memory is a few bytes per spike,
never ``batch x time x channels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["EventBatch"]


def _as_numpy(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds of errors
        raise TypeError(f"{name}: cannot be converted to an array ({exc})") from exc


@dataclass(frozen=True, eq=False)
class EventBatch:
    """Spike events of a mini-batch, sorted by (sample, step, offset).

    Use the constructors :meth:`from_dense`, :meth:`from_spike_times` or :meth:`from_arrays`
    rather than the dataclass initialiser; they validate and sort.
    """

    sample: torch.Tensor  #: int32 (E,) trial index in the batch
    step: torch.Tensor  #: int32 (E,) time step of arrival
    channel: torch.Tensor  #: int32 (E,) input channel
    offset: torch.Tensor  #: float64 (E,) position inside the step, in [0, 1)
    batch_size: int
    n_steps: int
    n_channels: int
    dt: float  #: step length in ms
    _pointers: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        sample: object,
        step: object,
        channel: object,
        *,
        batch_size: int,
        n_steps: int,
        n_channels: int,
        dt: float = 1.0,
        offset: object | None = None,
    ) -> EventBatch:
        """Build a batch from flat per-spike arrays (any order); validates every field."""
        _check_positive_int(batch_size, "batch_size")
        _check_positive_int(n_steps, "n_steps")
        _check_positive_int(n_channels, "n_channels")
        if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: must be a positive finite number of ms, got {dt!r}")
        arrays = {
            "sample": _as_numpy(sample, "sample"),
            "step": _as_numpy(step, "step"),
            "channel": _as_numpy(channel, "channel"),
        }
        n = None
        for name, arr in arrays.items():
            if arr.ndim != 1:
                raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
                    raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
            if n is None:
                n = arr.size
            elif arr.size != n:
                raise ValueError(
                    f"{name}: has {arr.size} entries but 'sample' has {n}; all event arrays "
                    "must have the same length"
                )
        if offset is None:
            off = np.zeros(n, dtype=np.float64)
        else:
            off = _as_numpy(offset, "offset").astype(np.float64, copy=False)
            if off.shape != (n,):
                raise ValueError(f"offset: expected shape ({n},), got {off.shape}")
            if not np.all(np.isfinite(off)):
                raise ValueError("offset: contains non-finite values")
            if off.size and (off.min() < 0.0 or off.max() >= 1.0):
                raise ValueError("offset: values must lie in [0, 1)")
        s = arrays["sample"].astype(np.int64, copy=False)
        t = arrays["step"].astype(np.int64, copy=False)
        c = arrays["channel"].astype(np.int64, copy=False)
        _check_range(s, 0, batch_size, "sample", "batch_size")
        _check_range(t, 0, n_steps, "step", "n_steps")
        _check_range(c, 0, n_channels, "channel", "n_channels")
        order = np.lexsort((off, t, s))
        return cls(
            sample=torch.from_numpy(np.ascontiguousarray(s[order], dtype=np.int32)),
            step=torch.from_numpy(np.ascontiguousarray(t[order], dtype=np.int32)),
            channel=torch.from_numpy(np.ascontiguousarray(c[order], dtype=np.int32)),
            offset=torch.from_numpy(np.ascontiguousarray(off[order])),
            batch_size=int(batch_size),
            n_steps=int(n_steps),
            n_channels=int(n_channels),
            dt=float(dt),
        )

    @classmethod
    def from_dense(cls, spikes: torch.Tensor | np.ndarray, dt: float = 1.0) -> EventBatch:
        """Build a batch from a dense ``(batch, time, channel)`` tensor of spike counts.

        Entries are non-negative integers (0/1 or counts); an entry ``k`` becomes ``k`` spikes.
        """
        x = _as_numpy(spikes, "spikes")
        if x.ndim != 3:
            raise ValueError(f"spikes: expected shape (batch, time, channel), got {x.shape}")
        if x.dtype == np.bool_:
            x = x.astype(np.int64)
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise TypeError(f"spikes: expected a numeric tensor, got dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.floating):
            if not np.all(np.isfinite(x)):
                raise ValueError("spikes: contains non-finite values")
            if not np.all(x == np.round(x)):
                raise ValueError("spikes: entries must be whole spike counts")
        if x.size and x.min() < 0:
            raise ValueError("spikes: spike counts must be non-negative")
        counts = x.astype(np.int64)
        b, t, c = np.nonzero(counts)
        reps = counts[b, t, c]
        return cls.from_arrays(
            np.repeat(b, reps),
            np.repeat(t, reps),
            np.repeat(c, reps),
            batch_size=x.shape[0],
            n_steps=x.shape[1],
            n_channels=x.shape[2],
            dt=dt,
        )

    @classmethod
    def from_spike_times(
        cls,
        times: Sequence[object],
        units: Sequence[object],
        *,
        n_steps: int,
        n_channels: int,
        dt: float = 1.0,
    ) -> EventBatch:
        """Build a batch from per-sample spike times (ms) and channel indices.

        ``times[b]`` and ``units[b]`` are the spikes of sample ``b``. Times must be finite, ``>= 0``
        and ``< n_steps * dt``; a spike at time ``t`` falls into step ``floor(t / dt)`` (a time
        within 1e-9 steps below a boundary counts as on it) and keeps its position inside the
        step as ``offset``.
        """
        if len(times) != len(units):
            raise ValueError(
                f"times/units: got {len(times)} samples of times but {len(units)} of units"
            )
        if len(times) == 0:
            raise ValueError("times: a batch needs at least one sample")
        t_end = n_steps * dt
        all_s, all_t, all_c = [], [], []
        for b, (tb, ub) in enumerate(zip(times, units, strict=True)):
            ta = _as_numpy(tb, f"times[{b}]").astype(np.float64).ravel()
            ua = _as_numpy(ub, f"units[{b}]").ravel()
            if ta.shape != ua.shape:
                raise ValueError(
                    f"times[{b}]/units[{b}]: {ta.size} times but {ua.size} units in sample {b}"
                )
            if not np.all(np.isfinite(ta)):
                raise ValueError(f"times[{b}]: contains non-finite spike times")
            if ta.size and ta.min() < 0:
                raise ValueError(f"times[{b}]: negative spike time {ta.min()} ms")
            if ta.size and ta.max() >= t_end:
                raise ValueError(
                    f"times[{b}]: spike time {ta.max()} ms is beyond the trial "
                    f"(n_steps * dt = {t_end} ms)"
                )
            all_s.append(np.full(ta.size, b, dtype=np.int64))
            all_t.append(ta)
            all_c.append(ua)
        t_all = np.concatenate(all_t) / dt
        # a time within 1e-9 steps below a step boundary is taken to be on it, so that times
        # written as k*dt in floating point land in step k rather than k-1
        step = np.minimum(np.floor(t_all + 1e-9).astype(np.int64), n_steps - 1)
        off = np.clip(t_all - step, 0.0, np.nextafter(1.0, 0.0))
        return cls.from_arrays(
            np.concatenate(all_s),
            step,
            np.concatenate(all_c),
            batch_size=len(times),
            n_steps=n_steps,
            n_channels=n_channels,
            dt=dt,
            offset=off,
        )

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.sample.numel())

    @property
    def duration(self) -> float:
        """Trial length in ms."""
        return self.n_steps * self.dt

    @property
    def device(self) -> torch.device:
        return self.sample.device

    def times(self) -> torch.Tensor:
        """Exact spike times in ms (float64)."""
        return (self.step.to(torch.float64) + self.offset) * self.dt

    def step_pointers(self) -> torch.Tensor:
        """CSR pointers: events of (sample b, step n) are ``[p[b*T+n], p[b*T+n+1])``.

        int64 tensor of length ``batch_size * n_steps + 1``, on the batch's device; cached.
        """
        key = str(self.sample.device)
        if key not in self._pointers:
            flat = self.sample.to(torch.int64) * self.n_steps + self.step.to(torch.int64)
            bounds = torch.arange(
                self.batch_size * self.n_steps + 1, device=self.sample.device, dtype=torch.int64
            )
            self._pointers[key] = torch.searchsorted(flat, bounds)
        return self._pointers[key]

    def counts_per_sample(self) -> torch.Tensor:
        """Number of input spikes in each sample (int64, ``(batch_size,)``)."""
        return torch.bincount(self.sample.to(torch.int64), minlength=self.batch_size)

    def to_dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Dense ``(batch, time, channel)`` spike counts; for small batches and tests only."""
        out = torch.zeros(
            self.batch_size, self.n_steps, self.n_channels, dtype=dtype, device=self.device
        )
        idx = (self.sample.long(), self.step.long(), self.channel.long())
        out.index_put_(idx, torch.ones(len(self), dtype=dtype, device=self.device), accumulate=True)
        return out

    def to(self, device: torch.device | str) -> EventBatch:
        """The same events on another device."""
        return EventBatch(
            sample=self.sample.to(device),
            step=self.step.to(device),
            channel=self.channel.to(device),
            offset=self.offset.to(device),
            batch_size=self.batch_size,
            n_steps=self.n_steps,
            n_channels=self.n_channels,
            dt=self.dt,
        )

    def select(self, samples: Sequence[int]) -> EventBatch:
        """A new batch made of the given samples, in the given order."""
        idx = [int(s) for s in samples]
        parts_s, parts_t, parts_c, parts_o = [], [], [], []
        sample_np = self.sample.cpu().numpy()
        for new, old in enumerate(idx):
            if not 0 <= old < self.batch_size:
                raise IndexError(f"samples: index {old} outside 0..{self.batch_size - 1}")
            lo, hi = np.searchsorted(sample_np, [old, old + 1])
            parts_s.append(np.full(hi - lo, new, dtype=np.int64))
            parts_t.append(self.step[lo:hi].cpu().numpy())
            parts_c.append(self.channel[lo:hi].cpu().numpy())
            parts_o.append(self.offset[lo:hi].cpu().numpy())
        return EventBatch.from_arrays(
            np.concatenate(parts_s),
            np.concatenate(parts_t),
            np.concatenate(parts_c),
            batch_size=len(idx),
            n_steps=self.n_steps,
            n_channels=self.n_channels,
            dt=self.dt,
            offset=np.concatenate(parts_o),
        ).to(self.device)


def _check_positive_int(value: object, name: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")


def _check_range(arr: np.ndarray, lo: int, hi: int, name: str, bound: str) -> None:
    if arr.size == 0:
        return
    bad = (arr < lo) | (arr >= hi)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name}: value {int(arr[first])} at event {first} is outside 0..{hi - 1} "
            f"({bound} = {hi})"
        )
