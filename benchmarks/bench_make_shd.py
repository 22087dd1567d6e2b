"""Speed of ``eventprop data make-shd``: files per second, real-time factor, where time goes.

Two measurements on Heidelberg Digits recordings (``--audio DIR``, the folder of the FLAC files):

1. **Stages**, in this process with one thread: for ``--files`` recordings (a seeded draw from
   the corpus) the CPU time of reading (FLAC decode), resampling to the model rate,
   normalisation, the membrane (forward FFT, interpolated response and aliasing, batched
   inverse FFT), the hair cells and the bushy cells. CPU time per stage (``thread_time``),
   so that other jobs on a shared machine inflate it less than wall time.
2. **Throughput**, as the builder runs: the same files through the per-file encoding cache
   with ``--workers`` processes (default every core) into a temporary folder: wall time,
   files/s and real-time factor (seconds of audio per second), including worker start-up,
   and the time the whole corpus would take at that rate.

The stage breakdown runs with the allocator settings of the builder's worker processes
(``_WORKER_MALLOC``: freed memory stays in the heap instead of being mapped afresh per file).

The machine's load average is printed with the results: on a shared machine rerun and compare.

Usage: ``python benchmarks/bench_make_shd.py --audio /path/to/hd/audio [--files 200]
[--sample-rate 24000] [--workers N] [--seed 0] [--skip-pool]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from eventprop.audio.bushy_cell import bushy_cell, channel_seeds
from eventprop.audio.cochlea import Cochlea, resample
from eventprop.audio.filterbank import basilar_membrane
from eventprop.audio.hair_cell import hair_cell
from eventprop.audio.io import read_audio
from eventprop.audio.normalize import hann_taper, rms_normalize
from eventprop.builders.encode_cache import (
    _WORKER_MALLOC,
    EncoderSettings,
    EncodingCache,
    default_workers,
    name_seed,
)

#: length of the whole Heidelberg Digits corpus (10,420 files), seconds of audio
CORPUS_FILES = 10420
CORPUS_AUDIO_S = 7513.0  # 125.2 min, 0.23-1.37 s per file

STAGES = (
    "read",
    "resample",
    "normalise",
    "membrane: forward FFT",
    "membrane: response + alias",
    "membrane: inverse FFT",
    "hair cells",
    "bushy cells",
)


def pick_files(audio: Path, n: int, seed: int) -> list[Path]:
    files = sorted(p for p in audio.iterdir() if p.suffix.lower() == ".flac")
    if not files:
        raise SystemExit(f"no .flac files in {audio}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(idx)]


def stage_times(files: list[Path], channels: int, rate: int | None, seed: int) -> dict[str, float]:
    """CPU seconds per stage, summed over ``files`` (one thread)."""
    numba.set_num_threads(1)
    cochlea = Cochlea(channels, rate)
    response = cochlea.response
    # warm-up: compile / load every kernel before timing
    x, r = read_audio(files[0])
    cochlea.encode(x, r, seed=0)
    totals = dict.fromkeys(STAGES, 0.0)
    clock = time.thread_time
    for path in files:
        t0 = clock()
        x, r = read_audio(path)
        t1 = clock()
        target = cochlea.model_rate(r)
        x = resample(x, r, target)
        t2 = clock()
        x = hann_taper(rms_normalize(x, cochlea.rms_level))
        t3 = clock()
        parts: dict[str, float] = {}
        velocity = basilar_membrane(x, target, response, workers=1, timings=parts)
        t4 = clock()
        prob = hair_cell(velocity, 0.5 * target, cochlea.hair)
        t5 = clock()
        streams = channel_seeds(name_seed(seed, path.name), channels)
        bushy_cell(prob, 0.5 * target, cochlea.bushy, streams=streams)
        t6 = clock()
        totals["read"] += t1 - t0
        totals["resample"] += t2 - t1
        totals["normalise"] += t3 - t2
        for key, value in parts.items():
            totals[f"membrane: {key}"] += value
        totals["hair cells"] += t5 - t4
        totals["bushy cells"] += t6 - t5
        del velocity, prob
    return totals


def audio_seconds(files: list[Path]) -> float:
    import soundfile

    return float(sum(soundfile.info(str(p)).duration for p in files))


def main() -> None:
    # the stage breakdown runs in this process: give it the allocator settings of the
    # builder's worker processes (they must be in place when the C library starts)
    if any(os.environ.get(k) != v for k, v in _WORKER_MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_WORKER_MALLOC})
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--audio", required=True, help="folder of the HD FLAC files")
    ap.add_argument("--files", type=int, default=200, help="recordings to encode (default 200)")
    ap.add_argument("--channels", type=int, default=700)
    ap.add_argument(
        "--sample-rate", type=int, default=24000, help="model rate in Hz (0: each file's own)"
    )
    ap.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pool", action="store_true", help="only the per-stage breakdown")
    args = ap.parse_args()
    rate = args.sample_rate or None
    files = pick_files(Path(args.audio), args.files, args.seed)
    dur = audio_seconds(files)
    print(
        f"{len(files)} recordings, {dur:.1f} s of audio, {args.channels} channels, "
        f"model rate {rate or 'native'} Hz; load average {os.getloadavg()[0]:.2f}"
    )

    totals = stage_times(files, args.channels, rate, args.seed)
    cpu = sum(totals.values())
    print("\nCPU time per stage (one thread), per file and share:")
    print(f"{'stage':<30} {'ms/file':>8} {'share':>7}")
    for k, v in totals.items():
        print(f"{k:<30} {1e3 * v / len(files):8.2f} {100 * v / cpu:6.1f} %")
    print(
        f"{'total':<30} {1e3 * cpu / len(files):8.2f}  -> one core: "
        f"{len(files) / cpu:.1f} files/s, {dur / cpu:.1f}x real time"
    )

    if args.skip_pool:
        return
    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        cache = EncodingCache(tmp, EncoderSettings(args.channels, rate, args.seed))
        stats = cache.encode(files, workers=workers, progress=False)
    wall = stats.seconds
    print(
        f"\nbuilder, {workers} worker processes (including their start-up): "
        f"{wall:.1f} s wall, {len(files) / wall:.1f} files/s, {dur / wall:.1f}x real time; "
        f"whole corpus ({CORPUS_FILES} files, {CORPUS_AUDIO_S / 60:.0f} min of audio) at this "
        f"rate: {CORPUS_AUDIO_S / (dur / wall) / 60:.1f} min; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
