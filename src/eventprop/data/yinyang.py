"""The Yin-Yang dataset (Kriener, Göltz & Petrovici 2022), latency-encoded as in EventProp.

Points are drawn in the unit square by the reference generator's rejection sampler
(github.com/lkriener/yin_yang_data_set): for each sample a goal class is drawn uniformly from
{0, 1, 2}, then points ``(x, y) = 2 * r_big * U[0,1)^2`` are drawn until one lies inside the big
circle and belongs to the goal class. The same legacy numpy stream (``RandomState(seed)``,
``randint(3)`` then ``rand(2)`` per attempt) is used, so a given (size, seed) reproduces the
reference samples exactly; the reference sets are train 5000/seed 42, validation 1000/seed 41,
test 1000/seed 40. Class 2 is the two dots; class 1 is the region the reference's ``is_yin``
criterion selects, class 0 the rest (the reference names the classes yin, yang, dot).

Encoding (Wunderlich & Pehle 2021): each point becomes the four values (x, 1-x, y, 1-y), each
emitted as one spike at ``t_min + value * (t_max - t_min)`` on its own channel, plus a bias
spike at ``t_bias`` on a fifth channel. Defaults follow the trial of their Yin-Yang experiment
as re-implemented by the paper's authors in GeNN/mlGeNN: latencies spread over 0..30 ms, bias at
0 ms. All three times are parameters.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from eventprop.data.spikes import SpikeData, split_steps

__all__ = [
    "REFERENCE_SPLITS",
    "YIN_YANG_CLASSES",
    "yin_yang",
    "yin_yang_class",
    "yin_yang_points",
    "yin_yang_splits",
]

#: class names, by label (the reference's order)
YIN_YANG_CLASSES = ("yin", "yang", "dot")
#: (size, seed) of the reference train / validation / test sets
REFERENCE_SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


def yin_yang_class(x: float, y: float, r_small: float = 0.1, r_big: float = 0.5) -> int:
    """Class of a point inside the big circle, by the reference's geometry."""
    # same expression as the reference (not hypot), so boundary points classify identically
    d_right = math.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = math.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yin = (
        d_right <= r_small
        or (r_small < d_left <= 0.5 * r_big)
        or (y > r_big and d_right > 0.5 * r_big)
    )
    return int(is_yin)


@lru_cache(maxsize=16)
def _points(size: int, seed: int, r_small: float, r_big: float) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(seed)
    xy = np.empty((size, 2), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = int(rs.randint(3))
        while True:
            x, y = rs.rand(2) * 2.0 * r_big
            if math.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            if yin_yang_class(x, y, r_small, r_big) == goal:
                break
        xy[i] = (x, y)
        labels[i] = goal
    xy.setflags(write=False)
    labels.setflags(write=False)
    return xy, labels


def yin_yang_points(
    size: int = 5000, seed: int = 42, *, r_small: float = 0.1, r_big: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(size, 2)`` as ``[x, y]`` and labels, exactly as the reference generator draws them.

    The loop is the reference's sequential rejection sampler (its random stream interleaves the
    class draw and the point draws, so it cannot be vectorised without changing the samples);
    about 0.1 s for 5000 points, and results are memoised.
    """
    if size < 0:
        raise ValueError(f"size: must be >= 0, got {size}")
    if not (0 < r_small < r_big):
        raise ValueError(f"r_small/r_big: need 0 < r_small < r_big, got {r_small}, {r_big}")
    return _points(int(size), int(seed), float(r_small), float(r_big))


def yin_yang(
    size: int = 5000,
    seed: int = 42,
    *,
    t_min: float = 0.0,
    t_max: float = 30.0,
    t_bias: float = 0.0,
    bias: bool = True,
    dt: float = 0.1,
    duration_ms: float | None = None,
    r_small: float = 0.1,
    r_big: float = 0.5,
) -> SpikeData:
    """Latency-encoded Yin-Yang set: 4 (+1 bias) channels, one spike each, exact times kept.

    Channels are ordered x, 1-x, y, 1-y, bias. ``duration_ms`` defaults to the latest possible
    spike plus one step, so that every spike lies inside the trial.
    """
    if not (0 <= t_min <= t_max) or t_bias < 0:
        raise ValueError(
            f"t_min/t_max/t_bias: need 0 <= t_min <= t_max and t_bias >= 0, got "
            f"{t_min}/{t_max}/{t_bias}"
        )
    xy, labels = yin_yang_points(size, seed, r_small=r_small, r_big=r_big)
    x, y = xy[:, 0], xy[:, 1]
    values = np.stack([x, 1.0 - x, y, 1.0 - y], axis=1)
    times = t_min + values * (t_max - t_min)
    if bias:
        times = np.concatenate([times, np.full((len(labels), 1), float(t_bias))], axis=1)
    n_channels = times.shape[1]
    latest = max(t_max, t_bias if bias else 0.0)
    if duration_ms is None:
        duration_ms = latest + dt
    n_steps = math.ceil(duration_ms / dt - 1e-9)
    if times.size and times.max() >= n_steps * dt:
        raise ValueError(
            f"duration_ms: {duration_ms} ms does not contain the latest spike at {times.max()} ms"
        )
    step, offset = split_steps(times.ravel() / dt)
    channel = np.tile(np.arange(n_channels, dtype=np.int64), len(labels))
    pointers = np.arange(len(labels) + 1, dtype=np.int64) * n_channels
    return SpikeData.from_arrays(
        step,
        channel,
        pointers,
        np.array(labels),
        n_steps=n_steps,
        n_channels=n_channels,
        dt=dt,
        offset=offset,
        class_names=YIN_YANG_CLASSES,
    )


def yin_yang_splits(**encoding: float | bool | None) -> dict[str, SpikeData]:
    """The reference train / validation / test sets, encoded with the given parameters."""
    return {
        name: yin_yang(size, seed, **encoding)  # type: ignore[arg-type]
        for name, (size, seed) in REFERENCE_SPLITS.items()
    }
