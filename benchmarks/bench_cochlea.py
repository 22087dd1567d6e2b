"""Speed and agreement of eventprop's cochlea against lauscher on the same audio.

lauscher (Cramer et al. 2020; ``pip install lauscher``) is the SHD authors' implementation of
the model that :mod:`eventprop.audio` re-implements. Both encode the same clip -- by default the
word "seven" spoken by espeak-ng (22050 Hz, 0.74 s) or, without espeak-ng, the synthetic
two-syllable word of :func:`eventprop.audio.synth.spoken_word` -- at the same channel count.

Timing: lauscher once (its deterministic stages plus one bushy-cell run, all its cores); ours
best-of and median of ``--repeats`` encodings with all cores and with one thread (after one
warm-up call that loads the membrane table and the compiled kernels). The machine is shared,
so timings are noisy: repeat and take the best.

Agreement (the model is stochastic): lauscher's bushy cells run ``--ref-runs`` times (seeds
0..), ours ``--runs`` times; :func:`eventprop.audio.validate.compare_spikes` gives the total
spike count difference, the correlation of per-channel counts, and per band of 70 channels the
correlation of 10 ms PSTHs (minimum over bands with >= 200 reference spikes per run).

Usage: ``python benchmarks/bench_cochlea.py [--wav FILE | --synthetic] [--channels 700]
[--repeats 5] [--ref-runs 4] [--runs 16] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from eventprop.audio import Cochlea, read_audio
from eventprop.audio.synth import spoken_word
from eventprop.audio.validate import compare_spikes, lauscher_encode


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def load_clip(wav: str | None, synthetic: bool = False) -> tuple[np.ndarray, int, str]:
    if wav:
        x, rate = read_audio(wav)
        return x, rate, Path(wav).name
    exe = None if synthetic else shutil.which("espeak-ng")
    if exe:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "seven.wav"
            subprocess.run([exe, "-w", str(path), "-v", "en", "seven"], check=True)
            x, rate = read_audio(path)
        return x, rate, 'espeak-ng "seven"'
    return spoken_word(22050), 22050, "synthetic word (eventprop.audio.synth.spoken_word)"


def time_ours(cochlea: Cochlea, x: np.ndarray, rate: int, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        cochlea.encode(x, rate, seed=i)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wav", default=None, help="audio file (default: espeak-ng 'seven')")
    ap.add_argument(
        "--synthetic", action="store_true", help="use the synthetic word even with espeak-ng"
    )
    ap.add_argument("--channels", type=int, default=700)
    ap.add_argument("--repeats", type=int, default=5, help="timed encodings of ours")
    ap.add_argument("--ref-runs", type=int, default=4, help="lauscher bushy-cell runs")
    ap.add_argument("--runs", type=int, default=16, help="our runs for the agreement")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.WARNING)

    x, rate, name = load_clip(args.wav, args.synthetic)
    duration = x.size / rate
    cochlea = Cochlea(args.channels)
    threads = numba.get_num_threads()

    start = time.perf_counter()
    cochlea.encode(x, rate, seed=0)  # table + kernels
    warmup = time.perf_counter() - start
    t_all = time_ours(cochlea, x, rate, args.repeats)
    numba.set_num_threads(1)
    t_one = time_ours(cochlea, x, rate, args.repeats)
    numba.set_num_threads(threads)
    ours = [cochlea.encode(x, rate, seed=s) for s in range(args.runs)]

    ref, stages = lauscher_encode(x, rate, channels=args.channels, seeds=range(args.ref_runs))
    t_ref = float(stages["deterministic_s"]) + float(stages["bushy_s"][0])
    agree = compare_spikes(ours, ref, channels=args.channels, duration_s=duration)

    best, best_one = min(t_all), min(t_one)
    rows = [
        ("clip", f"{name}, {duration:.3f} s at {rate} Hz, {args.channels} channels"),
        ("machine", f"{cpu_model()}, {os.cpu_count()} cores, numba {numba.__version__}"),
        ("lauscher wall time (1 encoding)", f"{t_ref:.1f} s"),
        (
            f"eventprop wall time, {threads} threads",
            f"{best:.3f} s best, {statistics.median(t_all):.3f} s median of {args.repeats}",
        ),
        (
            "eventprop wall time, 1 thread",
            f"{best_one:.3f} s best, {statistics.median(t_one):.3f} s median of {args.repeats}",
        ),
        ("eventprop first call (table + kernels)", f"{warmup:.2f} s"),
        (f"speed-up ({threads} threads, best)", f"{t_ref / best:.0f}x"),
        ("speed-up (1 thread vs lauscher on all cores)", f"{t_ref / best_one:.0f}x"),
        ("spikes, lauscher seed 0", f"{ref[0][0].size}"),
        ("spikes, eventprop seed 0", f"{ours[0][0].size}"),
        (
            f"mean spikes lauscher ({args.ref_runs} runs) / eventprop ({args.runs} runs)",
            f"{agree.total_reference:.0f} / {agree.total_candidate:.0f} "
            f"({100 * agree.total_rel_diff:+.2f} %)",
        ),
        ("per-channel count correlation", f"{agree.channel_corr:.4f}"),
        ("  noise ceiling (lauscher half vs half)", f"{agree.noise_channel_corr:.4f}"),
        (
            "10 ms PSTH correlation, bands of 70 channels",
            " ".join(f"{c:.3f}" for c in agree.band_psth_corr),
        ),
        ("  reference spikes per band", " ".join(f"{s:.0f}" for s in agree.band_spikes_reference)),
        ("  minimum over bands with >= 200 spikes", f"{agree.psth_corr_min:.4f}"),
        ("acceptance (5 %, 0.95, 0.9)", "pass" if agree.passes() else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    if args.json:
        record = {k: v for k, v in rows}
        record.update(
            lauscher_s=t_ref, ours_s=t_all, ours_one_thread_s=t_one, agreement=agree.__dict__
        )
        Path(args.json).write_text(json.dumps(record, indent=2, default=float))


if __name__ == "__main__":
    main()
