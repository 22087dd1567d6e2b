"""Interoperability with tonic's event layout, without depending on tonic.

tonic (the neuromorphic dataset library) hands out each sample as a numpy structured array with
fields ``t`` (time in MICROseconds), ``x`` (channel / column), optionally ``y`` (row of a 2-D
sensor) and ``p`` (polarity); its SHD loader sets ``p = 1`` for every spike. Converting that
layout here lets users train on any dataset they already load with tonic; nothing imports tonic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eventprop.data.preprocess import BinningConfig, bin_spikes
from eventprop.data.spikes import SpikeData

__all__ = [
    "TONIC_DTYPE",
    "from_tonic",
    "spike_data_from_tonic",
    "to_tonic",
]

#: the layout tonic's SHD/SSC loaders produce (txp ordering)
TONIC_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])


def _channels(
    events: np.ndarray, sensor_size: Sequence[int] | None, split_polarity: bool
) -> np.ndarray:
    names = events.dtype.names or ()
    x = events["x"].astype(np.int64)
    if "y" in names:
        if sensor_size is None:
            raise ValueError("events: have a 'y' field; pass sensor_size=(width, height, ...)")
        x = x + events["y"].astype(np.int64) * int(sensor_size[0])
    if split_polarity:
        if "p" not in names:
            raise ValueError("events: split_polarity needs a 'p' field")
        p = events["p"].astype(np.int64)
        if p.size and (p.min() < 0 or p.max() > 1):
            raise ValueError("events: field 'p' must be 0 or 1 to split polarities")
        x = x * 2 + p
    return x


def from_tonic(
    events: np.ndarray,
    *,
    sensor_size: Sequence[int] | None = None,
    split_polarity: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (ms, float64) and channels (int64) of one tonic-layout sample.

    Channel = ``x`` (+ ``y * width`` for 2-D sensors; ``* 2 + p`` with ``split_polarity``).
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError("events: expected a numpy structured array with fields 't' and 'x'")
    for name in ("t", "x"):
        if name not in events.dtype.names:
            raise ValueError(f"events: missing field {name!r} (has {events.dtype.names})")
    events = events.ravel()
    t = events["t"].astype(np.float64) / 1000.0
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
        raise ValueError("events: field 't' must be finite and >= 0 (microseconds)")
    channel = _channels(events, sensor_size, split_polarity)
    if channel.size and channel.min() < 0:
        raise ValueError("events: negative channel index in field 'x'")
    return t, channel


def to_tonic(times_ms: np.ndarray, channels: np.ndarray, polarity: int = 1) -> np.ndarray:
    """Tonic-layout structured array (``t`` in whole microseconds, rounded) of one sample."""
    times_ms = np.asarray(times_ms, dtype=np.float64)
    out = np.empty(times_ms.size, dtype=TONIC_DTYPE)
    out["t"] = np.rint(times_ms * 1000.0).astype(np.int64)
    out["x"] = np.asarray(channels, dtype=np.int64)
    out["p"] = polarity
    return out


def spike_data_from_tonic(
    samples: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    *,
    n_channels: int,
    dt: float = 1.0,
    duration_ms: float = 1000.0,
    keep_offsets: bool = False,
    sensor_size: Sequence[int] | None = None,
    split_polarity: bool = False,
    speakers: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> SpikeData:
    """Bin a list of tonic-layout samples with the same rules as SHD (crop, one spike/step).

    ``n_channels`` is the channel count after flattening (``x`` range, times 2 with
    ``split_polarity``).
    """
    if len(samples) != len(labels):
        raise ValueError(f"samples/labels: {len(samples)} samples but {len(labels)} labels")
    times, chans = [], []
    for i, ev in enumerate(samples):
        try:
            t, c = from_tonic(ev, sensor_size=sensor_size, split_polarity=split_polarity)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"samples[{i}]: {exc}") from exc
        if c.size and c.max() >= n_channels:
            raise ValueError(f"samples[{i}]: channel {int(c.max())} >= n_channels = {n_channels}")
        times.append(t)
        chans.append(c)
    counts = np.array([t.size for t in times], dtype=np.int64)
    pointers = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=pointers[1:])
    config = BinningConfig(
        dt=dt, duration_ms=duration_ms, keep_offsets=keep_offsets, n_channels_in=n_channels
    )
    return bin_spikes(
        np.concatenate(times) if times else np.zeros(0),
        np.concatenate(chans) if chans else np.zeros(0, np.int64),
        pointers,
        np.asarray(labels, dtype=np.int64),
        config,
        time_scale=1.0,
        speakers=speakers,
        class_names=None if class_names is None else tuple(class_names),
    )
