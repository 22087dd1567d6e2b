"""Time the data pipeline on one epoch of SHD-sized data.

SHD's training set has 8156 samples of a few thousand spikes each (700 channels, 1000 steps of
1 ms after binning). This script builds a set of that size -- random spikes (default
8000 per sample, the upper end of SHD's load) or, with ``--from-file``, the real samples of an
SHD-format file repeated to 8156 samples -- and times, per epoch:

* loading the preprocessed set from the on-disk cache,
* each augmentation alone, and the paper's recipe (blend doubling the set, then shift 40),
* batching the epoch into ``EventBatch`` mini-batches of 32 (plain, and with the 10 x 30 ms delay
  line), through :func:`iter_batches` and through a torch ``DataLoader``.

Usage: ``python benchmarks/bench_data.py [--samples 8156] [--spikes 8000] [--from-file F.h5]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from eventprop.data.augment import (
    Blend,
    ChannelJitter,
    ChannelShift,
    SpikeDropout,
    TimeDilation,
    augment_epoch,
)
from eventprop.data.cache import load_spike_data, save_spike_data
from eventprop.data.collate import iter_batches
from eventprop.data.datasets import SpikeDataset
from eventprop.data.delay import DelayLine
from eventprop.data.preprocess import BinningConfig, load_preprocessed
from eventprop.data.spikes import SpikeData


def synthetic(n: int, spikes: int, seed: int = 0) -> SpikeData:
    """SHD-shaped random data: per-sample counts around ``spikes``, sorted by step."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(spikes // 2, spikes * 3 // 2 + 1, size=n)
    pointers = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=pointers[1:])
    total = int(pointers[-1])
    step = rng.integers(0, 1000, size=total).astype(np.int16)
    channel = rng.integers(0, 700, size=total).astype(np.int16)
    return SpikeData(
        step=step,
        channel=channel,
        pointers=pointers,
        labels=rng.integers(0, 20, size=n),
        n_steps=1000,
        n_channels=700,
        dt=1.0,
        speakers=rng.integers(0, 10, size=n),
    )


def timed(label: str, fn, repeat: int = 1):
    """Run ``fn`` ``repeat`` times; print the best wall-clock and CPU time (the CPU time is the
    fairer number on a shared machine: numpy runs these passes on one thread)."""
    best_wall = best_cpu = float("inf")
    out = None
    for _ in range(repeat):
        out = None
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    print(f"{label:<58s} {best_wall:7.3f} s wall {best_cpu:7.3f} s cpu")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=8156)
    ap.add_argument("--spikes", type=int, default=8000, help="mean spikes per sample (synthetic)")
    ap.add_argument("--from-file", type=Path, default=None, help="SHD-format file to repeat")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    if args.from_file is not None:
        with tempfile.TemporaryDirectory() as tmp:
            base = load_preprocessed(args.from_file, BinningConfig(), cache_dir=tmp)
        reps = np.arange(args.samples) % len(base)
        data = base.subset(reps)
        source = f"{args.from_file.name} repeated"
    else:
        data = synthetic(args.samples, args.spikes)
        source = "synthetic"
    print(
        f"data: {source}, {len(data)} samples, {data.n_spikes / 1e6:.1f} M spikes "
        f"({data.n_spikes / len(data):.0f} per sample), {data.n_channels} channels, "
        f"{data.n_steps} steps"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.npz"
        params = {"bench": 1}
        timed("write cache entry (atomic .npz)", lambda: save_spike_data(path, data, params))
        loaded = timed("load cache entry", lambda: load_spike_data(path, params), repeat=3)
        assert loaded is not None and loaded.n_spikes == data.n_spikes

    rng = np.random.default_rng(0)
    for name, aug in (
        ("shift (max 40)", ChannelShift(40)),
        ("blend (set doubled, p = 0.5/0.5)", Blend(fraction=1.0)),
        ("time dilation (0.9 .. 1.1)", TimeDilation()),
        ("channel jitter (sigma 5)", ChannelJitter(5.0)),
        ("spike dropout (p 0.1)", SpikeDropout(0.1)),
    ):
        timed(f"augment: {name}", lambda aug=aug: aug(data, rng))

    recipe = [{"name": "blend", "fraction": 1.0}, {"name": "shift", "max_shift": 40}]
    epoch = timed(
        "augment: paper recipe (blend x2 + shift 40)",
        lambda: augment_epoch(data, recipe, seed=1, epoch=0),
    )
    bs = args.batch_size
    n_batches = timed(
        f"batch the augmented epoch ({len(epoch)} samples, batch {bs})",
        lambda: sum(1 for _ in iter_batches(epoch, bs, seed=1)),
    )
    delay = DelayLine(10, 30.0)
    timed(
        "batch the augmented epoch with delay line 10 x 30 ms",
        lambda: sum(1 for _ in iter_batches(epoch, bs, seed=1, delay=delay)),
    )

    def full_epoch() -> int:
        e = augment_epoch(data, recipe, seed=1, epoch=1)
        return sum(1 for _ in iter_batches(e, bs, seed=1, epoch=1))

    timed("TOTAL augment + batch one epoch (iter_batches)", full_epoch)

    ds = SpikeDataset(data, augment=recipe, seed=1)

    def loader_epoch() -> int:
        ds.set_epoch(1)
        loader = DataLoader(ds, batch_size=bs, shuffle=True, collate_fn=ds.collate_fn)
        return sum(1 for _ in loader)

    timed("TOTAL augment + batch one epoch (DataLoader, 0 workers)", loader_epoch)
    print(f"batches per epoch: {n_batches}")


if __name__ == "__main__":
    main()
