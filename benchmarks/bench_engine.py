"""Engine speed and memory per training sample (issue targets: <= 5 ms, <= 1 MB held).

    python benchmarks/bench_engine.py                # numba, 256 hidden, batch 32, T = 1000
    python benchmarks/bench_engine.py --backend torch --batch 8
    python benchmarks/bench_engine.py --input shd    # real spike trains from ../shared/data

Prints one row per configuration: forward and backward time per sample, hidden spikes per
sample, and the memory held between forward and backward per sample.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numba
import torch

from eventprop.benchmarks.engine import measure_engine
from eventprop.benchmarks.inputs import load_shd_like, synthetic_shd_like

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "spoken_digits_espeak.h5"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", nargs="+", default=["numba"], choices=["numba", "torch"])
    p.add_argument("--hidden", nargs="+", type=int, default=[256])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--rate", type=float, default=14.0, help="hidden spikes per neuron and trial")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--input", choices=["synthetic", "shd"], default="synthetic")
    args = p.parse_args()

    if args.input == "shd":
        if not SHARED.exists():
            raise SystemExit(f"--input shd: {SHARED} not found")
        events = load_shd_like(SHARED, args.batch, n_steps=args.steps)
    else:
        events = synthetic_shd_like(args.batch, n_steps=args.steps)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}"
    )
    print(
        f"input: {args.input}, {len(events) / events.batch_size:.0f} spikes/sample, "
        f"700 channels, T = {args.steps} steps of 1 ms, batch {args.batch}\n"
    )
    header = (
        f"{'backend':8} {'hidden':>6} {'fwd ms':>8} {'bwd ms':>8} {'total ms':>9} "
        f"{'hid spk':>8} {'tape KB':>8} {'held KB':>8} {'peak RSS MB':>11}"
    )
    print(header + "\n" + "-" * len(header))
    for backend in args.backend:
        for hidden in args.hidden:
            r = measure_engine(events, hidden, backend, repeats=args.repeats, target_rate=args.rate)
            print(
                f"{backend:8} {hidden:6d} {r.forward_ms:8.2f} {r.backward_ms:8.2f} "
                f"{r.total_ms:9.2f} {r.hidden_spikes:8.0f} {r.tape_kb:8.1f} {r.held_kb:8.1f} "
                f"{r.peak_rss_mb:11.0f}"
            )
    print(
        "\ntimes and memory are per sample; 'tape' = spike records + the engine's copy of the "
        "inputs, 'held' = tape + tensors autograd saved for the loss"
    )


if __name__ == "__main__":
    main()
